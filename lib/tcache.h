/* tcache.h: the per-thread cache of free small blocks, in front of the backend.
 *
 * Each thread that allocates gets one struct tcache, itself a backend block, found through an
 * initial-exec thread-local pointer. It keeps, per size class, a stack of free blocks: an
 * array of pointers inside the cache (slots), the newest last, which no block points into:
 *
 *      struct tcache                                  cached blocks (payloads)
 *      +---------------------------------+
 *      | bins[c]: first 130, top 132 ----+--+         +-----------------+
 *      | ...                             |  |   +---> | tcache_key      |  word 0
 *      | slots[130] ---------------------+--+---+     | (old contents)  |
 *      | slots[131] (newest) ------------+--+-------> +-----------------+
 *      | slots[132 .. 130+capacity-1]    |            | tcache_key      |
 *      +---------------------------------+            | (old contents)  |
 *                                                     +-----------------+
 *
 * A block's memory holds no link, so that a program writing into a freed block cannot steer
 * the cache to an address it chose (glibc and mimalloc thread their lists through the blocks
 * and hide the links with a secret instead); malloc reads a block's address from the cache's
 * own slots, and the next malloc of the class does not wait for the last one's block to come
 * from memory. Every cached block holds tcache_key, a random value drawn at start-up, in word
 * 0: a second free of a cached block is noticed without a search in the common case, and
 * malloc, which clears the word, stops at a block whose key a write after free changed.
 * The backend still sees a cached block as in use; the front end never writes its tag.
 * A freed block does not go to its bin at once: free checks it, writes tcache_key into its word 0
 * and puts it, with its class, in the next slot of the cache's ring of the last TCACHE_PENDING
 * freed blocks; the block that slot held, freed TCACHE_PENDING frees earlier, goes to its bin
 * (tcache_free). The class comes from the freed block's tag, which a program that frees
 * blocks it has not touched lately (bench working_set, perl) waits for from memory; with the
 * ring, every store free makes goes to an address known without that tag, so the calls that
 * follow do not wait for it (bench, 5 rounds, when bins were lists: working_set 1.05 -> 0.71 s,
 * perl-hash 0.72 -> 0.61 s). A malloc that finds its bin empty, a flush and a thread's exit
 * first put the whole ring on the bins (tcache_drain_pending).
 *
 *      free(p):   pending[next % 8] ----> bins[pending_class[next % 8]]   (the older block)
 *                 pending[next % 8] = p, pending_class[next % 8] = class of p, next++
 *
 * Invariants (checked by tcache_check):
 *   T1  a bin's count (top - first) is at most its limit (end - first), itself at most the
 *       bin's capacity (its share of the slots, tcache_bin_capacity); the bins' slot ranges
 *       follow each other in class order.
 *   T2  every cached block has U set, M clear, a size of at least class_block_size(c) (exactly
 *       that in an exact class, class_may_hold), a sealed tag (backend.h), and word 0 equal
 *       to tcache_key.
 *   T3  no block is in a bin twice.
 *   T6  every cached block is a 16-aligned block the backend owns (T4 and T5 are the transfer
 *       cache's, transfer.h).
 *   T7  the cache itself starts a cache line (TCACHE_ALIGNMENT).
 *   T8  every pending block (non-NULL slot of the ring) is an in-use block the backend owns,
 *       cacheable, with a sealed tag, word 0 equal to tcache_key and its slot's class
 *       (class_floor of its size); it is pending once and in no bin.
 * A malloc hit costs a thread-local load, four loads and three stores, a free's ring and bin
 * updates about twice that; no lock, no atomic operation.
 * A miss refills the bin in one batch, from the transfer cache (transfer.h) and then the
 * backend, whose size starts at one block and doubles with each refill up to half the bin (a
 * thread that touches a class once does not take a bin's worth of memory); an overflowing
 * free sends the older half of the bin to the transfer cache (what does not fit there, to the
 * backend) in one batch. A thread that exits hands its whole cache back the same way.
 * A bin holds at most 16 KiB and 64 blocks, or 4 KiB and 32 blocks (none of more than
 * CACHE_SHARED_MAX_BLOCK bytes) while other threads have caches (bin_limit in tcache.c: a lone
 * thread's bin saves trips to the backend, a shared process's bins hold back blocks the other
 * threads could use); a cache made while others lived keeps the smaller bounds (its slots are
 * sized for them: 6 KiB against 20 KiB).
 */
#ifndef PALLOC_TCACHE_H
#define PALLOC_TCACHE_H

#include "backend.h"
#include "palloc.h"
#include "size_class.h"
#include "util/report.h"

#include <stdbool.h>
#include <stdint.h>

