/* t-stats.c: palloc_stats_get, mallinfo2, malloc_stats, malloc_trim and memory going back to
 * the operating system. */
#include "ptest.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void live_counts(void)
{
  size_t sizes[] = {1, 100, 4000, 50000, 1u << 20, 20u << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    struct palloc_stats before = stats_now();
    unsigned char *p = malloc(sizes[i]);
    memset(p, 1, sizes[i]);
    size_t usable = malloc_usable_size(p);
    struct palloc_stats during = stats_now();
    free(p);
    struct palloc_stats after = stats_now();
    ok(during.live_bytes >= before.live_bytes + usable,
       "malloc(%zu): live bytes rise by >= usable %zu (%llu -> %llu)", sizes[i], usable,
       (unsigned long long)before.live_bytes, (unsigned long long)during.live_bytes);
    ok(after.live_bytes + usable <= during.live_bytes,
       "free: live bytes fall by >= usable (%llu -> %llu)", (unsigned long long)during.live_bytes,
       (unsigned long long)after.live_bytes);
    ok(during.peak_live_bytes >= during.live_bytes && after.peak_live_bytes >= during.live_bytes,
       "peak live bytes >= live bytes seen");
    ok(during.mapped_bytes >= during.live_bytes && during.peak_mapped_bytes >= during.mapped_bytes,
       "mapped bytes (%llu) >= live bytes, peak mapped >= mapped",
       (unsigned long long)during.mapped_bytes);
    ok(during.calls[PALLOC_FN_MALLOC] == before.calls[PALLOC_FN_MALLOC] + 1 &&
           after.calls[PALLOC_FN_FREE] == during.calls[PALLOC_FN_FREE] + 1,
       "one malloc and one free counted");
  }
}

static void call_counts(void)
{
  struct palloc_stats b = stats_now();
  void *p = NULL;
  free(malloc(10));
  free(calloc(2, 10));
  free(realloc(NULL, 10));
  free(reallocarray(NULL, 2, 10));
  P.free_sized(malloc(10), 10);
  P.free_aligned_sized(aligned_alloc(64, 64), 64, 64);
  if (posix_memalign(&p, 64, 10) == 0)
    free(p);
  free(memalign(64, 10));
  free(valloc(10));
  free(pvalloc(10));
  struct palloc_stats a = stats_now();
  uint64_t expect[PALLOC_FN_COUNT] = {
    [PALLOC_FN_MALLOC] = 2, [PALLOC_FN_CALLOC] = 1, [PALLOC_FN_REALLOC] = 1,
    [PALLOC_FN_REALLOCARRAY] = 1, [PALLOC_FN_FREE] = 8, [PALLOC_FN_FREE_SIZED] = 1,
    [PALLOC_FN_FREE_ALIGNED_SIZED] = 1, [PALLOC_FN_POSIX_MEMALIGN] = 1,
    [PALLOC_FN_ALIGNED_ALLOC] = 1, [PALLOC_FN_MEMALIGN] = 1, [PALLOC_FN_VALLOC] = 1,
    [PALLOC_FN_PVALLOC] = 1,
  };
  for (int fn = 0; fn < PALLOC_FN_COUNT; fn++)
    ok(a.calls[fn] - b.calls[fn] == expect[fn], "calls[%s] rose by %llu (expected %llu)",
       P.function_name((enum palloc_function)fn), (unsigned long long)(a.calls[fn] - b.calls[fn]),
       (unsigned long long)expect[fn]);
}

