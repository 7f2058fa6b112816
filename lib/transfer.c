/* transfer.c: the shared per-class stacks between thread caches and the backend (transfer.h).
 * Each class has its own lock, held only to copy pointers in or out. */
#include "config.h"
#include "transfer.h"

#include "backend.h"
#include "size_class.h"
#include "tcache.h"
#include "util/lock.h"
#include "util/report.h"

#include <string.h>

struct transfer_bin {
  uint32_t count;                    /* blocks in slots[0 .. count-1] */
  void *slots[TRANSFER_CAPACITY];
};

/* The locks apart from the slots: 4 KiB of initialised data, the slots zero pages (.bss)
 * touched only for the classes a program uses. */
static palloc_lock transfer_locks[CLASS_COUNT] = { [0 ... CLASS_COUNT - 1] = PALLOC_LOCK_INIT };
static struct transfer_bin transfer_bins[CLASS_COUNT];

static struct transfer_bin *bin_locked(unsigned cls)
{
  lock_acquire(&transfer_locks[cls]);
  return &transfer_bins[cls];
}

static void bin_unlock(unsigned cls) { lock_release(&transfer_locks[cls]); }

/* How many blocks class cls may hold: TRANSFER_CAPACITY, or fewer of the big classes so
 * that a class holds about TRANSFER_BYTES at most. */
static uint32_t capacity_of(unsigned cls)
{
  size_t count = TRANSFER_BYTES / class_block_size(cls);
  if (count < TRANSFER_CAPACITY_MIN)
    count = TRANSFER_CAPACITY_MIN;
  return count < TRANSFER_CAPACITY ? (uint32_t)count : TRANSFER_CAPACITY;
}

size_t transfer_put(unsigned cls, void **blocks, size_t count)
{
  struct transfer_bin *bin = bin_locked(cls);
  uint32_t capacity = capacity_of(cls);
  size_t room = bin->count < capacity ? capacity - bin->count : 0;
  size_t n = count < room ? count : room;
  memcpy(&bin->slots[bin->count], blocks, n * sizeof *blocks);
  bin->count += (uint32_t)n;
  bin_unlock(cls);
  return n;
}

size_t transfer_take(unsigned cls, void **blocks, size_t count)
{
  struct transfer_bin *bin = bin_locked(cls);
  size_t n = count < bin->count ? count : bin->count;
  bin->count -= (uint32_t)n;
  memcpy(blocks, &bin->slots[bin->count], n * sizeof *blocks);
  bin_unlock(cls);
  return n;
}

bool transfer_holds(unsigned cls, void *payload)
{
  struct transfer_bin *bin = bin_locked(cls);
  bool held = false;
  for (uint32_t i = 0; i < bin->count && !held; i++)
    held = bin->slots[i] == payload;
  bin_unlock(cls);
  return held;
}

void transfer_drain(void)
{
  for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
    void *blocks[TRANSFER_CAPACITY];
    size_t n = transfer_take(cls, blocks, TRANSFER_CAPACITY);
    if (n != 0)
      backend_free_batch(blocks, n);
  }
}

uint64_t transfer_cached_bytes(void)
{
  uint64_t bytes = 0;
  for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
    bytes += (uint64_t)__atomic_load_n(&transfer_bins[cls].count, __ATOMIC_RELAXED) *
             class_block_size(cls);
  return bytes;
}

static int bin_check(struct transfer_bin *bin, unsigned cls)
{
  if (bin->count > capacity_of(cls))
    return CHECK_FAIL(104, "transfer bin count passes its capacity", bin);
  for (uint32_t i = 0; i < bin->count; i++) {
    void **block = bin->slots[i];
    uint64_t tag = *block_tag(block);
    if ((tag & (TAG_IN_USE | TAG_MAPPED)) != TAG_IN_USE || tag_size(tag) < class_block_size(cls) ||
        (uint64_t)(uintptr_t)block[1] != tcache_key)
      return CHECK_FAIL(104, "transfer block with a wrong tag or without the cache key", block);
    for (uint32_t j = i + 1; j < bin->count; j++)
      if (bin->slots[j] == block)
        return CHECK_FAIL(105, "block held twice by a transfer bin", block);
  }
  return 0;
}

int transfer_check(void)
{
  int broken = 0;
  for (unsigned cls = 0; cls < CLASS_COUNT && !broken; cls++) {
    struct transfer_bin *bin = bin_locked(cls);
    broken = bin_check(bin, cls);
    bin_unlock(cls);
  }
  return broken;
}

void transfer_fork_prepare(void)
{
  for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
    lock_acquire(&transfer_locks[cls]);
}

void transfer_fork_parent(void)
{
  for (unsigned cls = CLASS_COUNT; cls-- > 0;)
    lock_release(&transfer_locks[cls]);
}

void transfer_fork_child(void)
{
  for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
    lock_reset(&transfer_locks[cls]);
}
