/* t-calloc.c: calloc returns zeroed memory, also when it reuses a dirty block. */
#include "ptest.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static void small_reuse(void)
{
  size_t sizes[] = {15, 5, 17, 6, 31, 96, 0, 1000, 4000};
  size_t dirty = 0, calls = 0;
  unsigned reps = scaled(20000);
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
    for (unsigned i = 0; i < reps / 4; i++, calls++) {
      unsigned char *p = calloc(1, sizes[s]);
      size_t usable = malloc_usable_size(p);
      /* The size asked for must read zero; then dirty the whole usable range for reuse. */
      if (!p || !all_bytes(p, sizes[s], 0))
        dirty++;
      if (p)
        memset(p, 0xff, usable);
      free(p);
    }
  ok(dirty == 0, "%zu calloc(1, s) of reused 0xff blocks, small sizes: all zero (%zu dirty)",
     calls, dirty);
  uint64_t seed = 42;
  dirty = 0;
  void *keep[64] = {0};
  for (unsigned i = 0; i < reps; i++) {
    size_t n = 1 + rng_below(&seed, 10), s = 1 + rng_below(&seed, 100);
    unsigned char *p = calloc(n, s);
    if (!p || !all_bytes(p, n * s, 0))
      dirty++;
    if (p)
      memset(p, 0xff, malloc_usable_size(p));
    size_t slot = rng_below(&seed, 64);
    free(keep[slot]);
    keep[slot] = p;
  }
  for (int i = 0; i < 64; i++)
    free(keep[i]);
  ok(dirty == 0, "%u random calloc(1..10, 1..100) among dirty frees: all zero", reps);
  ok(P.check_heap() == 0, "heap consistent after small callocs");
}

static void large_reuse(void)
{
  size_t sizes[] = {128 * 1024 - 1, 128 * 1024 + 1, 4u << 20, 300000, 70000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    for (int round = 0; round < 3; round++) {
      unsigned char *p = malloc(n);
      memset(p, 0xff, malloc_usable_size(p));
      free(p);
      unsigned char *q = calloc(1, n);
      bool zero = q && all_bytes(q, n, 0);
      unsigned char *r = calloc(n / 16, 16);
      bool zero2 = r && all_bytes(r, n / 16 * 16, 0);
      if (round == 2)
        ok(zero && zero2, "calloc of %zu bytes after freeing a 0xff block of that size: zero", n);
      if (q)
        memset(q, 0xff, n);
      if (r)
        memset(r, 0xff, n / 16 * 16);
      free(q);
      free(r);
    }
  }
  ok(P.check_heap() == 0, "heap consistent after large callocs");
}

static void calloc_among_live(void)
{
  /* Dirty neighbours must not leak into a calloc'd block. */
  enum { N = 256 };
  unsigned char *live[N];
  uint64_t seed = 7;
  size_t dirty = 0;
  for (int i = 0; i < N; i++) {
    size_t s = 16 + rng_below(&seed, 3000);
    live[i] = malloc(s);
    memset(live[i], 0xff, malloc_usable_size(live[i]));
  }
  for (int i = 0; i < N; i += 2) {
    size_t s = malloc_usable_size(live[i]);
    free(live[i]);
    live[i] = calloc(s, 1);
    if (!live[i] || !all_bytes(live[i], s, 0))
      dirty++;
  }
  for (int i = 1; i < N; i += 2)
    if (!all_bytes(live[i], malloc_usable_size(live[i]), 0xff))
      dirty++;
  ok(dirty == 0, "callocs among dirty live blocks are zero, and neighbours keep their 0xff");
  for (int i = 0; i < N; i++)
    free(live[i]);
}

int test_calloc(void)
{
  ptest_init();
  small_reuse();
  large_reuse();
  calloc_among_live();
  return tap_done();
}
