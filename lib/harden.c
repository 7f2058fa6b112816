/* harden.c: the freed-mapped ring, junk, quarantine and free_sized checks (harden.h). */
#include "config.h"
#include "harden.h"

#include "backend.h"
#include "init.h"
#include "size_class.h"
#include "tcache.h"
#include "os.h"
#include "util/bits.h"
#include "util/lock.h"
#include "util/report.h"

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
static void *quarantine[HARDEN_QUARANTINE_MAX] SPARSE_ZEROED;
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

/* ---- The tail (PALLOC_CANARY, PALLOC_GUARD) ---------------------------------------------- */

#define TAIL_GUARDED ((uint64_t)1 << 63)

bool harden_has_tail(uint64_t tag)
{
  return init_options.canary || (init_options.guard && (tag & TAG_MAPPED));
}

size_t harden_tail_request(size_t n)
{
  size_t extra = init_options.canary ? sizeof(uint64_t) : 0;
  if (init_options.guard) {
    size_t guarded = sizeof(uint64_t) + 2 * os_page_size();
    if (block_size_for(n + guarded) >= BACKEND_MAPPED_THRESHOLD)
      extra = guarded;
  }
  return n + extra;
}

static uint64_t *tail_word(void *payload)
{
  return (uint64_t *)((char *)payload + block_usable_size(payload)) - 1;
}

static uint64_t tail_mix(const void *payload)
{
  return ((uint64_t)(uintptr_t)payload * tag_secret) ^ tcache_key;
}

static char *guard_page(void *payload, size_t n)
{
  return (char *)align_up_addr((uintptr_t)payload + n, os_page_size());
}

/* Where the canary bytes end: the guard page, or the tail word. */
static char *canary_end(void *payload, size_t n, bool guarded)
{
  return guarded ? guard_page(payload, n) : (char *)tail_word(payload);
}

void harden_tail_set(void *payload, size_t n)
{
  uint64_t *tail = tail_word(payload);
  bool guarded = init_options.guard && (*block_tag(payload) & TAG_MAPPED) &&
                 guard_page(payload, n) + os_page_size() <= (char *)tail;
  if (init_options.canary) {
    char *end = canary_end(payload, n, guarded);
    memset((char *)payload + n, HARDEN_CANARY_BYTE, (size_t)(end - ((char *)payload + n)));
  }
  *tail = ((uint64_t)n | (guarded ? TAIL_GUARDED : 0)) ^ tail_mix(payload);
  if (guarded)
    os_protect(guard_page(payload, n), os_page_size(), false);
}

/* The tail's fields, false when the word cannot be one of payload's. */
static bool tail_read(void *payload, size_t *n, bool *guarded)
{
  uint64_t *tail = tail_word(payload);
  uint64_t value = *tail ^ tail_mix(payload);
  *guarded = (value & TAIL_GUARDED) != 0;
  *n = (size_t)(value & ~TAIL_GUARDED);
  if (*n > (size_t)((char *)tail - (char *)payload))
    return false;
  return !*guarded || (init_options.guard && guard_page(payload, *n) + os_page_size() <= (char *)tail);
}

static bool canary_intact(const unsigned char *from, const unsigned char *end)
{
  for (; from < end; from++)
    if (*from != HARDEN_CANARY_BYTE)
      return false;
  return true;
}

bool harden_tail_ok(void *payload, const char *fn)
{
  size_t n;
  bool guarded;
  if (!tail_read(payload, &n, &guarded) ||
      (init_options.canary &&
       !canary_intact((unsigned char *)payload + n,
                      (unsigned char *)canary_end(payload, n, guarded)))) {
    report_misuse_or_continue("heap overflow: the canary after the block is damaged", payload, fn);
    return false;
  }
  return true;
}

size_t harden_tail_asked(void *payload)
{
  size_t n;
  bool guarded;
  if (!tail_read(payload, &n, &guarded))
    report_misuse("heap overflow: the canary after the block is damaged", payload,
                  "malloc_usable_size");
  return n;
}

void harden_tail_unguard(void *payload)
{
  size_t n;
  bool guarded;
  if (tail_read(payload, &n, &guarded) && guarded)
    os_protect(guard_page(payload, n), os_page_size(), true);
}

void harden_fork_prepare(void) { lock_acquire(&quarantine_lock); }
void harden_fork_parent(void) { lock_release(&quarantine_lock); }
void harden_fork_child(void) { lock_reset(&quarantine_lock); }
