/* t-aligned.c: posix_memalign, aligned_alloc, memalign, valloc, pvalloc. */
#include "ptest.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>


/* Fill (and later check) the whole usable range when small, else its first and last 4 KiB. */
static void fill_edges(unsigned char *p, size_t n, uint64_t seed)
{
  if (n <= 16384) {
    fill_pattern(p, n, seed);
    return;
  }
  fill_pattern(p, 4096, seed);
  fill_pattern(p + n - 4096, 4096, ~seed);
}

static bool edges_ok(const unsigned char *p, size_t n, uint64_t seed)
{
  if (n <= 16384)
    return pattern_ok(p, n, seed);
  return pattern_ok(p, 4096, seed) && pattern_ok(p + n - 4096, 4096, ~seed);
}

static void posix_memalign_invalid(void)
{
  size_t bad[] = {0, 1, 2, 4, 12, 24, 0x300, 3 * sizeof(void *), SIZE_MAX, SIZE_MAX / 2 + 2,
                  ((size_t)1 << 20) + 8};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *sentinel = &sentinel, *p = sentinel;
    errno = 1789;
    int rc = v_posix_memalign(&p, bad[i], 64);
    ok(rc == EINVAL && p == sentinel && errno == 1789,
       "posix_memalign(alignment %#zx) returns EINVAL (%d), *memptr and errno untouched", bad[i],
       rc);
  }
}

static void posix_memalign_sweep(void)
{
  size_t failures = 0, tried = 0;
  char first[160] = "";
  for (size_t a = sizeof(void *); a <= ((size_t)1 << 26); a *= 2) {
    size_t sizes[] = {0, 1, a - 1, a, a + 1, 3 * a};
    unsigned char *blocks[6];
    for (int i = 0; i < 6; i++) {
      void *p = NULL;
      errno = 1789;
      int rc = v_posix_memalign(&p, a, sizes[i]);
      blocks[i] = p;
      tried++;
      size_t usable = p ? malloc_usable_size(p) : 0;
      if (rc != 0 || p == NULL || !aligned_to(p, a) || usable < sizes[i] || errno != 1789) {
        if (failures++ == 0)
          snprintf(first, sizeof first, "alignment %#zx size %#zx: rc %d p %p usable %zu", a,
                   sizes[i], rc, p, usable);
        blocks[i] = NULL;
        free(p);
        continue;
      }
      fill_edges(p, usable, a + (size_t)i);
    }
    for (int i = 0; i < 6; i++) {
      if (blocks[i] && !edges_ok(blocks[i], malloc_usable_size(blocks[i]), a + (size_t)i) &&
          failures++ == 0)
        snprintf(first, sizeof first, "alignment %#zx size %#zx: contents lost", a, sizes[i]);
      free(blocks[i]);
    }
  }
  ok(failures == 0, "posix_memalign 8..64 MiB x 6 sizes: %zu calls aligned, usable, writable %s",
     tried, first);
  ok(P.check_heap() == 0, "heap consistent after the posix_memalign sweep");
}

/* Alignments 128 MiB .. 1 GiB through all three functions. */
static void huge_alignments(void)
{
  for (unsigned k = 27; k <= 30; k++) {
    size_t a = (size_t)1 << k;
    void *p1 = NULL;
    int rc = v_posix_memalign(&p1, a, 100);
    unsigned char *p2 = v_aligned_alloc(a, 4096);
    unsigned char *p3 = v_memalign(a, a + 1);
    ok(rc == 0 && p1 && aligned_to(p1, a), "posix_memalign(%zu MiB, 100) aligned", a >> 20);
    ok(p2 && aligned_to(p2, a), "aligned_alloc(%zu MiB, 4096) aligned", a >> 20);
    ok(p3 && aligned_to(p3, a) && malloc_usable_size(p3) >= a + 1,
       "memalign(%zu MiB, %zu MiB + 1) aligned with usable >= size", a >> 20, a >> 20);
    if (p1)
      fill_pattern(p1, 100, 1);
    if (p2)
      fill_pattern(p2, 4096, 2);
    if (p3) {
      fill_pattern(p3, 4096, 3);
      p3[a] = 0x77;
    }
    ok(p1 && p2 && p3 && pattern_ok(p1, 100, 1) && pattern_ok(p2, 4096, 2) &&
           pattern_ok(p3, 4096, 3) && p3[a] == 0x77,
       "contents of the %zu MiB-aligned blocks intact", a >> 20);
    ok(P.check_heap() == 0, "heap consistent with %zu MiB-aligned blocks", a >> 20);
    free(p1);
    free(p2);
    free(p3);
  }
}

