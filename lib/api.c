/* api.c: the exported allocation functions and their exact semantics.
 *
 * This file owns what a caller of malloc & co. can observe: sizes that cannot be served give
 * NULL and ENOMEM with every old block untouched; bad alignments give EINVAL; successful calls
 * and free() leave errno alone; realloc(p, 0) frees p and returns NULL; malloc(0) returns a
 * unique pointer; misuse ends in a palloc: message and abort(). Where the standards leave room,
 * glibc's behaviour is the rule.
 *
 * Each function has a fast path that only touches the calling thread's cache (tcache.h) and a
 * slow path (noinline) that initialises, validates, and talks to the backend (backend.h).
 * Under valgrind's memcheck the thread caches are off and each slow path turns at once to a
 * cold twin (*_memcheck) that does the same work and describes the blocks to memcheck
 * (util/vg.h): the code both share is an always-inline core with a constant flag.
 */
#include "config.h"

#include "backend.h"
#include "export.h"
#include "harden.h"
#include "init.h"
#include "palloc.h"
#include "size_class.h"
#include "stats.h"
#include "tcache.h"
#include "trace.h"
#include "transfer.h"
#include "util/bits.h"
#include "util/page.h"
#include "util/report.h"
#include "util/vg.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define ALWAYS_INLINE inline __attribute__((always_inline))
/* The paths taken only under memcheck (unused when built without valgrind support). */
#define MEMCHECK_PATH __attribute__((noinline, cold, unused))

/* ---- Counting ---------------------------------------------------------------------------- */

static inline void note_call(struct tcache *tc, enum palloc_function fn, int64_t live_delta)
{
  if (likely(tc != NULL)) {
    tc->calls[fn]++;
    tc->unpublished_live += live_delta;
  } else {
    stats_count_uncached(fn, live_delta);
  }
}

static inline int64_t usable_of(void *payload)
{
  return payload ? (int64_t)block_usable_size(payload) : 0;
}

/* ---- Validation -------------------------------------------------------------------------- */

/* Whether an in-use block may go to a thread cache: U set, M and C clear, a size from
 * BACKEND_MIN_BLOCK to CLASS_MAX_BLOCK. Also gives the tag's sealed bits (size + U, as
 * tag_seal_ok_sum() takes them) in *sealed and its size in 16-byte units (for
 * class_floor_units) in *units, which the free and realloc fast paths use and others ignore.
 * One range test: with P and the check bits masked off, a cacheable tag less
 * BACKEND_MIN_BLOCK + U is a multiple of 16 from 0 to CLASS_MAX_BLOCK - BACKEND_MIN_BLOCK; a
 * clear U or a set M or C leaves low bits (a smaller size borrows into the high ones), which
 * the rotation moves to the top. */
static inline bool is_cacheable_sealed(uint64_t tag, uint64_t *sealed, size_t *units)
{
  *sealed = tag & TAG_SEALED_BITS;
  uint64_t offset = *sealed - (BACKEND_MIN_BLOCK + TAG_IN_USE);
  uint64_t rotated = offset >> 4 | offset << 60;
  *units = rotated + BACKEND_MIN_BLOCK / 16;
  return rotated <= (CLASS_MAX_BLOCK - BACKEND_MIN_BLOCK) / 16;
}

static inline bool is_cacheable(uint64_t tag)
{
  uint64_t sealed;
  size_t units;
  return is_cacheable_sealed(tag, &sealed, &units);
}

/* Whether an in-use (U) block is in fact sitting freed in a thread cache (the caller's or
 * another thread's) or in the transfer cache. */
static bool is_cached_here(void *payload, uint64_t tag)
{
  struct tcache *tc = tcache_self;
  if (!is_cacheable(tag) || !tcache_maybe_cached(payload))
    return false;
  unsigned cls = class_floor(tag_size(tag));
  return (tc != NULL && tcache_holds(tc, cls, payload)) || transfer_holds(cls, payload) ||
         tcache_others_hold(tc, cls, payload);
}

/* Whether a tag without U reads as a free block's (no check bits, no M or C, a real size):
 * then the pointer was a block's and was freed; else it never was one, or the tag is damaged. */
static bool looks_free(uint64_t tag)
{
  return (tag & (TAG_CHECK_MASK | TAG_MAPPED | TAG_RESERVED)) == 0 &&
         tag_size(tag) >= BACKEND_MIN_BLOCK;
}

/* Report misuse of payload in fn; returns 0 (the call must leave the block alone) only with
 * PALLOC_ON_MISUSE=continue, else aborts. */
static uint64_t refuse(const char *problem, void *payload, const char *fn)
{
  report_misuse_or_continue(problem, payload, fn);
  return 0;
}

/* The tag of a pointer handed to free or realloc, after checking that it is ours, sealed and
 * in use; a freed one is reported as problem_if_freed. 0 when the call is to be dropped. */
