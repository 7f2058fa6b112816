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

/* A class's lock and count, apart from its slots: these 5 KiB of initialised data are all a
 * single-threaded process touches (an empty class is seen without the lock); the slots are
 * zero pages (.bss) written only for the classes whose blocks change threads. */
struct transfer_head {
  palloc_lock lock;
  uint32_t count;                    /* blocks in slots_of(cls)[0 .. count-1] */
};

static struct transfer_head transfer_heads[CLASS_COUNT] = {
  [0 ... CLASS_COUNT - 1] = { .lock = PALLOC_LOCK_INIT, .count = 0 }
};
/* All classes' slots in one array, each class's capacity_of(c) slots after the previous
 * class's (slot_start[c]), so that the classes of small blocks, which hold the most, do not
 * leave unused slot rows between them: a program whose blocks change threads in every class
 * touches about 40 KiB of slots rather than 103 KiB. */
static void *transfer_slot_array[CLASS_COUNT * TRANSFER_CAPACITY] SPARSE_ZEROED;
static uint32_t slot_start[CLASS_COUNT];

static void **slots_of(unsigned cls) { return &transfer_slot_array[slot_start[cls]]; }

static struct transfer_head *head_locked(unsigned cls)
{
  lock_acquire(&transfer_heads[cls].lock);
  return &transfer_heads[cls];
}

static void head_unlock(unsigned cls) { lock_release(&transfer_heads[cls].lock); }

/* The count without the lock: a hint (exact only under the lock). */
static uint32_t count_hint(unsigned cls)
{
  return __atomic_load_n(&transfer_heads[cls].count, __ATOMIC_RELAXED);
}

static void set_count(struct transfer_head *head, uint32_t count)
{
  __atomic_store_n(&head->count, count, __ATOMIC_RELAXED);
}

/* How many blocks class cls may hold: TRANSFER_CAPACITY, or fewer of the big classes so
 * that a class holds about TRANSFER_BYTES at most (but TRANSFER_CAPACITY_MIN), and none above
 * CACHE_SHARED_MAX_BLOCK (tcache.h). */
static uint32_t capacity_of(unsigned cls)
{
  size_t size = class_block_size(cls);
  if (size > CACHE_SHARED_MAX_BLOCK)
    return 0;
  size_t count = TRANSFER_BYTES / size;
  if (count < TRANSFER_CAPACITY_MIN)
    count = TRANSFER_CAPACITY_MIN;
  return count < TRANSFER_CAPACITY ? (uint32_t)count : TRANSFER_CAPACITY;
}

void transfer_init(void)
{
  uint32_t next = 0;
  for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
    slot_start[cls] = next;
    next += capacity_of(cls);
  }
}

size_t transfer_put(unsigned cls, void **blocks, size_t count)
{
  uint32_t capacity = capacity_of(cls);
  if (count_hint(cls) >= capacity)
    return 0;
  struct transfer_head *head = head_locked(cls);
  size_t room = head->count < capacity ? capacity - head->count : 0;
  size_t n = count < room ? count : room;
  memcpy(&slots_of(cls)[head->count], blocks, n * sizeof *blocks);
  set_count(head, head->count + (uint32_t)n);
  head_unlock(cls);
  return n;
}

size_t transfer_take(unsigned cls, void **blocks, size_t count)
{
  if (count_hint(cls) == 0)
    return 0;
  struct transfer_head *head = head_locked(cls);
  size_t n = count < head->count ? count : head->count;
  set_count(head, head->count - (uint32_t)n);
  memcpy(blocks, &slots_of(cls)[head->count], n * sizeof *blocks);
  head_unlock(cls);
  return n;
}

bool transfer_holds(unsigned cls, void *payload)
{
  if (count_hint(cls) == 0)
    return false;
  struct transfer_head *head = head_locked(cls);
  bool held = false;
  for (uint32_t i = 0; i < head->count && !held; i++)
    held = slots_of(cls)[i] == payload;
  head_unlock(cls);
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
    bytes += (uint64_t)count_hint(cls) * class_block_size(cls);
  return bytes;
}

static int bin_check(const struct transfer_head *head, unsigned cls)
{
  void **slots = slots_of(cls);
  if (head->count > capacity_of(cls))
    return CHECK_FAIL(104, "transfer bin count passes its capacity", head);
  for (uint32_t i = 0; i < head->count; i++) {
    void **block = slots[i];
    uint64_t tag = *block_tag(block);
    if ((tag & (TAG_IN_USE | TAG_MAPPED)) != TAG_IN_USE || !class_may_hold(cls, tag_size(tag)) ||
        !tcache_key_intact(block))
      return CHECK_FAIL(104, "transfer block with a wrong tag or without the cache key", block);
    for (uint32_t j = i + 1; j < head->count; j++)
      if (slots[j] == block)
        return CHECK_FAIL(105, "block held twice by a transfer bin", block);
  }
  return 0;
}

int transfer_check(void)
{
  int broken = 0;
  for (unsigned cls = 0; cls < CLASS_COUNT && !broken; cls++) {
    struct transfer_head *head = head_locked(cls);
    broken = bin_check(head, cls);
    head_unlock(cls);
  }
  return broken;
}

void transfer_fork_prepare(void)
{
  for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
    lock_acquire(&transfer_heads[cls].lock);
}

void transfer_fork_parent(void)
{
  for (unsigned cls = CLASS_COUNT; cls-- > 0;)
    lock_release(&transfer_heads[cls].lock);
}

void transfer_fork_child(void)
{
  for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
    lock_reset(&transfer_heads[cls].lock);
}