static void aligned_alloc_rules(void)
{
  struct { size_t a, n; } good[] = {{64, 65}, {4096, 100}, {8, 0}, {1, 64}, {2, 3}, {16, 1},
                                    {65536, 1}, {32, 31}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    errno = 1789;
    unsigned char *p = v_aligned_alloc(good[i].a, good[i].n);
    ok(p && aligned_to(p, good[i].a) && aligned_to(p, 16) && errno == 1789 &&
           malloc_usable_size(p) >= good[i].n,
       "aligned_alloc(%zu, %zu) succeeds, aligned, errno untouched (C17: any size)", good[i].a,
       good[i].n);
    if (p)
      memset(p, 0x11, good[i].n);
    free(p);
  }
  size_t bad[] = {0, 3, 65, 24, SIZE_MAX, SIZE_MAX / 2 + 2};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    void *p = v_aligned_alloc(bad[i], 64);
    ok(p == NULL && errno == EINVAL, "aligned_alloc(%#zx, 64) -> NULL, EINVAL (errno %d)", bad[i],
       errno);
    free(p);
  }
  errno = 0;
  void *p = v_aligned_alloc(SIZE_MAX / 2 + 1, 64);
  ok(p == NULL && errno == ENOMEM, "aligned_alloc(2^63, 64) -> NULL, ENOMEM (errno %d)", errno);
}

static void memalign_rules(void)
{
  struct { size_t a, n, expect; } cases[] = {{3, 10, 4}, {48, 100, 64}, {0, 10, 16}, {1, 10, 16},
                                             {100, 5, 128}, {5000, 10, 8192}, {24, 1, 32}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    errno = 1789;
    unsigned char *p = v_memalign(cases[i].a, cases[i].n);
    ok(p && aligned_to(p, cases[i].expect) && malloc_usable_size(p) >= cases[i].n &&
           errno == 1789,
       "memalign(%zu, %zu) aligned to %zu (next power of two, like glibc)", cases[i].a,
       cases[i].n, cases[i].expect);
    if (p)
      memset(p, 0x22, cases[i].n);
    free(p);
  }
  errno = 0;
  void *p = v_memalign(SIZE_MAX / 2 + 2, 1);
  ok(p == NULL && errno == EINVAL, "memalign(SIZE_MAX/2+2, 1) -> NULL, EINVAL (errno %d)", errno);
  errno = 0;
  p = v_memalign(SIZE_MAX, page_size());
  ok(p == NULL && errno == EINVAL, "memalign(-1, page) -> NULL, EINVAL (errno %d)", errno);
}

/* Alignment slack must go back: repeat big-alignment allocations and watch maps and RSS. */
static void slack_released(void)
{
  struct { size_t a, n; } cases[] = {{65536, 1}, {1 << 20, 100}, {2 << 20, 3 << 20},
                                     {1 << 26, 1}};
  for (int round = 0; round < 2; round++) {
    size_t maps0 = maps_count(), rss0 = rss_bytes();
    unsigned reps = scaled(300);
    for (unsigned r = 0; r < reps; r++)
      for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char *p = v_memalign(cases[i].a, cases[i].n);
        if (!p)
          bail_out("memalign(%zu, %zu) failed", cases[i].a, cases[i].n);
        p[0] = 1;
        p[cases[i].n - 1] = 2;
        free(p);
      }
    if (round == 0)
      continue; /* the first round warms up caches; the second must not grow anything */
    size_t maps1 = maps_count(), rss1 = rss_bytes();
    ok(maps1 <= maps0 + 8, "%u x 4 big-alignment memalign/free: mappings %zu -> %zu", reps,
       maps0, maps1);
    ok(rss1 <= rss0 + (8u << 20), "and RSS %zu KiB -> %zu KiB (within 8 MiB)", rss0 >> 10,
       rss1 >> 10);
  }
}

int test_aligned(void)
{
  ptest_init();
  posix_memalign_invalid();
  aligned_alloc_rules();
  memalign_rules();
  huge_alignments();
  slack_released();
  posix_memalign_sweep();
  ok(P.check_heap() == 0, "heap consistent at the end");
  return tap_done();
}
