/* tcache.c: creating, refilling, flushing, checking and retiring thread caches (tcache.h).
 *
 * Every live cache is on a registry list, so that statistics can sum them and a forked child
 * can hand back the caches of the threads that did not survive the fork. A thread's cache is
 * handed back by a pthread key destructor when the thread exits; any allocation the thread
 * makes after that goes straight to the backend.
 */
#include "config.h"
#include "tcache.h"

#include "backend.h"
#include "stats.h"
#include "trace.h"
#include "transfer.h"
#include "util/lock.h"
#include "util/report.h"

#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>

enum tcache_state { TCACHE_NONE, TCACHE_ACTIVE, TCACHE_RETIRED };

__thread struct tcache *tcache_self __attribute__((tls_model("initial-exec")));
static __thread unsigned char tcache_state __attribute__((tls_model("initial-exec")));

uint64_t tcache_key;
static unsigned slot_total[2]; /* a cache's slots, [shared_sized] (tcache_bin_capacity) */

static bool caching_enabled;
static bool thread_key_ready;
static pthread_key_t thread_exit_key;
static palloc_lock registry_lock = PALLOC_LOCK_INIT;
static struct tcache *registry_head;
static unsigned live_cache_count; /* caches on the registry (read without the lock) */

/* Bytes a bin may hold at most, and the bounds on its block count. While other thread caches
 * exist, a bin holds at most BIN_BYTES_TARGET_SHARED bytes and BIN_COUNT_MAX_SHARED blocks:
 * what one thread keeps, the others cannot use (bench server and prodcons, where threads free
 * each other's blocks: peak RSS -5% against 64 blocks; server -26% against 16 KiB, time
 * unchanged), whereas a lone thread's bin only saves it trips to the backend (working_set took
 * 1.3x as long with 4 KiB bins). A cache takes the shared bounds when it is made after another
 * one, and each bin takes the bounds that fit the process when it overflows
 * (tcache_flush_half), so the fast paths only ever compare with the bin's end. While shared,
 * the classes above CACHE_SHARED_MAX_BLOCK (tcache.h) hold nothing. */
#define BIN_BYTES_TARGET (16u * 1024)
#define BIN_BYTES_TARGET_SHARED (4u * 1024)
#define BIN_COUNT_MIN 1u
#define BIN_COUNT_MAX 64u
#define BIN_COUNT_MAX_SHARED 32u
#define FLUSH_BATCH_MAX BIN_COUNT_MAX

static unsigned live_caches(void) { return __atomic_load_n(&live_cache_count, __ATOMIC_RELAXED); }

/* Whether caches other than the calling thread's (registered) one exist. */
static bool other_caches_live(void) { return live_caches() > 1; }

static uint16_t bin_limit(unsigned cls, bool shared)
{
  if (shared && class_block_size(cls) > CACHE_SHARED_MAX_BLOCK)
    return 0; /* the backend's (CACHE_SHARED_MAX_BLOCK) */
  size_t count = (shared ? BIN_BYTES_TARGET_SHARED : BIN_BYTES_TARGET) / class_block_size(cls);
  size_t most = shared ? BIN_COUNT_MAX_SHARED : BIN_COUNT_MAX;
  if (count < BIN_COUNT_MIN)
    count = BIN_COUNT_MIN;
  if (count > most)
    count = most;
  return (uint16_t)count;
}

static uint64_t random_key(void)
{
  /* AT_RANDOM points at 16 bytes with no particular alignment: copy, do not load a word. */
  const unsigned char *random_bytes = (const unsigned char *)getauxval(AT_RANDOM);
  uint64_t key = (uint64_t)(uintptr_t)&tcache_key;
  if (random_bytes)
    memcpy(&key, random_bytes + 8, sizeof key);
  key ^= (uint64_t)(uintptr_t)&registry_head * 0x9e3779b97f4a7c15ull;
  return key | 1; /* never NULL, never 16-aligned: never a pointer a program stores */
}

