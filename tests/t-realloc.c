/* t-realloc.c: realloc keeps contents, resizes in place when it can, frees on size 0. */
#include "ptest.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>


static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Every ordered pair of sizes across the size classes, small to mmapped. */
static void pairs(void)
{
  size_t sizes[] = {1, 16, 24, 1000, 4095, 32768, 131071, 131073, 4u << 20, 64u << 20};
  size_t n = sizeof sizes / sizeof sizes[0], failures = 0, pairs_done = 0;
  char first[160] = "";
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++) {
      if (i == j)
        continue;
      size_t from = sizes[i], to = sizes[j], keep = min_size(from, to);
      unsigned char *p = malloc(from);
      /* The whole old block carries the pattern; only min(old, new) must survive. */
      fill_pattern(p, from, from ^ to);
      unsigned char *q = v_realloc(p, to);
      size_t bad = q ? check_pattern(q, keep, from ^ to) : 0;
      pairs_done++;
      if (!q || !aligned_to(q, 16) || malloc_usable_size(q) < to || bad != (size_t)-1) {
        if (failures++ == 0)
          snprintf(first, sizeof first, "%zu -> %zu: %p, first bad byte %zd", from, to,
                   (void *)q, (ssize_t)bad);
      }
      if (q)
        memset(q, 0x5c, to); /* the new size is writable */
      free(q ? q : p);
    }
  ok(failures == 0, "realloc keeps min(old, new) bytes over %zu size pairs %s", pairs_done, first);
  ok(P.check_heap() == 0, "heap consistent after the size pairs");
  unsigned char *c = calloc(20, 1);
  c = v_realloc(c, 200);
  ok(c && all_bytes(c, 20, 0), "calloc(20, 1) grown to 200 keeps its 20 zero bytes");
  free(c);
}

static void zero_size_frees(void)
{
  size_t sizes[] = {10, 5000, 300000};
  for (int i = 0; i < 3; i++) {
    void *p = malloc(sizes[i]);
    memset(p, 1, sizes[i]);
    size_t usable = malloc_usable_size(p);
    uint64_t before = live_bytes();
    errno = 1789;
    void *r = v_realloc(p, 0);
    int e = errno;
    uint64_t after = live_bytes();
    ok(r == NULL, "realloc(p, 0) returns NULL (size %zu)", sizes[i]);
    ok(e == 1789, "realloc(p, 0) leaves errno alone (size %zu)", sizes[i]);
    ok(before - after >= usable, "realloc(p, 0) freed p: live bytes fell by %llu >= usable %zu",
       (unsigned long long)(before - after), usable);
  }
  ok(P.check_heap() == 0, "heap consistent after realloc(p, 0)");
}

static void in_place(void)
{
  size_t moved = 0, tried = 0;
  char first[120] = "";
  for (size_t size = 3; size <= 256 * 1024; size += 2048, tried++) {
    unsigned char *p = malloc(size);
    size_t usable = malloc_usable_size(p);
    fill_pattern(p, usable, size);
    unsigned char *q = v_realloc(p, usable);
    if (q != p || !pattern_ok(q, usable, size)) {
      if (moved++ == 0)
        snprintf(first, sizeof first, "size %zu usable %zu moved %p -> %p", size, usable,
                 (void *)p, (void *)q);
    }
    free(q);
  }
  ok(moved == 0, "realloc(p, malloc_usable_size(p)) == p for %zu sizes 3..256 KiB %s", tried,
     first);
  moved = 0;
  for (size_t size = 100; size <= 256 * 1024; size = size * 3 / 2) {
    unsigned char *p = malloc(size);
    fill_pattern(p, size, size);
    unsigned char *q = v_realloc(p, size - 1);
    if (q != p || !pattern_ok(q, size - 1, size))
      moved++;
    free(q);
  }
  ok(moved == 0, "shrinking by one byte stays in place (%zu sizes moved)", moved);
  unsigned char *big = malloc(8u << 20);
  fill_pattern(big, 4u << 20, 8);
  unsigned char *half = v_realloc(big, 4u << 20);
  ok(half == big && pattern_ok(half, 4u << 20, 8), "8 MiB block shrinks to 4 MiB in place");
  free(half);
}

