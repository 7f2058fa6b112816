/* t-threads.c: threads allocating with malloc, calloc, aligned_alloc, memalign and
 * posix_memalign, growing and shrinking their blocks with realloc, handing blocks to each other
 * through an atomic transfer table (cross-thread frees and reallocs), recreated every round;
 * every block's contents checked before it is freed, palloc_check_heap() every 100 steps of
 * every thread while the others run. PALLOC_TEST_STRESS=N (make stress) runs N times longer. */
#include "ptest.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 4, TRANSFER = 1000 };

/* A block's first 16 bytes hold its size and seed; the rest carries the pattern. */
struct header {
  size_t size;
  uint64_t seed;
};

static _Atomic(unsigned char *) transfer[TRANSFER];
static atomic_ulong broken;
static atomic_ulong heap_check_failures;

static unsigned char *make_block(uint64_t *rng)
{
  size_t k = rng_below(rng, 16);
  size_t size = sizeof(struct header) + ((size_t)1 << k) + rng_below(rng, (size_t)1 << k);
  unsigned char *p;
  size_t alignment = (size_t)1 << rng_below(rng, 13);
  switch (rng_below(rng, 6)) {
  case 0:
    p = calloc(1, size);
    if (p && !all_bytes(p, size, 0))
      atomic_fetch_add(&broken, 1);
    break;
  case 1:
    p = aligned_alloc(alignment, size);
    if (p && !aligned_to(p, alignment))
      atomic_fetch_add(&broken, 1);
    break;
  case 2:
    p = memalign(alignment, size);
    if (p && !aligned_to(p, alignment))
      atomic_fetch_add(&broken, 1);
    break;
  case 3:
    if (posix_memalign((void **)&p, alignment < 8 ? 8 : alignment, size) != 0)
      p = NULL;
    else if (!aligned_to(p, alignment))
      atomic_fetch_add(&broken, 1);
    break;
  default:
    p = malloc(size);
    break;
  }
  if (p == NULL || !aligned_to(p, 16) || malloc_usable_size(p) < size) {
    atomic_fetch_add(&broken, 1);
    free(p);
    return NULL;
  }
  struct header h = {size, rng_next(rng)};
  memcpy(p, &h, sizeof h);
  fill_pattern(p + sizeof h, size - sizeof h, h.seed);
  return p;
}

static void drop_block(unsigned char *p)
{
  if (p == NULL)
    return;
  struct header h;
  memcpy(&h, p, sizeof h);
  if (!pattern_ok(p + sizeof h, h.size - sizeof h, h.seed))
    atomic_fetch_add(&broken, 1);
  free(p);
}

/* Grow or shrink one of this thread's blocks in place or by moving; the header and the
 * pattern of the bytes kept must survive, and the block is re-patterned to its new size. */
static unsigned char *resize_block(unsigned char *p, uint64_t *rng)
{
  struct header h;
  memcpy(&h, p, sizeof h);
  size_t size = sizeof h + 1 + rng_below(rng, 2 * h.size);
  unsigned char *q = realloc(p, size);
  if (q == NULL) {
    atomic_fetch_add(&broken, 1);
    return p;
  }
  size_t kept = (size < h.size ? size : h.size) - sizeof h;
  if (!pattern_ok(q + sizeof h, kept, h.seed))
    atomic_fetch_add(&broken, 1);
  h.size = size;
  memcpy(q, &h, sizeof h);
  fill_pattern(q + sizeof h, size - sizeof h, h.seed);
  return q;
}

static void *worker(void *arg)
{
  uint64_t rng = (uintptr_t)arg;
  unsigned char *local[64] = {0};
  unsigned steps = scaled(6000);
  for (unsigned i = 0; i < steps; i++) {
    /* The checker walks this thread's cache and the shared heap while others allocate. */
    if (i % 100 == 0 && P.check_heap() != 0)
      atomic_fetch_add(&heap_check_failures, 1);
    size_t l = rng_below(&rng, 64);
    if (local[l] != NULL && rng_below(&rng, 4) == 0) {
      local[l] = resize_block(local[l], &rng);
      continue;
    }
    drop_block(local[l]);
    local[l] = make_block(&rng);
    if (rng_below(&rng, 3) == 0) {
      /* Swap a block with the transfer table: whatever comes out was likely made by another
       * thread, and is freed here (or grown with realloc first). */
      unsigned char *out = atomic_exchange(&transfer[rng_below(&rng, TRANSFER)], local[l]);
      local[l] = NULL;
      if (out && rng_below(&rng, 4) == 0) {
        struct header h;
        memcpy(&h, out, sizeof h);
        unsigned char *grown = realloc(out, h.size + 100);
        if (grown == NULL) {
          atomic_fetch_add(&broken, 1);
          drop_block(out);
        } else {
          drop_block(grown); /* header and pattern of the first h.size bytes must survive */
        }
      } else {
        drop_block(out);
      }
    }
  }
  for (int l = 0; l < 64; l++)
    drop_block(local[l]);
  return NULL;
}