static uint64_t owned_tag(void *payload, const char *fn, const char *problem_if_freed)
{
  if (((uintptr_t)payload & (BACKEND_ALIGNMENT - 1)) != 0)
    return refuse("invalid pointer (misaligned)", payload, fn);
  if (!backend_owns(payload))
    return refuse(harden_was_freed_mapped(payload) ? problem_if_freed
                                                   : "invalid pointer (not from palloc)",
                  payload, fn);
  uint64_t tag = *block_tag(payload);
  if (!(tag & TAG_IN_USE))
    return refuse(looks_free(tag) ? problem_if_freed
                                  : "invalid pointer or damaged block tag (interior pointer "
                                    "or overflow)",
                  payload, fn);
  if (!tag_seal_ok(payload, tag) || (tag & TAG_RESERVED) || tag_size(tag) < BACKEND_MIN_BLOCK)
    return refuse("invalid pointer or damaged block tag (interior pointer or overflow)",
                  payload, fn);
  if (is_cached_here(payload, tag) ||
      (unlikely(init_options.quarantine_blocks != 0) && harden_in_quarantine(payload)))
    return refuse(problem_if_freed, payload, fn);
  return tag;
}


/* PALLOC_CANARY, PALLOC_GUARD (harden.h): whether either is on (one load on slow paths). */
static inline bool tails_on(void)
{
  return unlikely(init_options.canary || init_options.guard);
}

/* Before a block with tag is freed or moved: check its tail, lift its guard page. False when
 * the tail is damaged and the call is to be dropped (PALLOC_ON_MISUSE=continue). */
static bool tail_release(void *payload, uint64_t tag, const char *fn)
{
  if (!tails_on() || !harden_has_tail(tag))
    return true;
  if (!harden_tail_ok(payload, fn))
    return false;
  harden_tail_unguard(payload);
  return true;
}

/* After a block was handed out for n bytes asked. */
static void tail_attach(void *payload, size_t n)
{
  if (tails_on() && payload != NULL && harden_has_tail(*block_tag(payload)))
    harden_tail_set(payload, n);
}

/* ---- Allocation core --------------------------------------------------------------------- */

/* A block for a request of n <= REQUEST_MAX bytes, initialised; NULL when out of memory. */
static void *alloc_block(struct tcache *tc, size_t n, unsigned flags)
{
  size_t block_size = block_size_for(n);
  if (tc == NULL || block_size > CLASS_MAX_BLOCK)
    return backend_alloc(block_size, flags);
  unsigned cls = class_ceil(block_size);
  void *payload = tcache_pop(tc, cls);
  if (payload == NULL)
    payload = tcache_refill_and_pop(tc, cls);
  if (payload != NULL && (flags & BACKEND_ZERO))
    memset(payload, 0, block_usable_size(payload));
  return payload;
}

/* Give a validated in-use block back: to the thread cache when it fits, else the backend. */
static void release_block(struct tcache *tc, void *payload, uint64_t tag, const char *fn)
{
  if (unlikely(!init_options.thread_caches)) {
    payload = harden_on_free(payload);
    if (payload == NULL)
      return;
    tag = *block_tag(payload);
  }
  if (tag & TAG_MAPPED)
    harden_note_freed_mapped(payload);
  if (tc != NULL && is_cacheable(tag)) {
    unsigned cls = class_floor(tag_size(tag));
    if (tcache_push(tc, cls, payload, fn))
      return;
    tcache_flush_half(tc, cls);
    if (tcache_push(tc, cls, payload, fn))
      return;
  }
  backend_free(payload);
}

/* Out of memory: give back everything palloc holds that the failed request could use. The
 * calling thread's cache, exited threads' spare caches and the transfer cache go back to the
 * backend, whose free blocks may then coalesce into what the request needs; then the backend
 * gives the OS the address space it keeps free (cached mappings, wholly free regions, a free
 * top), which a new mapping may need under RLIMIT_AS (before, a program that freed forty
 * 1 MiB blocks could not malloc 64 MiB under a limit that glibc met, the mmap backend's
 * mapping cache holding 40 MiB). Not malloc_trim(0): the pages inside free blocks would not
 * help the request (backend_release_address_space), and their walk made every failure cost
 * a pass over the heap (a program probing with 16 TiB mallocs over 2 million small blocks:
 * 7.7 ms a failure with the sbrk backend, glibc 0.05). Whether anything was given back
 * (worth a second try). */
static bool release_held_memory(struct tcache *tc)
{
  if (tc != NULL)
    tcache_flush_all(tc);
  bool released = tcache_free_spares() != 0;
  if (transfer_cached_bytes() != 0) {
    transfer_drain();
    released = true;
  }
  return backend_release_address_space() != 0 || released;
}

/* Under memcheck a freed block waits among the last QUARANTINE_COUNT freed blocks before
 * palloc may hand its memory out again, as memcheck's own malloc keeps freed blocks aside
 * (--freelist-vol): a use after free then reaches NOACCESS memory, and memcheck names the
 * freed block (vg.h, V3). Lock-free: a slot is taken with one atomic increment. A block
 * mapped on its own goes back at once, as memcheck's malloc lets big blocks go first
 * (--freelist-big-blocks): held, 256 of them would keep 256 mappings and their pages (a
 * 64 MiB block freed stayed resident); unmapped, a use after free of it still faults. */
enum { QUARANTINE_COUNT = 256 };
static void *_Atomic quarantined[QUARANTINE_COUNT];
static atomic_uint quarantine_next;

static bool quarantine_holds(void *payload)
{
  for (unsigned i = 0; i < QUARANTINE_COUNT; i++)
    if (atomic_load_explicit(&quarantined[i], memory_order_relaxed) == payload)
      return true;
  return false;
}