static void registry_add(struct tcache *tc)
{
  lock_acquire(&registry_lock);
  tc->prev = NULL;
  tc->next = registry_head;
  if (registry_head != NULL)
    registry_head->prev = tc;
  registry_head = tc;
  __atomic_store_n(&live_cache_count, live_cache_count + 1, __ATOMIC_RELAXED);
  lock_release(&registry_lock);
}

static void registry_remove_locked(struct tcache *tc)
{
  if (tc->prev != NULL)
    tc->prev->next = tc->next;
  else
    registry_head = tc->next;
  if (tc->next != NULL)
    tc->next->prev = tc->prev;
  __atomic_store_n(&live_cache_count, live_cache_count - 1, __ATOMIC_RELAXED);
}

/* Up to TCACHE_SPARES caches handed back by exited threads wait (under registry_lock) for the
 * next threads, so that a program that starts and ends threads all the time does not take a
 * cache from the backend and give it back for each (bench thread_storm under palloc-sbrk: the
 * caches of a wave of exiting threads, merged, made a free block big enough for the sbrk
 * backend to give its pages back, and the next wave faulted them in again). malloc_trim hands
 * them back (tcache_free_spares). */
#define TCACHE_SPARES 8
static struct tcache *spares[TCACHE_SPARES];
static unsigned spare_count;

/* A spare cache with slots enough for a cache of shared (or any) bounds, or NULL. */
static struct tcache *spare_take(bool shared)
{
  struct tcache *tc = NULL;
  lock_acquire(&registry_lock);
  for (unsigned i = spare_count; i-- > 0 && tc == NULL;)
    if (shared || !spares[i]->shared_sized) {
      tc = spares[i];
      spares[i] = spares[--spare_count];
    }
  lock_release(&registry_lock);
  return tc;
}

/* Keep tc as a spare; false when there are enough already. */
static bool spare_put(struct tcache *tc)
{
  lock_acquire(&registry_lock);
  bool kept = spare_count < TCACHE_SPARES;
  if (kept)
    spares[spare_count++] = tc;
  lock_release(&registry_lock);
  return kept;
}

unsigned tcache_free_spares(void)
{
  struct tcache *freed[TCACHE_SPARES];
  lock_acquire(&registry_lock);
  unsigned count = spare_count;
  memcpy(freed, spares, count * sizeof *spares);
  spare_count = 0;
  lock_release(&registry_lock);
  for (unsigned i = 0; i < count; i++)
    backend_free(freed[i]);
  return count;
}

/* Hand a cache back: its blocks, its counters, then the cache itself (kept as a spare). */
static void tcache_retire(struct tcache *tc)
{
  tcache_flush_all(tc);
  lock_acquire(&registry_lock);
  registry_remove_locked(tc);
  lock_release(&registry_lock);
  stats_publish(tc);
  stats_absorb_calls(tc->calls);
  if (!spare_put(tc))
    backend_free(tc);
}

static void on_thread_exit(void *arg)
{
  tcache_self = NULL;
  tcache_state = TCACHE_RETIRED;
  tcache_retire(arg);
}

void tcache_init(bool enabled)
{
  size_class_init();
  transfer_init();
  tcache_key = random_key();
  for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
    slot_total[false] += bin_limit(cls, false);
    slot_total[true] += bin_limit(cls, true);
  }
  caching_enabled = enabled;
  thread_key_ready = pthread_key_create(&thread_exit_key, on_thread_exit) == 0;
}

/* A cache made while others lived has the shared bounds' slots (6 KiB) and keeps them: a
 * lone thread's 20 KiB, made and handed back by every short-lived thread, went back to the
 * sbrk backend as a free block big enough to give its pages back (bench thread_storm under
 * palloc-sbrk: 0.16 -> 0.25 s). The slots bin cls owns in tc: its largest limit for tc. */
static unsigned tcache_bin_capacity(const struct tcache *tc, unsigned cls)
{
  return bin_limit(cls, tc->shared_sized);
}

