/* harden.c: the freed-mapped ring, junk, quarantine and free_sized checks (harden.h). */
#include "config.h"
#include "harden.h"

#include "backend.h"
#include "init.h"
#include "size_class.h"
#include "tcache.h"
#include "util/lock.h"

#include <string.h>

static uintptr_t freed_mapped[HARDEN_FREED_MAPPED];
static unsigned freed_mapped_next;

void harden_note_freed_mapped(const void *payload)
{
  unsigned slot = __atomic_fetch_add(&freed_mapped_next, 1, __ATOMIC_RELAXED);
  __atomic_store_n(&freed_mapped[slot % HARDEN_FREED_MAPPED], (uintptr_t)payload,
                   __ATOMIC_RELAXED);
}

bool harden_was_freed_mapped(const void *payload)
{
  for (unsigned i = 0; i < HARDEN_FREED_MAPPED; i++)
    if (__atomic_load_n(&freed_mapped[i], __ATOMIC_RELAXED) == (uintptr_t)payload)
      return true;
  return false;
}

/* The quarantine: a ring of blocks, oldest at quarantine_head. */
static palloc_lock quarantine_lock = PALLOC_LOCK_INIT;
static void *quarantine[HARDEN_QUARANTINE_MAX];
static size_t quarantine_head, quarantine_count;

static uint64_t quarantine_mark(void) { return ~tcache_key; }

static bool quarantine_holds_locked(const void *payload)
{
  size_t cap = init_options.quarantine_blocks;
  for (size_t i = 0; i < quarantine_count; i++)
    if (quarantine[(quarantine_head + i) % cap] == payload)
      return true;
  return false;
}

bool harden_in_quarantine(const void *payload)
{
  if (init_options.quarantine_blocks == 0 || ((const uint64_t *)payload)[1] != quarantine_mark())
    return false;
  lock_acquire(&quarantine_lock);
  bool held = quarantine_holds_locked(payload);
  lock_release(&quarantine_lock);
  return held;
}

static void *quarantine_swap(void *payload)
{
  size_t cap = init_options.quarantine_blocks;
  ((uint64_t *)payload)[1] = quarantine_mark();
  void *oldest = NULL;
  lock_acquire(&quarantine_lock);
  if (quarantine_count == cap) {
    oldest = quarantine[quarantine_head];
    quarantine_head = (quarantine_head + 1) % cap;
    quarantine_count--;
  }
  quarantine[(quarantine_head + quarantine_count) % cap] = payload;
  quarantine_count++;
  lock_release(&quarantine_lock);
  if (oldest != NULL)
    ((uint64_t *)oldest)[1] = 0;
  return oldest;
}

void *harden_on_free(void *payload)
{
  if (init_options.junk_on_free)
    memset(payload, HARDEN_JUNK_BYTE, block_usable_size(payload));
  if (init_options.quarantine_blocks != 0 && !(*block_tag(payload) & TAG_MAPPED))
    return quarantine_swap(payload);
  return payload;
}

bool harden_free_sized_ok(uint64_t tag, size_t size)
{
  size_t usable = tag_size(tag) - BACKEND_BLOCK_OVERHEAD;
  return size <= usable && block_size_for(size) >= tag_size(tag) / 4;
}

void harden_fork_prepare(void) { lock_acquire(&quarantine_lock); }
void harden_fork_parent(void) { lock_release(&quarantine_lock); }
void harden_fork_child(void) { lock_reset(&quarantine_lock); }