/* Describe payload as freed and quarantine it; give back the block it pushes out. */
static void quarantine_release(struct tcache *tc, void *payload, const char *fn_name)
{
  vg_freelike(payload);
  uint64_t tag = *block_tag(payload);
  if (tag & TAG_MAPPED) {
    release_block(tc, payload, tag, fn_name);
    return;
  }
  unsigned slot = atomic_fetch_add_explicit(&quarantine_next, 1, memory_order_relaxed);
  void *oldest = atomic_exchange(&quarantined[slot % QUARANTINE_COUNT], payload);
  if (oldest != NULL)
    release_block(tc, oldest, *block_tag(oldest), fn_name);
}

/* Under memcheck a request gets a redzone and the block is described (vg.h, V2). */
static ALWAYS_INLINE void *malloc_core(size_t n, enum palloc_function fn, unsigned flags,
                                       bool memcheck)
{
  init_ensure();
  init_count_call_for_check();
  struct tcache *tc = tcache_get();
  size_t asked = memcheck ? n + VG_REDZONE_SIZE : n <= REQUEST_MAX ? harden_tail_request(n) : n;
  void *payload = n <= REQUEST_MAX ? alloc_block(tc, asked, flags) : NULL;
  if (payload == NULL && n <= REQUEST_MAX && release_held_memory(tc))
    payload = alloc_block(tc, asked, flags);
  note_call(tc, fn, usable_of(payload));
  if (memcheck && payload != NULL)
    vg_malloclike(payload, n, block_usable_size(payload), flags & BACKEND_ZERO);
  if (!memcheck)
    tail_attach(payload, n);
  if (payload == NULL)
    errno = ENOMEM;
  return payload;
}

static MEMCHECK_PATH void *malloc_memcheck(size_t n, enum palloc_function fn, unsigned flags)
{
  vg_error_reporting(false);
  void *payload = malloc_core(n, fn, flags, true);
  vg_error_reporting(true);
  return payload;
}

static NOINLINE void *malloc_slow(size_t n, enum palloc_function fn, unsigned flags)
{
  if (unlikely(vg_memcheck()))
    return malloc_memcheck(n, fn, flags);
  return malloc_core(n, fn, flags, false);
}

static inline __attribute__((always_inline)) void *malloc_fast(size_t n, enum palloc_function fn)
{
  struct tcache *tc = tcache_self;
  if (likely(tc != NULL && n <= CLASS_MAX_REQUEST)) {
    unsigned cls = class_for_request(n);
    void *payload = tcache_pop(tc, cls);
    if (likely(payload != NULL)) {
      /* An exact class's usable size needs no read of the tag (size_class.h): bench churn
       * 0.294 -> 0.273 s in 13 interleaved runs, 0.277 -> 0.275 in 15 (session 12), 2 more
       * instructions a pair. */
      size_t usable =
          likely(class_is_exact(cls)) ? class_usable_size(cls) : block_usable_size(payload);
      note_call(tc, fn, (int64_t)usable);
      return payload;
    }
  }
  return malloc_slow(n, fn, 0);
}

static ALWAYS_INLINE void free_core(void *payload, enum palloc_function fn, const char *fn_name,
                                     bool memcheck)
{
  init_ensure();
  init_count_call_for_check();
  struct tcache *tc = tcache_get();
  if (payload == NULL) {
    note_call(tc, fn, 0);
    return;
  }
  uint64_t tag = owned_tag(payload, fn_name, "double free");
  if (tag == 0 || (!memcheck && !tail_release(payload, tag, fn_name)))
    return;
  int64_t usable = (int64_t)block_usable_size(payload);
  if (memcheck) {
    if (quarantine_holds(payload))
      report_misuse("double free", payload, fn_name);
    quarantine_release(tc, payload, fn_name);
  } else {
    release_block(tc, payload, tag, fn_name);
  }
  note_call(tc, fn, -usable);
}

static MEMCHECK_PATH void free_memcheck(void *payload, enum palloc_function fn,
                                        const char *fn_name)
{
  vg_error_reporting(false);
  free_core(payload, fn, fn_name, true);
  vg_error_reporting(true);
}

static NOINLINE void free_slow(void *payload, enum palloc_function fn, const char *fn_name)
{
  if (unlikely(vg_memcheck()))
    free_memcheck(payload, fn, fn_name);
  else
    free_core(payload, fn, fn_name, false);
}

/* Whether the fast paths may read the tag before payload (the measuring build trusts it). */
static inline bool payload_may_be_read(void *payload)
{
  if (!HARDEN_DEFAULT_CHECKS)
    return payload != NULL;
  /* 16-aligned and below 2^47 in one test (backend_tag_readable's range check then folds). */
  const uintptr_t misaligned_or_high = ~(((uintptr_t)1 << 47) - 1) | (BACKEND_ALIGNMENT - 1);
  return ((uintptr_t)payload & misaligned_or_high) == 0 && backend_tag_readable(payload);
}

/* The common free: a cacheable block that is not suspected of being cached already joins the
 * thread's ring of pending blocks, and the one it replaces there goes to its bin (tcache.h);
 * anything else (NULL, a suspect) takes the slow path. */