static struct tcache *tcache_create(void)
{
  /* The slots are read only below each bin's count: they need no zeroing. */
  bool shared = live_caches() > 0; /* counted before ours is registered */
  struct tcache *tc = spare_take(shared);
  bool shared_sized = tc != NULL ? tc->shared_sized : shared;
  if (tc == NULL) {
    size_t bytes = sizeof(struct tcache) + slot_total[shared] * sizeof(void *);
    tc = backend_alloc_aligned(TCACHE_ALIGNMENT, block_size_for(bytes), 0);
  }
  if (tc == NULL)
    return NULL;
  memset(tc, 0, sizeof *tc);
  tc->shared_sized = shared_sized;
  unsigned first = 0;
  for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
    tc->bins[cls].first = tc->bins[cls].top = (uint16_t)first;
    tc->bins[cls].end = (uint16_t)(first + bin_limit(cls, shared));
    tc->bins[cls].batch = 1;
    first += tcache_bin_capacity(tc, cls);
  }
  registry_add(tc);
  tcache_self = tc;
  tcache_state = TCACHE_ACTIVE;
  pthread_setspecific(thread_exit_key, tc);
  return tc;
}

struct tcache *tcache_get(void)
{
  if (likely(tcache_self != NULL))
    return tcache_self;
  if (tcache_state != TCACHE_NONE || !caching_enabled || !thread_key_ready)
    return NULL;
  return tcache_create();
}

/* Blocks leaving a thread's bins: to the transfer cache while other threads have caches (as
 * many as it takes), the rest to the backend. */
static void pass_on(unsigned cls, void **blocks, size_t n, bool others)
{
  size_t kept = others ? transfer_put(cls, blocks, n) : 0;
  if (kept < n)
    backend_free_batch(blocks + kept, n - kept);
}

void tcache_bin_pending_full(struct tcache *tc, unsigned cls, void *block)
{
  tcache_flush_half(tc, cls);
  if (!tcache_bin_pending(tc, cls, block)) /* the flush left at most half the limit, */
    pass_on(cls, &block, 1, other_caches_live()); /* which is 0 (CACHE_SHARED_MAX_BLOCK) */
}

void tcache_drain_pending(struct tcache *tc)
{
  for (unsigned i = 0; i < TCACHE_PENDING; i++) {
    unsigned slot = (tc->pending_next + i) % TCACHE_PENDING; /* oldest first */
    void **block = tc->pending[slot];
    if (block == NULL)
      continue;
    tc->pending[slot] = NULL; /* before a flush, which may be traced and free meanwhile */
    if (!tcache_bin_pending(tc, tc->pending_class[slot], block))
      tcache_bin_pending_full(tc, tc->pending_class[slot], block);
  }
}

/* Put a refill's blocks on bin cls (at most half its limit: always room), except a block
 * larger than an exact class holds (a split remainder too small to be a block joined it):
 * that one goes to the bin of its own class if that is exact and has room, else back to the
 * backend, so that malloc may count an exact class's blocks by their class (size_class.h). */
static void bin_refill(struct tcache *tc, unsigned cls, void **blocks, size_t count)
{
  void *spill[FLUSH_BATCH_MAX];
  size_t spilled = 0;
  for (size_t i = 0; i < count; i++) {
    size_t size = tag_size(*block_tag(blocks[i]));
    if (class_may_hold(cls, size)) {
      tcache_push_unchecked(tc, cls, blocks[i]);
      continue;
    }
    unsigned own = class_floor(size);
    if (!class_may_hold(own, size) || !tcache_push_unchecked(tc, own, blocks[i]))
      spill[spilled++] = blocks[i];
  }
  if (spilled != 0)
    backend_free_batch(spill, spilled);
}

void *tcache_refill_and_pop(struct tcache *tc, unsigned cls)
{
  tcache_drain_pending(tc); /* a block of the class may be waiting there */
  void *payload;
  struct tcache_bin *bin = &tc->bins[cls];
  while ((payload = tcache_pop(tc, cls)) == NULL && tcache_bin_count(bin) != 0)
    tcache_bin_damaged(tc, cls); /* tcache_pop found the newest block's key word damaged */
  if (payload != NULL)
    return payload;
  void *blocks[FLUSH_BATCH_MAX];
  size_t want = bin->batch;
  if (bin->batch <= tcache_bin_limit(bin) / 4)
    bin->batch *= 2;
  size_t got = transfer_take(cls, blocks, want);
  if (got < want)
    got += backend_alloc_batch(class_block_size(cls), blocks + got, want - got);
  stats_publish(tc);
  if (got == 0)
    return NULL;
  bin_refill(tc, cls, blocks + 1, got - 1);
  ((void **)blocks[0])[0] = NULL; /* no key left in a block handed out */
  return blocks[0];
}