/* Indexes into struct tcache's slots, so that pop and push need no addition: */
struct tcache_bin {
  uint16_t top;   /* one past the newest block: the bin holds slots[first .. top - 1] */
  uint16_t end;   /* first + the most blocks the bin may hold (its limit, <= its capacity) */
  uint16_t batch; /* blocks the next refill asks for: starts at 1, doubles up to limit/2 */
  uint16_t first; /* the bin's first slot */
};

static inline unsigned tcache_bin_count(const struct tcache_bin *bin)
{
  return (unsigned)bin->top - bin->first;
}
static inline unsigned tcache_bin_limit(const struct tcache_bin *bin)
{
  return (unsigned)bin->end - bin->first;
}
static inline bool tcache_bin_full(const struct tcache_bin *bin) { return bin->top >= bin->end; }

/* While other threads have caches, blocks of more than this many bytes are cached neither in a
 * thread's bins nor in the transfer cache: they go back to the backend, where a block of any
 * size may reuse their memory. With the mmap backend that is 4096 (backend.h): there are 32
 * classes above it, each kept apart from the others by class; one block per class per thread,
 * and two to seven per class in the transfer cache, held about 1 MB for a program whose
 * threads allocate a few blocks of 4-32 KiB each (bench thread_storm with every byte written:
 * 1636 -> 992 KB of palloc's own pages; as the bench runs it, peak RSS 2.207 -> 2.055 MiB,
 * prodcons 1.684 -> 1.598, times unchanged). The sbrk backend caches every class (backend.h).
 * A lone thread keeps them (its bins save it trips to the backend: working_set, realloc_grow). */
#define CACHE_SHARED_MAX_BLOCK BACKEND_SHARED_CACHE_MAX_BLOCK

/* A thread's cache starts a cache line and fills whole lines, so that no other thread's block
 * shares a line with the bins and counters it writes on every call. */
#define TCACHE_ALIGNMENT 64

/* The last freed blocks, waiting for their bins (above): one cache line of pointers. */
#define TCACHE_PENDING 8

struct tcache {
  void *pending[TCACHE_PENDING];           /* ring of freed blocks not yet binned, or NULL */
  uint8_t pending_class[TCACHE_PENDING];   /* the class each waits for */
  uint32_t pending_next;                   /* the slot the next free takes (mod TCACHE_PENDING) */
  struct tcache_bin bins[CLASS_COUNT];
  int64_t unpublished_live;          /* usable bytes allocated - freed since the last publish */
  uint64_t calls[PALLOC_FN_COUNT];   /* API calls made by this thread, by function */
  struct tcache *next, *prev;        /* the registry of live caches (tcache_registry_lock) */
  bool shared_sized;                 /* made while other caches lived: the shared bounds' slots */
  void *slots[];                     /* the bins' stacks, each bin's capacity in turn */
} __attribute__((aligned(TCACHE_ALIGNMENT))); /* whole cache lines: see tcache_create */

extern __thread struct tcache *tcache_self __attribute__((tls_model("initial-exec")));
/* A random value stored in word 0 of every cached block, so that a second free of a cached
 * block is noticed without a search in the common case. */
extern uint64_t tcache_key __attribute__((visibility("hidden"))); /* one load, no GOT */

/* Whether a cached block's key word still holds the key (a write after free changes it). */
static inline bool tcache_key_intact(void **block)
{
  return (uint64_t)(uintptr_t)block[0] == tcache_key;
}

/* Reports the newest block of bin cls, whose key word a write after free changed; returns
 * only with PALLOC_ON_MISUSE=continue, after taking the block off the bin: it is leaked,
 * never reused. */
void tcache_bin_damaged(struct tcache *tc, unsigned cls);

/* Pop the bin's newest block, its key word cleared; NULL when the bin is empty or the block's
 * key word is damaged (the slow path, tcache_refill_and_pop, tells the two apart and reports
 * the damage). */
static inline void *tcache_pop(struct tcache *tc, unsigned cls)
{
  struct tcache_bin *bin = &tc->bins[cls];
  unsigned top = bin->top;
  if (unlikely(top == bin->first))
    return NULL;
  top--;
  void **block = tc->slots[top];
  if (HARDEN_DEFAULT_CHECKS) {
    if (unlikely(!tcache_key_intact(block)))
      return NULL;
    block[0] = NULL; /* no key left in a block handed out */
  }
  bin->top = (uint16_t)top;
  return block;
}

/* Whether bin cls of tc, or its pending blocks, hold payload (a search, for blocks whose key
 * word matches). */