static inline __attribute__((always_inline)) void free_fast(void *payload, enum palloc_function fn,
                                                            const char *fn_name)
{
  struct tcache *tc = tcache_self;
  if (likely(tc != NULL && payload_may_be_read(payload))) {
    uint64_t tag = *block_tag(payload);
    uint64_t size_in_use; /* size + U */
    size_t units;
    if (likely(is_cacheable_sealed(tag, &size_in_use, &units)) &&
        likely(tag_seal_ok_sum(payload, tag, size_in_use)) &&
        likely(!tcache_maybe_cached(payload))) {
      note_call(tc, fn, -(int64_t)(size_in_use - TAG_IN_USE - BACKEND_BLOCK_OVERHEAD));
      tcache_free(tc, class_floor_units(units), payload);
      return;
    }
  }
  free_slow(payload, fn, fn_name);
}

/* ---- malloc, free, calloc ---------------------------------------------------------------- */

PALLOC_EXPORT void *malloc(size_t n)
{
  TRACE_ENTRY(malloc, n);
  void *payload = malloc_fast(n, PALLOC_FN_MALLOC);
  return payload;
}

PALLOC_EXPORT void free(void *payload)
{
  TRACE_ENTRY_VOID(free, payload);
  free_fast(payload, PALLOC_FN_FREE, "free");
}

/* PALLOC_CHECK_FREE_SIZED=1: the size must be one the block could have been asked with. */
static NOINLINE void free_sized_checked(void *payload, size_t size)
{
  init_ensure();
  uint64_t tag = payload ? owned_tag(payload, "free_sized", "double free") : 0;
  if (tag != 0 && !harden_free_sized_ok(tag, size)) {
    report_misuse_or_continue("size does not match the block", payload, "free_sized");
    return;
  }
  if (tag != 0 || payload == NULL)
    free_slow(payload, PALLOC_FN_FREE_SIZED, "free_sized");
}

PALLOC_EXPORT void free_sized(void *payload, size_t size)
{
  TRACE_ENTRY_VOID(free_sized, payload, size);
  if (unlikely(init_options.check_free_sized))
    free_sized_checked(payload, size);
  else
    free_fast(payload, PALLOC_FN_FREE_SIZED, "free_sized");
}

PALLOC_EXPORT void free_aligned_sized(void *payload, size_t alignment, size_t size)
{
  TRACE_ENTRY_VOID(free_aligned_sized, payload, alignment, size);
  (void)alignment;
  (void)size;
  free_fast(payload, PALLOC_FN_FREE_ALIGNED_SIZED, "free_aligned_sized");
}

PALLOC_EXPORT void *calloc(size_t nmemb, size_t size)
{
  TRACE_ENTRY(calloc, nmemb, size);
  size_t n;
  void *payload;
  if (unlikely(__builtin_mul_overflow(nmemb, size, &n))) {
    payload = malloc_slow(SIZE_MAX, PALLOC_FN_CALLOC, 0);
  } else {
    struct tcache *tc = tcache_self;
    payload = tc != NULL && n <= CLASS_MAX_REQUEST ? tcache_pop(tc, class_for_request(n)) : NULL;
    if (payload != NULL) {
      memset(payload, 0, block_usable_size(payload));
      note_call(tc, PALLOC_FN_CALLOC, (int64_t)block_usable_size(payload));
    } else {
      payload = malloc_slow(n, PALLOC_FN_CALLOC, BACKEND_ZERO);
    }
  }
  return payload;
}

/* ---- realloc ----------------------------------------------------------------------------- */

/* Whether shrinking a block of old_size to new_size bytes is worth splitting it. */
static bool worth_shrinking(size_t old_size, size_t new_size)
{
  size_t saved = old_size - new_size;
  if (saved < BACKEND_MIN_BLOCK)
    return false;
  return old_size > CLASS_MAX_BLOCK || new_size <= old_size / 2;
}

/* A growing region block of this size or more moves from backend block to backend block,
 * bypassing the thread cache: the new block has headroom (REALLOC_HEADROOM_SHIFT) and grows
 * in place on the next calls, and the old block coalesces at once instead of waiting in a
 * cache bin for a block of its class (bench realloc_grow, palloc-mmap: peak RSS 21.9 -> 18.9
 * MB, glibc 15.6). */
#define REALLOC_DIRECT_MIN 256

/* A block that grows gets a quarter more than asked (n >> 2), when it moves and when it
 * grows in place, so that a buffer grown a few bytes at a time comes back to the backend
 * about once per quarter of its size. bench realloc_grow against an eighth (8 interleaved
 * runs): 0.387 -> 0.348 s, peak RSS 19.04 -> 19.42 MB (glibc 15.3); a sixteenth: -2% RSS,
 * no faster; a thirty-second: -6% RSS, +20% time. */
#define REALLOC_HEADROOM_SHIFT 2

static size_t block_size_with_headroom(size_t n)
{
  return block_size_for(n + (n >> REALLOC_HEADROOM_SHIFT));
}

static bool realloc_moves_direct(uint64_t tag)
{
  return tag_size(tag) >= REALLOC_DIRECT_MIN && !(tag & TAG_MAPPED) &&
         init_options.thread_caches;
}