static void geometric_growth(void)
{
  size_t size = 256 * 1024, failures = 0;
  unsigned char *p = malloc(size);
  fill_pattern(p, size, 0);
  size_t rss0 = rss_bytes();
  for (int i = 0; i < 12; i++) {
    size_t grown = size * 3 / 2;
    unsigned char *q = v_realloc(p, grown);
    if (!q || !pattern_ok(q, size, 0)) {
      failures++;
      free(q ? q : p);
      p = NULL;
      break;
    }
    fill_pattern(q, grown, 0);
    p = q;
    size = grown;
  }
  ok(failures == 0 && p, "12 x 1.5 growth from 256 KiB to %zu KiB keeps contents", size >> 10);
  size_t rss1 = rss_bytes();
  ok(rss1 < rss0 + 3 * size, "RSS during growth bounded (%zu KiB for a %zu KiB block)",
     (rss1 - rss0) >> 10, size >> 10);
  free(p);
  /* Cross size thresholds back and forth. */
  p = malloc(100 * 1024);
  failures = 0;
  unsigned reps = scaled(4000);
  for (unsigned i = 0; i < reps; i++) {
    size_t to = i % 2 ? 100 * 1024 : 200 * 1024;
    p[0] = (unsigned char)i;
    p[100 * 1024 - 1] = (unsigned char)(i >> 3);
    unsigned char *q = v_realloc(p, to);
    if (!q || q[0] != (unsigned char)i || q[100 * 1024 - 1] != (unsigned char)(i >> 3)) {
      failures++;
      break;
    }
    p = q;
  }
  ok(failures == 0, "%u realloc round trips 100 KiB <-> 200 KiB keep their edges", reps);
  free(p);
  ok(P.check_heap() == 0, "heap consistent after growth");
}

static void grows_into_freed_neighbour(void);

/* Strings grown a few bytes at a time, interleaved, as a string builder does: contents kept
 * through every move, and a block with free space after it grows in place. */
static void string_builders(void)
{
  enum { STRINGS = 48, LENGTH = 20000 };
  unsigned char *text[STRINGS] = { 0 };
  size_t used[STRINGS] = { 0 }, bad = 0, heap_errors = 0, steps = 0;
  uint64_t rng = 5;
  for (bool growing = true; growing; steps++) {
    growing = false;
    for (size_t s = 0; s < STRINGS; s++) {
      if (used[s] >= LENGTH)
        continue;
      growing = true;
      size_t grow = 1 + (size_t)rng_below(&rng, 15);
      unsigned char *q = v_realloc(text[s], used[s] + grow);
      if (q == NULL || (used[s] && (q[0] != (unsigned char)s || q[used[s] - 1] != (unsigned char)s)))
        bad++;
      if (q == NULL)
        break;
      memset(q + used[s], (int)s, grow);
      text[s] = q;
      used[s] += grow;
    }
    if (steps % 64 == 0 && P.check_heap() != 0)
      heap_errors++;
  }
  for (size_t s = 0; s < STRINGS; s++)
    if (!all_bytes(text[s], used[s], (unsigned char)s))
      bad++;
  ok(bad == 0 && heap_errors == 0,
     "%d strings grown to %d bytes in %zu interleaved steps keep their contents (%zu bad, "
     "%zu heap checks failed)", STRINGS, LENGTH, steps, bad, heap_errors);
  for (size_t s = 0; s < STRINGS; s++)
    free(text[s]);
  grows_into_freed_neighbour();
}

/* A block (not cached: above 32 KiB) whose neighbour is freed grows into it in place, and
 * takes a quarter more, so that the next few growths need no call. */
static void grows_into_freed_neighbour(void)
{
  if (ptest_under_memcheck()) {
    skip("growth into a freed neighbour: memcheck mode keeps freed blocks out of use");
    ok(P.check_heap() == 0, "heap consistent after the string builders");
    return;
  }
  unsigned char *pairs_held[16][2];
  unsigned char *p = NULL, *next = NULL, *grown = NULL;
  size_t tries = 0;
  for (; tries < 16 && p == NULL; tries++) {
    unsigned char *a = malloc(40000), *b = malloc(40000);
    pairs_held[tries][0] = a;
    pairs_held[tries][1] = b;
    if (b == a + malloc_usable_size(a) + 8)
      p = a, next = b;
    else if (a == b + malloc_usable_size(b) + 8)
      p = b, next = a;
  }
  ok(p != NULL, "two blocks of 40000 bytes found adjacent within %zu tries", tries);
  if (p != NULL) {
    fill_pattern(p, 40000, 9);
    free(next);
    unsigned char *q = v_realloc(p, 41000);
    size_t usable = malloc_usable_size(q);
    ok(q == p && pattern_ok(q, 40000, 9), "realloc into the freed neighbour stays in place");
    ok(usable >= 41000 + 41000 / 4 - 16 && usable < 41000 + 41000 / 4 + 32,
       "growing in place takes a quarter more (usable %zu for 41000)", usable);
    unsigned char *r = v_realloc(q, 41000 + 41000 / 4 - 16);
    ok(r == q && pattern_ok(r, 40000, 9), "growing within that room keeps the block");
    grown = r;
  }
  for (size_t i = 0; i < tries; i++)
    for (int j = 0; j < 2; j++)
      if (pairs_held[i][j] != next && pairs_held[i][j] != p)
        free(pairs_held[i][j]);
  free(grown);
  ok(P.check_heap() == 0, "heap consistent after the string builders");
}