bool tcache_holds(struct tcache *tc, unsigned cls, void *payload);
/* Whether bin cls of a cache other than self holds payload: a double free of a block that
 * another thread freed into its cache. Reads the other caches' slots under the registry lock
 * (so that none is retired meanwhile) while their owners may be changing them: the count read
 * is bounded by the bin's capacity and the slots lie inside the cache, so the search never
 * faults; it is exact when the owner leaves that bin alone meanwhile (the case of a program
 * that frees one block in two threads). A slow path, for a block whose key word matches and
 * that is neither in the caller's cache nor in the transfer cache. */
bool tcache_others_hold(struct tcache *self, unsigned cls, void *payload);

/* Whether a freed block's key word says it may already be cached (checked on a slow path). */
static inline bool tcache_maybe_cached(void *payload)
{
  if (!HARDEN_DEFAULT_CHECKS)
    return false;
  return tcache_key_intact(payload);
}

/* Put a block whose key word is written already on the bin of class cls (no word of the
 * block is written here); false when the bin is full. */
static inline bool tcache_bin_pending(struct tcache *tc, unsigned cls, void **block)
{
  struct tcache_bin *bin = &tc->bins[cls];
  unsigned top = bin->top;
  if (unlikely(top >= bin->end))
    return false;
  tc->slots[top] = block;
  bin->top = (uint16_t)(top + 1);
  return true;
}

/* Push a freed block that is known not to be cached already; false when the bin is full. */
static inline bool tcache_push_unchecked(struct tcache *tc, unsigned cls, void *payload)
{
  if (!tcache_bin_pending(tc, cls, payload))
    return false;
  if (HARDEN_DEFAULT_CHECKS)
    ((void **)payload)[0] = (void *)(uintptr_t)tcache_key;
  return true;
}

/* Put the whole ring on the bins, oldest first (a full bin sends its older half on). */
void tcache_drain_pending(struct tcache *tc);
/* Put block, pending for class cls, on its full bin after sending the bin's older half on. */
void tcache_bin_pending_full(struct tcache *tc, unsigned cls, void *block);

/* Free's fast path for a block known not to be cached already, of class cls: its key is
 * written now (a second free of it is caught as for a cached block), it takes the ring's next
 * slot, and the block that slot held goes to its bin (when that bin is full, out of line: the
 * call, last in free, needs no frame there). */
static inline void tcache_free(struct tcache *tc, unsigned cls, void *payload)
{
  unsigned slot = tc->pending_next++ % TCACHE_PENDING;
  void **older = tc->pending[slot];
  unsigned older_cls = tc->pending_class[slot];
  if (HARDEN_DEFAULT_CHECKS)
    ((void **)payload)[0] = (void *)(uintptr_t)tcache_key;
  tc->pending[slot] = payload;
  tc->pending_class[slot] = (uint8_t)cls;
  if (older != NULL && unlikely(!tcache_bin_pending(tc, older_cls, older)))
    tcache_bin_pending_full(tc, older_cls, older);
}

/* Push a freed block, reporting a double free (and dropping the call, with
 * PALLOC_ON_MISUSE=continue); false when the bin is full. */
static inline bool tcache_push(struct tcache *tc, unsigned cls, void *payload, const char *fn)
{
  if (unlikely(tcache_maybe_cached(payload)) && tcache_holds(tc, cls, payload)) {
    report_misuse_or_continue("double free", payload, fn);
    return true;
  }
  return tcache_push_unchecked(tc, cls, payload);
}

/* The calling thread's cache, created on first use; NULL while palloc initialises, after the
 * thread's cache was handed back at exit, or when caching is off (PALLOC_CHECK). */
struct tcache *tcache_get(void);
/* Refill class cls from the backend and pop one block (after reporting a damaged newest
 * block, see tcache_pop); NULL when the backend has no memory. */
void *tcache_refill_and_pop(struct tcache *tc, unsigned cls);
/* Make room in a full bin by sending its older half back to the backend. */
void tcache_flush_half(struct tcache *tc, unsigned cls);
/* Send every cached block back to the backend. */
void tcache_flush_all(struct tcache *tc);
/* Hand the caches that exited threads left as spares back to the backend (malloc_trim, and
 * a request that failed); how many there were. */
unsigned tcache_free_spares(void);
/* Walk the calling thread's cache and verify T1-T3, T6 and T7; 0 or the number of the broken one
 * (reported as 100 + n, to tell them from backend invariants). */
int tcache_check(void);
/* Set up the registry, the key and the thread-exit hook; called once from init. */
void tcache_init(bool caching_enabled);
/* Bytes held by all caches (other threads' counted by class size, approximately). */
uint64_t tcache_cached_bytes(void);

/* Iterate the registry under its lock (statistics). */
void tcache_registry_lock(void);
void tcache_registry_unlock(void);
struct tcache *tcache_registry_first(void);

void tcache_fork_prepare(void);
void tcache_fork_parent(void);
void tcache_fork_child(void);

#endif /* PALLOC_TCACHE_H */