/* Move the block's contents into a new block; NULL (old block intact) when out of memory. */
static void *realloc_by_moving(struct tcache *tc, void *payload, uint64_t tag, size_t n,
                               const char *fn_name)
{
  bool direct = realloc_moves_direct(tag) && n <= CLASS_MAX_REQUEST;
  void *moved = direct ? backend_alloc(block_size_with_headroom(n), 0) : alloc_block(tc, n, 0);
  if (moved == NULL)
    return NULL;
  size_t old_usable = block_usable_size(payload);
  memcpy(moved, payload, old_usable < n ? old_usable : n);
  if (direct)
    backend_free(payload);
  else
    release_block(tc, payload, tag, fn_name);
  return moved;
}

/* Grow a region block in place: first with headroom, else to just what n needs. */
static bool realloc_grow_in_place(void *payload, size_t n, size_t new_size)
{
  return backend_resize(payload, block_size_with_headroom(n)) || backend_resize(payload, new_size);
}

static void *realloc_block(struct tcache *tc, void *payload, uint64_t tag, size_t n,
                           const char *fn_name)
{
  size_t old_size = tag_size(tag);
  size_t new_size = block_size_for(n);
  if (new_size <= old_size) {
    bool mapped_and_much_smaller = (tag & TAG_MAPPED) && new_size <= old_size / 4;
    if (!mapped_and_much_smaller) {
      if (worth_shrinking(old_size, new_size))
        backend_resize(payload, new_size);
      return payload;
    }
  } else if (tag & TAG_MAPPED) {
    if (new_size > CLASS_MAX_BLOCK) {
      void *moved = backend_remap(payload, new_size);
      if (moved != NULL)
        return moved;
    }
  } else if (realloc_grow_in_place(payload, n, new_size)) {
    return payload;
  }
  return realloc_by_moving(tc, payload, tag, n, fn_name);
}

/* realloc under memcheck (vg.h, V4): in place when the block is big enough or can grow,
 * else a new block, described before the copy so that memcheck carries the definedness of the
 * bytes asked for over, then the old block freed. Mapped blocks are not remapped (memcheck's
 * record of the block would not follow the mapping). */
static void *realloc_block_memcheck(struct tcache *tc, void *payload, uint64_t tag, size_t n,
                                    const char *fn_name)
{
  size_t old_n = vg_addressable_prefix(payload, block_usable_size(payload));
  size_t new_size = block_size_for(n + VG_REDZONE_SIZE);
  if (new_size <= tag_size(tag) || (!(tag & TAG_MAPPED) && backend_resize(payload, new_size))) {
    vg_resize_in_place(payload, old_n, n);
    return payload;
  }
  void *moved = alloc_block(tc, n + VG_REDZONE_SIZE, 0);
  if (moved == NULL)
    return NULL;
  vg_malloclike(moved, n, block_usable_size(moved), false);
  memcpy(moved, payload, old_n < n ? old_n : n);
  (void)tag;
  quarantine_release(tc, payload, fn_name);
  return moved;
}

static ALWAYS_INLINE void *realloc_core(void *payload, size_t n, enum palloc_function fn,
                                        const char *fn_name, bool memcheck)
{
  init_ensure();
  init_count_call_for_check();
  struct tcache *tc = tcache_get();
  uint64_t tag = owned_tag(payload, fn_name, "use after free (pointer already freed)");
  if (tag == 0) { /* misuse reported, PALLOC_ON_MISUSE=continue */
    errno = EINVAL;
    return NULL;
  }
  if (memcheck && quarantine_holds(payload))
    report_misuse("use after free (pointer already freed)", payload, fn_name);
  size_t old_asked = 0;
  bool tailed = !memcheck && tails_on() && harden_has_tail(tag);
  if (tailed) {
    if (!harden_tail_ok(payload, fn_name)) {
      errno = EINVAL;
      return NULL;
    }
    old_asked = harden_tail_asked(payload);
    harden_tail_unguard(payload);
  }
  int64_t old_usable = (int64_t)block_usable_size(payload);
  if (n == 0) {
    if (memcheck)
      quarantine_release(tc, payload, fn_name);
    else
      release_block(tc, payload, tag, fn_name);
    note_call(tc, fn, -old_usable);
    return NULL;
  }
  void *result = NULL;
  for (int attempt = 0; attempt < 2 && result == NULL && n <= REQUEST_MAX; attempt++) {
    if (attempt == 1 && !release_held_memory(tc))
      break;
    result = memcheck ? realloc_block_memcheck(tc, payload, tag, n, fn_name)
                      : realloc_block(tc, payload, tag, harden_tail_request(n), fn_name);
  }
  if (!memcheck) {
    if (result != NULL)
      tail_attach(result, n);
    else if (tailed)
      harden_tail_set(payload, old_asked); /* the old block stays: its guard goes back */
  }
  note_call(tc, fn, result ? usable_of(result) - old_usable : 0);
  if (result == NULL)
    errno = ENOMEM;
  return result;
}

static MEMCHECK_PATH void *realloc_memcheck(void *payload, size_t n, enum palloc_function fn,
                                            const char *fn_name)
{
  vg_error_reporting(false);
  void *result = realloc_core(payload, n, fn, fn_name, true);
  vg_error_reporting(true);
  return result;
}