/* Take the bin's oldest count blocks into out[] (the newer ones move down to its first slots). */
static void bin_take_oldest(struct tcache *tc, unsigned cls, uint32_t count, void **out)
{
  struct tcache_bin *bin = &tc->bins[cls];
  void **slots = &tc->slots[bin->first];
  memcpy(out, slots, count * sizeof *slots);
  memmove(slots, slots + count, (tcache_bin_count(bin) - count) * sizeof *slots);
  bin->top = (uint16_t)(bin->top - count);
}

/* Send the older half of a full bin on (the transfer cache, else the backend), after giving
 * the bin the bounds that fit the process now (bin_limit): the bin keeps at most half of
 * them. */
void tcache_flush_half(struct tcache *tc, unsigned cls)
{
  void *blocks[FLUSH_BATCH_MAX];
  struct tcache_bin *bin = &tc->bins[cls];
  bool others = other_caches_live();
  unsigned limit = bin_limit(cls, others || tc->shared_sized);
  bin->end = (uint16_t)(bin->first + limit);
  if (bin->batch > limit / 2 && limit >= 2)
    bin->batch = (uint16_t)(limit / 2);
  unsigned count = tcache_bin_count(bin);
  uint32_t keep = count / 2 < limit / 2 ? count / 2 : limit / 2;
  size_t n = count - keep;
  if (n == 0)
    return; /* a bin that holds nothing (CACHE_SHARED_MAX_BLOCK) */
  bin_take_oldest(tc, cls, (uint32_t)n, blocks);
  pass_on(cls, blocks, n, others);
  stats_publish(tc);
  TRACE_FLUSH(cls, class_block_size(cls), n, PALLOC_FLUSH_FULL);
}

void tcache_flush_all(struct tcache *tc)
{
  void *blocks[FLUSH_BATCH_MAX];
  tcache_drain_pending(tc);
  for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
    size_t n = tcache_bin_count(&tc->bins[cls]);
    if (n == 0)
      continue; /* no transfer-cache lock for an empty bin */
    bin_take_oldest(tc, cls, (uint32_t)n, blocks);
    pass_on(cls, blocks, n, true);
    TRACE_FLUSH(cls, class_block_size(cls), n, PALLOC_FLUSH_ALL);
  }
}

/* Whether tc's ring of pending frees holds payload (racy when tc is another thread's cache,
 * as bin_holds_racy). */
static bool pending_holds(const struct tcache *tc, const void *payload)
{
  for (unsigned slot = 0; slot < TCACHE_PENDING; slot++)
    if (__atomic_load_n(&tc->pending[slot], __ATOMIC_RELAXED) == payload)
      return true;
  return false;
}

/* Whether block is among the first count of slots. */
static bool slots_hold(void *const *slots, unsigned count, const void *block)
{
  for (unsigned i = 0; i < count; i++)
    if (slots[i] == block)
      return true;
  return false;
}

/* A bin's count, read while its owner may change it. */
static unsigned bin_count_racy(const struct tcache_bin *bin)
{
  unsigned top = __atomic_load_n(&bin->top, __ATOMIC_RELAXED);
  unsigned first = __atomic_load_n(&bin->first, __ATOMIC_RELAXED);
  return top >= first ? top - first : 0;
}

bool tcache_holds(struct tcache *tc, unsigned cls, void *payload)
{
  if (pending_holds(tc, payload))
    return true;
  struct tcache_bin *bin = &tc->bins[cls];
  return slots_hold(&tc->slots[bin->first], tcache_bin_count(bin), payload);
}