/* mmap: a block whose neighbour waits deferred (freed small blocks the thread cache handed
 * back, not coalesced yet) grows into it while the deferred blocks are few, after coalescing
 * them one by one; when they are so many that coalescing them would take a sweep of the
 * whole heap (an eighth of it or more), realloc moves the block instead
 * (backends/mmap/mmap_backend.c, grow_region_block). Blocks of 256 bytes, three in four
 * freed (enough of them for an eighth of the heap as mapped now), then some of the others
 * grown; a free block of 60000 bytes (fenced off the top) is there for the moved ones, so
 * that their move finds a free block without coalescing the deferred ones first: contents
 * intact, the heap sound after every call, and the growers moved. */
enum { FENCE_SIZE = 248, FENCE_GROWN = 400, FENCE_GROWERS = 24, FENCE_LANDING = 60000 };

static void grows_or_moves_among_deferred(void)
{
  if (strcmp(P.backend_name(), "mmap") != 0)
    return; /* the sbrk backend defers nothing */
  if (ptest_under_memcheck()) {
    skip("blocks fenced in by deferred ones: memcheck mode has no thread caches");
    return;
  }
  /* 192 freed bytes a block against the heap as mapped plus 256 a block: n >= mapped / 1280. */
  size_t count = (size_t)(stats_now().mapped_bytes / 1024 + 4000) & ~(size_t)3;
  unsigned char **block = malloc(count * sizeof *block);
  if (block == NULL) {
    ok(false, "an array for %zu blocks", count);
    return;
  }
  void *landing = malloc(FENCE_LANDING), *fence = malloc(FENCE_LANDING);
  for (size_t i = 0; i < count; i++) {
    block[i] = malloc(FENCE_SIZE);
    fill_pattern(block[i], FENCE_SIZE, 77 + (uint64_t)i);
  }
  free(landing);
  for (size_t i = 0; i < count; i++)
    if (i % 4 != 0)
      free(block[i]);
  size_t moved = 0, intact = 0, sound = 0, growers = 0;
  for (size_t i = 0; growers < FENCE_GROWERS; i += 4, growers++) {
    unsigned char *grown = v_realloc(block[i], FENCE_GROWN);
    moved += grown != block[i];
    intact += grown != NULL && pattern_ok(grown, FENCE_SIZE, 77 + (uint64_t)i);
    sound += P.check_heap() == 0;
    block[i] = grown;
  }
  ok(intact == growers && sound == growers, "%zu blocks grown among %zu freed ones: contents "
     "intact (%zu), heap sound after each (%zu)", growers, count - count / 4, intact, sound);
  ok(moved >= growers * 9 / 10, "with that many deferred blocks they move rather than sweep "
     "the heap to grow in place (%zu of %zu moved)", moved, growers);
  for (size_t i = 0; i < count; i += 4)
    free(block[i]);
  free(block);
  free(fence);
}

static void *first_call_thread(void *arg)
{
  unsigned char *p = v_realloc(arg, 1024);
  if (p == NULL || !all_bytes(p, 12, 0x42))
    return (void *)1;
  memset(p, 0x43, 1024);
  free(p);
  return NULL;
}

static void cross_thread(void)
{
  unsigned char *p = v_realloc(NULL, 12);
  memset(p, 0x42, 12);
  pthread_t t;
  void *result = (void *)2;
  if (pthread_create(&t, NULL, first_call_thread, p) == 0)
    pthread_join(t, &result);
  ok(result == NULL, "a new thread's first call reallocs main's block, keeping contents, and frees");
  ok(P.check_heap() == 0, "heap consistent after cross-thread realloc");
}

int test_realloc(void)
{
  ptest_init();
  pairs();
  zero_size_frees();
  in_place();
  geometric_growth();
  string_builders();
  grows_or_moves_among_deferred();
  cross_thread();
  return tap_done();
}