static NOINLINE void *realloc_slow(void *payload, size_t n, enum palloc_function fn,
                                   const char *fn_name)
{
  if (payload == NULL)
    return malloc_slow(n, fn, 0);
  if (unlikely(vg_memcheck()))
    return realloc_memcheck(payload, n, fn, fn_name);
  return realloc_core(payload, n, fn, fn_name, false);
}

/* A small block's move to another small block, both through the thread cache: NULL when
 * the new class's bin is empty or the old one's is full (the slow path then does the work). */
static inline void *realloc_move_cached(struct tcache *tc, void *payload, uint64_t tag, size_t n,
                                        enum palloc_function fn)
{
  unsigned old_class = class_floor(tag_size(tag));
  if (tcache_bin_full(&tc->bins[old_class]))
    return NULL;
  void *moved = tcache_pop(tc, class_for_request(n));
  if (moved == NULL)
    return NULL;
  size_t old_usable = tag_size(tag) - BACKEND_BLOCK_OVERHEAD;
  memcpy(moved, payload, old_usable);
  tcache_push_unchecked(tc, old_class, payload);
  note_call(tc, fn, (int64_t)block_usable_size(moved) - (int64_t)old_usable);
  return moved;
}

/* The common realloc of a small block: it still fits (and would not be worth shrinking), or
 * it moves to a block of the thread cache. The checks are free_fast's; anything else, and
 * any miss, takes the slow path. */
static inline __attribute__((always_inline)) void *realloc_fast(void *payload, size_t n,
                                                                enum palloc_function fn,
                                                                const char *fn_name)
{
  struct tcache *tc = tcache_self;
  if (likely(tc != NULL && n - 1 < CLASS_MAX_REQUEST && payload != NULL &&
             payload_may_be_read(payload))) {
    uint64_t tag = *block_tag(payload), size_in_use;
    size_t units;
    if (likely(is_cacheable_sealed(tag, &size_in_use, &units)) &&
        likely(tag_seal_ok_sum(payload, tag, size_in_use)) &&
        likely(!tcache_maybe_cached(payload))) {
      size_t new_size = block_size_for(n);
      if (new_size <= tag_size(tag) && new_size > tag_size(tag) / 2) {
        note_call(tc, fn, 0);
        return payload;
      }
      if (new_size > tag_size(tag) && tag_size(tag) < REALLOC_DIRECT_MIN) {
        void *moved = realloc_move_cached(tc, payload, tag, n, fn);
        if (moved != NULL)
          return moved;
      }
    }
  }
  return realloc_slow(payload, n, fn, fn_name);
}

PALLOC_EXPORT void *realloc(void *payload, size_t n)
{
  TRACE_ENTRY(realloc, payload, n);
  void *result = realloc_fast(payload, n, PALLOC_FN_REALLOC, "realloc");
  return result;
}

PALLOC_EXPORT void *reallocarray(void *payload, size_t nmemb, size_t size)
{
  TRACE_ENTRY(reallocarray, payload, nmemb, size);
  size_t n;
  void *result;
  if (__builtin_mul_overflow(nmemb, size, &n)) {
    note_call(tcache_self, PALLOC_FN_REALLOCARRAY, 0);
    errno = ENOMEM;
    result = NULL;
  } else {
    result = realloc_fast(payload, n, PALLOC_FN_REALLOCARRAY, "reallocarray");
  }
  return result;
}

/* ---- Aligned allocation ------------------------------------------------------------------ */

static ALWAYS_INLINE void *aligned_core(size_t alignment, size_t n, enum palloc_function fn,
                                         bool memcheck)
{
  init_ensure();
  init_count_call_for_check();
  struct tcache *tc = tcache_get();
  void *payload = NULL;
  size_t asked = memcheck ? n + VG_REDZONE_SIZE : n <= REQUEST_MAX ? harden_tail_request(n) : n;
  for (int attempt = 0; attempt < 2 && payload == NULL && n <= REQUEST_MAX; attempt++) {
    if (attempt == 1 && !release_held_memory(tc))
      break;
    if (alignment <= BACKEND_ALIGNMENT)
      payload = alloc_block(tc, asked, 0);
    else
      payload = backend_alloc_aligned(alignment, block_size_for(asked), 0);
  }
  note_call(tc, fn, usable_of(payload));
  if (memcheck && payload != NULL)
    vg_malloclike(payload, n, block_usable_size(payload), false);
  if (!memcheck)
    tail_attach(payload, n);
  return payload;
}

static MEMCHECK_PATH void *aligned_memcheck(size_t alignment, size_t n, enum palloc_function fn)
{
  vg_error_reporting(false);
  void *payload = aligned_core(alignment, n, fn, true);
  vg_error_reporting(true);
  return payload;
}

/* A block aligned to alignment (a power of two); NULL without touching errno on failure. */
static void *aligned_block(size_t alignment, size_t n, enum palloc_function fn)
{
  if (unlikely(vg_memcheck()))
    return aligned_memcheck(alignment, n, fn);
  return aligned_core(alignment, n, fn, false);
}

static void *aligned_or_enomem(size_t alignment, size_t n, enum palloc_function fn)
{
  void *payload = aligned_block(alignment, n, fn);
  if (payload == NULL)
    errno = ENOMEM;
  return payload;
}

static void *count_einval(enum palloc_function fn)
{
  note_call(tcache_self, fn, 0);
  errno = EINVAL;
  return NULL;
}