/* Whether bin cls of tc (another thread's, changing under us) holds payload; see
 * tcache_others_hold. The slots stay inside the cache, so a stale count only makes the answer
 * stale. */
static bool bin_holds_racy(struct tcache *tc, unsigned cls, void *payload)
{
  struct tcache_bin *bin = &tc->bins[cls];
  unsigned first = __atomic_load_n(&bin->first, __ATOMIC_RELAXED);
  unsigned count = bin_count_racy(bin);
  if (count > tcache_bin_capacity(tc, cls))
    count = tcache_bin_capacity(tc, cls);
  for (unsigned i = 0; i < count; i++)
    if (__atomic_load_n(&tc->slots[first + i], __ATOMIC_RELAXED) == payload)
      return true;
  return false;
}

bool tcache_others_hold(struct tcache *self, unsigned cls, void *payload)
{
  bool held = false;
  lock_acquire(&registry_lock);
  for (struct tcache *tc = registry_head; tc != NULL && !held; tc = tc->next)
    if (tc != self)
      held = pending_holds(tc, payload) || bin_holds_racy(tc, cls, payload);
  lock_release(&registry_lock);
  return held;
}

void tcache_bin_damaged(struct tcache *tc, unsigned cls)
{
  struct tcache_bin *bin = &tc->bins[cls];
  void *block = tc->slots[bin->top - 1];
  report_misuse_or_continue("heap corruption: a freed block in a thread cache is damaged "
                            "(write after free?)", block, "malloc");
  bin->top--;
}

static int bin_check(const struct tcache *tc, unsigned cls)
{
  const struct tcache_bin *bin = &tc->bins[cls];
  if (bin->top < bin->first || bin->end < bin->top ||
      tcache_bin_limit(bin) > tcache_bin_capacity(tc, cls))
    return CHECK_FAIL(101, "bin count passes its limit, or its limit its capacity", bin);
  unsigned first = cls == 0 ? 0 : bin[-1].first + tcache_bin_capacity(tc, cls - 1);
  if (bin->first != first)
    return CHECK_FAIL(101, "bin slots overlap another bin's", bin);
  void *const *slots = &tc->slots[bin->first];
  unsigned count = tcache_bin_count(bin);
  for (unsigned i = 0; i < count; i++) {
    void **block = slots[i];
    if (((uintptr_t)block & 15) != 0 || !backend_owns(block))
      return CHECK_FAIL(106, "a cached block is not a block", block);
    if (pending_holds(tc, block))
      return CHECK_FAIL(108, "a block both pending and in a bin", block);
    uint64_t tag = *block_tag(block);
    if ((tag & (TAG_IN_USE | TAG_MAPPED)) != TAG_IN_USE || !class_may_hold(cls, tag_size(tag)) ||
        !tag_seal_ok(block, tag))
      return CHECK_FAIL(102, "cached block with a wrong tag or size", block);
    if (!tcache_key_intact(block))
      return CHECK_FAIL(102, "cached block without the cache key", block);
    if (slots_hold(slots, i, block))
      return CHECK_FAIL(103, "a block cached twice in a bin", block);
  }
  return 0;
}

/* T8, but for "on no bin", which bin_check sees. */
static int pending_check(const struct tcache *tc)
{
  for (unsigned slot = 0; slot < TCACHE_PENDING; slot++) {
    void **block = tc->pending[slot];
    if (block == NULL)
      continue;
    if (((uintptr_t)block & 15) != 0 || !backend_owns(block))
      return CHECK_FAIL(108, "a pending block is not a block", block);
    uint64_t tag = *block_tag(block);
    if ((tag & (TAG_IN_USE | TAG_MAPPED | TAG_RESERVED)) != TAG_IN_USE ||
        tag_size(tag) < BACKEND_MIN_BLOCK || tag_size(tag) > CLASS_MAX_BLOCK ||
        !tag_seal_ok(block, tag) || !tcache_key_intact(block) ||
        class_floor(tag_size(tag)) != tc->pending_class[slot])
      return CHECK_FAIL(108, "a pending block with a wrong tag, key or class", block);
    for (unsigned other = slot + 1; other < TCACHE_PENDING; other++)
      if (tc->pending[other] == block)
        return CHECK_FAIL(108, "a block pending twice", block);
  }
  return 0;
}