static void rss_returns(void)
{
  size_t big = 64u << 20;
  size_t rss0 = rss_bytes();
  uint64_t mapped0 = mapped_bytes();
  unsigned char *p = malloc(big);
  memset(p, 0x6b, big);
  size_t rss1 = rss_bytes();
  uint64_t mapped1 = mapped_bytes();
  ok(rss1 >= rss0 + big - (4u << 20), "touching a 64 MiB block raises RSS (%zu -> %zu MiB)",
     rss0 >> 20, rss1 >> 20);
  ok(mapped1 >= mapped0 + big, "and mapped bytes by >= 64 MiB");
  ok(all_bytes(p, big, 0x6b), "the 64 MiB block holds its bytes");
  free(p);
  size_t rss2 = rss_bytes();
  ok(rss2 + (48u << 20) <= rss1, "freeing it gives the memory back: RSS %zu -> %zu MiB",
     rss1 >> 20, rss2 >> 20);
  ok(mapped_bytes() + (48u << 20) <= mapped1, "and mapped bytes fall by >= 48 MiB");

  /* Many medium blocks, most freed, then malloc_trim. */
  enum { N = 4000 };
  static unsigned char *blocks[N];
  uint64_t seed = 3;
  for (int i = 0; i < N; i++) {
    size_t s = 1024 + rng_below(&seed, 15 * 1024);
    blocks[i] = malloc(s);
    memset(blocks[i], 0x2d, s);
  }
  size_t rss3 = rss_bytes();
  for (int i = 0; i < N; i++)
    if (i % 13 != 0) {
      free(blocks[i]);
      blocks[i] = NULL;
    }
  int trimmed = malloc_trim(0);
  size_t rss4 = rss_bytes();
  ok(trimmed == 0 || trimmed == 1, "malloc_trim(0) returns 0 or 1 (%d)", trimmed);
  ok(rss4 < rss3 - (rss3 - rss0) / 4,
     "after freeing 12 of 13 of %d blocks (~32 MiB) and malloc_trim, RSS fell: %zu -> %zu KiB", N,
     rss3 >> 10, rss4 >> 10);
  size_t bad = 0;
  for (int i = 0; i < N; i += 13)
    bad += blocks[i][0] != 0x2d;
  ok(bad == 0, "the kept blocks survive malloc_trim");
  for (int i = 0; i < N; i++)
    free(blocks[i]);
  ok(P.check_heap() == 0, "heap consistent after trim");
}

static void mallinfo_numbers(void)
{
  struct mallinfo2 m0 = mallinfo2();
  enum { N = 1000 };
  void *blocks[N];
  size_t sum = 0;
  for (int i = 0; i < N; i++) {
    blocks[i] = malloc(100);
    sum += malloc_usable_size(blocks[i]);
  }
  struct mallinfo2 m1 = mallinfo2();
  ok(m1.uordblks >= m0.uordblks + sum, "mallinfo2().uordblks grows by >= %zu after %d mallocs (%zu -> %zu)",
     sum, N, m0.uordblks, m1.uordblks);
  for (int i = 0; i < N; i++)
    free(blocks[i]);
  struct mallinfo2 m2 = mallinfo2();
  ok(m2.uordblks + sum <= m1.uordblks, "and falls back after the frees (%zu)", m2.uordblks);
  ok(m1.arena > 0 && m1.arena + m1.hblkhd >= m1.uordblks, "arena + hblkhd >= uordblks");
  struct palloc_stats s = stats_now();
  ok(m2.uordblks <= s.live_bytes + (1u << 20) && m2.uordblks + (1u << 20) >= s.live_bytes,
     "uordblks (%zu) agrees with palloc live bytes (%llu)", m2.uordblks,
     (unsigned long long)s.live_bytes);
}

static void print_malloc_stats(void *arg)
{
  (void)arg;
  free(malloc(100));
  malloc_stats();
}

static void print_palloc_stats(void *arg)
{
  (void)arg;
  free(malloc(100));
  P.stats_print();
}

static void reports(void)
{
  static char err[16384];
  int status;
  run_in_child(print_malloc_stats, NULL, 30, &status, err, sizeof err);
  ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "malloc_stats() runs");
  ok(strncmp(err, "palloc", 6) == 0 && strstr(err, "malloc") != NULL,
     "malloc_stats() prints palloc's report on stderr (starts \"%.20s\")", err);
  ok(strstr(err, "Arena 0:") == NULL, "and not glibc's");
  run_in_child(print_palloc_stats, NULL, 30, &status, err, sizeof err);
  ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "palloc_stats_print() runs");
  ok(strncmp(err, "palloc", 6) == 0 && strstr(err, "malloc") && strstr(err, "free"),
     "palloc_stats_print() report names the functions");
  diag("report: %.300s", err);
}

int test_stats(void)
{
  ptest_init();
  live_counts();
  call_counts();
  mallinfo_numbers();
  rss_returns();
  reports();
  return tap_done();
}