PALLOC_EXPORT int posix_memalign(void **memptr, size_t alignment, size_t n)
{
  TRACE_ENTRY(posix_memalign, memptr, alignment, n);
  if (alignment % sizeof(void *) != 0 || !is_power_of_two(alignment)) {
    note_call(tcache_self, PALLOC_FN_POSIX_MEMALIGN, 0);
    return EINVAL;
  }
  void *payload = aligned_block(alignment, n, PALLOC_FN_POSIX_MEMALIGN);
  if (payload == NULL)
    return ENOMEM;
  *memptr = payload;
  return 0;
}

/* C17 (and glibc 2.38): any size; the alignment must be a power of two. */
PALLOC_EXPORT void *aligned_alloc(size_t alignment, size_t n)
{
  TRACE_ENTRY(aligned_alloc, alignment, n);
  void *payload = is_power_of_two(alignment)
                    ? aligned_or_enomem(alignment, n, PALLOC_FN_ALIGNED_ALLOC)
                    : count_einval(PALLOC_FN_ALIGNED_ALLOC);
  return payload;
}

/* glibc: a non-power-of-two alignment is rounded up to the next power of two; one above
 * SIZE_MAX/2 + 1 cannot be and gives EINVAL. */
PALLOC_EXPORT void *memalign(size_t alignment, size_t n)
{
  TRACE_ENTRY(memalign, alignment, n);
  void *payload;
  if (alignment > SIZE_MAX / 2 + 1) {
    payload = count_einval(PALLOC_FN_MEMALIGN);
  } else {
    if (!is_power_of_two(alignment))
      alignment = alignment <= 1 ? 1 : (size_t)1 << (highest_bit(alignment) + 1);
    payload = aligned_or_enomem(alignment, n, PALLOC_FN_MEMALIGN);
  }
  return payload;
}

PALLOC_EXPORT void *valloc(size_t n)
{
  TRACE_ENTRY(valloc, n);
  void *payload = aligned_or_enomem(page_size(), n, PALLOC_FN_VALLOC);
  return payload;
}

PALLOC_EXPORT void *pvalloc(size_t n)
{
  TRACE_ENTRY(pvalloc, n);
  size_t rounded;
  void *payload = align_up_checked(n, page_size(), &rounded)
                    ? aligned_or_enomem(page_size(), rounded, PALLOC_FN_PVALLOC)
                    : aligned_or_enomem(page_size(), SIZE_MAX, PALLOC_FN_PVALLOC);
  return payload;
}

/* ---- Introspection: glibc's extensions and palloc's own ---------------------------------- */

/* glibc answers 0 for a block that is not in use; a pointer that is not ours aborts. Under
 * memcheck the answer is the size asked for, as with memcheck's own malloc (vg.h, V5). */
static ALWAYS_INLINE size_t usable_size_core(void *payload, bool memcheck)
{
  if (((uintptr_t)payload & (BACKEND_ALIGNMENT - 1)) != 0 || !backend_owns(payload))
    report_misuse("invalid pointer", payload, "malloc_usable_size");
  uint64_t tag = *block_tag(payload);
  if (!(tag & TAG_IN_USE) || is_cached_here(payload, tag) ||
      (init_options.quarantine_blocks != 0 && harden_in_quarantine(payload)))
    return 0;
  if (!tag_seal_ok(payload, tag))
    report_misuse("invalid pointer or damaged block tag", payload, "malloc_usable_size");
  if (memcheck && quarantine_holds(payload))
    return 0;
  if (!memcheck && tails_on() && harden_has_tail(tag))
    return harden_tail_asked(payload);
  size_t usable = block_usable_size(payload);
  return memcheck ? vg_addressable_prefix(payload, usable) : usable;
}

static MEMCHECK_PATH size_t usable_size_memcheck(void *payload)
{
  vg_error_reporting(false);
  size_t usable = usable_size_core(payload, true);
  vg_error_reporting(true);
  return usable;
}

PALLOC_EXPORT size_t malloc_usable_size(void *payload)
{
  if (payload == NULL)
    return 0;
  init_ensure(); /* may take a transfer lock: a thread's first call must be known (init.h) */
  if (unlikely(vg_memcheck()))
    return usable_size_memcheck(payload);
  return usable_size_core(payload, false);
}

PALLOC_EXPORT int malloc_trim(size_t pad)
{
  vg_enter();
  init_ensure();
  struct tcache *tc = tcache_self;
  if (tc != NULL) {
    tcache_flush_all(tc);
    stats_publish(tc);
  }
  tcache_free_spares();
  transfer_drain();
  int released = backend_trim(pad) != 0;
  vg_leave();
  return released;
}

PALLOC_EXPORT struct mallinfo2 mallinfo2(void)
{
  struct palloc_stats stats;
  struct backend_stats heap;
  struct mallinfo2 info;
  palloc_stats_get(&stats);
  backend_get_stats(&heap);
  memset(&info, 0, sizeof info);
  info.arena = heap.mapped_bytes - heap.mapped_block_bytes;
  info.hblkhd = heap.mapped_block_bytes;
  info.uordblks = stats.live_bytes;
  info.fordblks = heap.free_bytes + stats.cached_bytes;
  info.fsmblks = stats.cached_bytes;
  return info;
}