int tcache_check(void)
{
  int broken = transfer_check();
  if (broken != 0)
    return broken;
  struct tcache *tc = tcache_self;
  if (tc == NULL)
    return 0;
  if ((uintptr_t)tc % TCACHE_ALIGNMENT != 0)
    return CHECK_FAIL(107, "the thread cache does not start a cache line", tc);
  broken = pending_check(tc);
  for (unsigned cls = 0; cls < CLASS_COUNT && !broken; cls++)
    broken = bin_check(tc, cls);
  return broken;
}

/* Bytes of tc's pending blocks, by the class each waits for (racy for another thread's). */
static uint64_t pending_bytes_racy(struct tcache *tc)
{
  uint64_t bytes = 0;
  for (unsigned slot = 0; slot < TCACHE_PENDING; slot++)
    if (__atomic_load_n(&tc->pending[slot], __ATOMIC_RELAXED) != NULL)
      bytes += class_block_size(__atomic_load_n(&tc->pending_class[slot], __ATOMIC_RELAXED));
  return bytes;
}

uint64_t tcache_cached_bytes(void)
{
  uint64_t bytes = transfer_cached_bytes();
  lock_acquire(&registry_lock);
  for (struct tcache *tc = registry_head; tc != NULL; tc = tc->next) {
    bytes += pending_bytes_racy(tc);
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
      bytes += (uint64_t)bin_count_racy(&tc->bins[cls]) *
               class_block_size(cls);
  }
  lock_release(&registry_lock);
  return bytes;
}

void tcache_registry_lock(void) { lock_acquire(&registry_lock); }
void tcache_registry_unlock(void) { lock_release(&registry_lock); }
struct tcache *tcache_registry_first(void) { return registry_head; }

void tcache_fork_prepare(void)
{
  lock_acquire(&registry_lock);
  transfer_fork_prepare();
}

void tcache_fork_parent(void)
{
  transfer_fork_parent();
  lock_release(&registry_lock);
}

/* Take off the bins of tc (a thread's that did not survive a fork) what that thread left
 * half done when the process forked: a block whose key word does not hold the key (it was
 * being popped: the key cleared, the top not yet lowered; it was being handed out, so in the
 * child it stays in use), and the second copy of a block (a flush had moved the newer blocks
 * down, not yet lowered the top: t-fork, one child in 200 failed I105 in the transfer cache). */
static void bins_drop_unsound(struct tcache *tc)
{
  for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
    struct tcache_bin *bin = &tc->bins[cls];
    void **slots = &tc->slots[bin->first];
    unsigned kept = 0;
    for (unsigned i = 0; i < tcache_bin_count(bin); i++)
      if ((!HARDEN_DEFAULT_CHECKS || tcache_key_intact(slots[i])) &&
          !slots_hold(slots, kept, slots[i]))
        slots[kept++] = slots[i];
    bin->top = (uint16_t)(bin->first + kept);
  }
}

/* In the child only the forking thread lives on: hand back every other thread's cache. Their
 * rings of pending frees are left out: a thread in the middle of free when the process forked
 * may have put a block in a slot whose class byte it had not yet written, and binning it by
 * that byte would put it in the wrong class (t-fork: one child in 200 failed I104 once).
 * Their at most TCACHE_PENDING blocks each stay in use in the child, as the blocks other
 * threads were handed mid-call do, and as a block a thread was popping (bins_drop_unsound) or
 * pushing (its slot written, the top not yet raised) or flushing does. */
void tcache_fork_child(void)
{
  lock_reset(&registry_lock);
  transfer_fork_child();
  struct tcache *tc = registry_head;
  while (tc != NULL) {
    struct tcache *next = tc->next;
    if (tc != tcache_self) {
      memset(tc->pending, 0, sizeof tc->pending);
      bins_drop_unsound(tc);
      tcache_retire(tc);
    }
    tc = next;
  }
}