static void rounds(void)
{
  uint64_t live0 = live_bytes();
  unsigned nrounds = 6;
  for (unsigned r = 0; r < nrounds; r++) {
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
      if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(r * 100 + (unsigned)i + 1)))
        bail_out("pthread_create failed");
    for (int i = 0; i < THREADS; i++)
      pthread_join(t[i], NULL);
  }
  ok(atomic_load(&broken) == 0,
     "%u rounds x %d threads (malloc, calloc, aligned_alloc, memalign, posix_memalign, realloc, "
     "cross-thread frees): %lu broken blocks", nrounds, THREADS, atomic_load(&broken));
  ok(atomic_load(&heap_check_failures) == 0,
     "palloc_check_heap() from every thread while the others allocate: %lu failures",
     atomic_load(&heap_check_failures));
  ok(P.check_heap() == 0, "heap consistent with the transfer table full");
  for (int i = 0; i < TRANSFER; i++)
    drop_block(atomic_exchange(&transfer[i], NULL));
  ok(atomic_load(&broken) == 0, "every block left in the transfer table intact");
  ok(P.check_heap() == 0, "heap consistent after freeing the transfer table");
  uint64_t live1 = live_bytes();
  ok(live1 <= live0 + 4096, "all threads gone: live bytes back to baseline (%llu -> %llu)",
     (unsigned long long)live0, (unsigned long long)live1);
}

/* A new thread's first allocator call is each of these operations. */
static unsigned char *from_main;

static void *first_free(void *arg) { (void)arg; free(from_main); return NULL; }
static void *first_calloc(void *arg)
{
  (void)arg;
  unsigned char *p = calloc(100, 10);
  void *bad = (void *)(uintptr_t)(p == NULL || !all_bytes(p, 1000, 0));
  free(p);
  return bad;
}
static void *first_memalign(void *arg)
{
  (void)arg;
  unsigned char *p = memalign(4096, 5000);
  void *bad = (void *)(uintptr_t)(p == NULL || !aligned_to(p, 4096));
  if (p)
    memset(p, 1, 5000);
  free(p);
  return bad;
}
static void *first_realloc(void *arg)
{
  (void)arg;
  unsigned char *p = realloc(NULL, 300);
  void *bad = (void *)(uintptr_t)(p == NULL);
  free(p);
  return bad;
}
static void *first_usable(void *arg)
{
  (void)arg;
  return (void *)(uintptr_t)(malloc_usable_size(from_main) < 777);
}
static void *first_check(void *arg)
{
  (void)arg;
  return (void *)(uintptr_t)(P.check_heap() != 0);
}

static void first_operations(void)
{
  struct { const char *name; void *(*fn)(void *); } ops[] = {
    {"malloc_usable_size(main's block)", first_usable}, {"free(main's block)", first_free},
    {"calloc", first_calloc}, {"memalign(4096)", first_memalign},
    {"realloc(NULL)", first_realloc}, {"palloc_check_heap", first_check},
  };
  from_main = malloc(777);
  memset(from_main, 9, 777);
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    pthread_t t;
    void *bad = (void *)1;
    if (pthread_create(&t, NULL, ops[i].fn, NULL) == 0)
      pthread_join(t, &bad);
    ok(bad == NULL, "a new thread's first call: %s", ops[i].name);
  }
}

/* Two threads that each keep one small block and write it hard must not get blocks in one
 * cache line (bench false_sharing): each thread's refill starts a line of its own. */
#define LINE 64
static void *small_block_kept(void *arg)
{
  unsigned char *p = malloc(8);
  memset(p, 0x5a, 8);
  *(unsigned char **)arg = p;
  return NULL;
}

static void first_blocks_apart(void)
{
  if (ptest_under_memcheck()) {
    skip("two threads' first blocks in different cache lines: a thread cache's refill rule, "
         "and memcheck mode has no thread caches");
    ok(P.check_heap() == 0, "heap consistent");
    return;
  }
  int shared = 0, rounds_run = 0;
  for (int round = 0; round < 8; round++) {
    unsigned char *a = NULL, *b = NULL;
    pthread_t ta, tb;
    if (pthread_create(&ta, NULL, small_block_kept, &a) != 0)
      continue;
    pthread_join(ta, NULL);
    if (pthread_create(&tb, NULL, small_block_kept, &b) != 0) {
      free(a);
      continue;
    }
    pthread_join(tb, NULL);
    rounds_run++;
    if (a == NULL || b == NULL || (uintptr_t)a / LINE == (uintptr_t)(b + 7) / LINE ||
        (uintptr_t)(a + 7) / LINE == (uintptr_t)b / LINE || a[7] != 0x5a || b[7] != 0x5a)
      shared++;
    free(a);
    free(b);
  }
  ok(rounds_run == 8 && shared == 0,
     "two threads' first 8-byte blocks lie in different cache lines (%d of %d rounds shared one)",
     shared, rounds_run);
  ok(P.check_heap() == 0, "heap consistent after the threads' first blocks");
}

int test_threads(void)
{
  ptest_init();
  first_blocks_apart();
  first_operations();
  rounds();
  return tap_done();
}