/* mallinfo: mallinfo2's numbers in the int fields of the interface it replaced (deprecated
 * since glibc 2.33, still called by older programs), each held at INT_MAX rather than wrapped
 * as glibc's own wraps. Without it a preloaded palloc would leave the call to glibc, which would
 * describe its own heap, unused. */
static int clamped_int(size_t value) { return value > INT_MAX ? INT_MAX : (int)value; }

PALLOC_EXPORT struct mallinfo mallinfo(void)
{
  struct mallinfo2 wide = mallinfo2();
  struct mallinfo info;
  memset(&info, 0, sizeof info);
  info.arena = clamped_int(wide.arena);
  info.hblkhd = clamped_int(wide.hblkhd);
  info.uordblks = clamped_int(wide.uordblks);
  info.fordblks = clamped_int(wide.fordblks);
  info.fsmblks = clamped_int(wide.fsmblks);
  return info;
}

PALLOC_EXPORT void malloc_stats(void)
{
  palloc_stats_print();
}

/* glibc's bound on M_MXFAST: 80 * sizeof(size_t) / 4 bytes. */
#define GLIBC_MXFAST_MAX ((size_t)80 * sizeof(size_t) / 4)

/* mallopt: glibc's tuning knobs mean nothing to palloc, whose thresholds are its own, so
 * nothing changes; the answer is glibc's (2.36): 1, or 0 for an M_MXFAST value above 160 bytes
 * or negative. Defined so that a program calling it leaves glibc's allocator alone and, linked
 * statically, does not pull in glibc's malloc.o, whose malloc and free would clash with
 * palloc's at the link (tcmalloc defines it for the same reason). */
PALLOC_EXPORT int mallopt(int param, int value)
{
  if (param == M_MXFAST)
    return (size_t)value <= GLIBC_MXFAST_MAX;
  return 1;
}

/* malloc_info: palloc's statistics in the XML layout of glibc's (one heap; "fast" are the
 * cached free blocks, "rest" the backend's free blocks, "mmap" the blocks mapped on their own),
 * so that a tool that reads glibc's reads palloc's. EINVAL for options other than 0, as glibc. */
PALLOC_EXPORT int malloc_info(int options, FILE *stream)
{
  if (options != 0)
    return EINVAL;
  struct palloc_stats stats;
  struct backend_stats heap;
  palloc_stats_get(&stats);
  backend_get_stats(&heap);
  unsigned long long cached = stats.cached_bytes, free_bytes = heap.free_bytes,
                     mapped = heap.mapped_bytes, peak = heap.peak_mapped_bytes,
                     mapped_blocks = heap.mapped_block_bytes;
  const char *totals = "<total type=\"fast\" count=\"0\" size=\"%llu\"/>\n"
                       "<total type=\"rest\" count=\"0\" size=\"%llu\"/>\n";
  const char *system = "<system type=\"current\" size=\"%llu\"/>\n"
                       "<system type=\"max\" size=\"%llu\"/>\n"
                       "<aspace type=\"total\" size=\"%llu\"/>\n"
                       "<aspace type=\"mprotect\" size=\"%llu\"/>\n";
  fputs("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n</sizes>\n", stream);
  fprintf(stream, totals, cached, free_bytes);
  fprintf(stream, system, mapped, peak, mapped, mapped);
  fputs("</heap>\n", stream);
  fprintf(stream, totals, cached, free_bytes);
  fprintf(stream, "<total type=\"mmap\" count=\"0\" size=\"%llu\"/>\n", mapped_blocks);
  fprintf(stream, system, mapped, peak, mapped, mapped);
  fputs("</malloc>\n", stream);
  return 0;
}

/* glibc's own names for its allocator, which some programs and libraries call to reach "the
 * real malloc"; jemalloc, tcmalloc and mimalloc define them too. Left to glibc, a block from
 * __libc_malloc would reach palloc's free (an invalid free, which stops the process), or one of
 * palloc's blocks glibc's free. cfree is the old name of free, which binaries built before
 * glibc 2.26 still call. */
#if defined(__GNUC__) && !defined(__clang__)
#  define ALIAS_OF(fn) __attribute__((alias(#fn), copy(fn))) /* and its attributes (malloc...) */
#else
#  define ALIAS_OF(fn) __attribute__((alias(#fn)))
#endif
PALLOC_EXPORT void *__libc_malloc(size_t n) ALIAS_OF(malloc);
PALLOC_EXPORT void *__libc_calloc(size_t count, size_t size) ALIAS_OF(calloc);
PALLOC_EXPORT void *__libc_realloc(void *payload, size_t n) ALIAS_OF(realloc);
PALLOC_EXPORT void __libc_free(void *payload) ALIAS_OF(free);
PALLOC_EXPORT void cfree(void *payload) ALIAS_OF(free);
PALLOC_EXPORT void *__libc_memalign(size_t alignment, size_t n) ALIAS_OF(memalign);
PALLOC_EXPORT void *__libc_valloc(size_t n) ALIAS_OF(valloc);
PALLOC_EXPORT void *__libc_pvalloc(size_t n) ALIAS_OF(pvalloc);

PALLOC_EXPORT const char *palloc_backend_name(void)
{
  return BACKEND_NAME;
}
