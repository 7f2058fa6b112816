/* t-stats.c: palloc_stats_get, mallinfo2, mallinfo, malloc_info, malloc_stats, malloc_trim
 * and memory going back to the operating system. */
#include "ptest.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

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

/* While the heap only grows, the peak of mapped bytes is what is mapped: no mapping counts
 * bytes it gives back at once (an aligned region's slack, before: a 4 MiB region counted 8).
 * In a child, whose heap is as young as the test's and whose growth the later tests do not
 * inherit. */
static void peak_child(void *arg)
{
  (void)arg;
  enum { COUNT = 12 * 1024 }; /* 12 MiB of 1 KiB blocks: new regions, or a longer heap */
  void **blocks = malloc(COUNT * sizeof *blocks);
  struct palloc_stats before = stats_now();
  for (size_t i = 0; i < COUNT; i++) {
    blocks[i] = malloc(1024);
    memset(blocks[i], (int)i, 1024);
  }
  struct palloc_stats grown = stats_now();
  uint64_t peak_expected = before.peak_mapped_bytes > grown.mapped_bytes ? before.peak_mapped_bytes
                                                                          : grown.mapped_bytes;
  printf("# mapped %llu -> %llu KiB, peak %llu -> %llu KiB (expected %llu)\n",
         (unsigned long long)before.mapped_bytes >> 10, (unsigned long long)grown.mapped_bytes >> 10,
         (unsigned long long)before.peak_mapped_bytes >> 10,
         (unsigned long long)grown.peak_mapped_bytes >> 10, (unsigned long long)peak_expected >> 10);
  fflush(stdout);
  if (grown.mapped_bytes < before.mapped_bytes + ((uint64_t)COUNT << 10) / 2 ||
      grown.peak_mapped_bytes != peak_expected)
    _exit(1);
}

static void peak_counts_what_stays_mapped(void)
{
  static char err[1024];
  int status = -1;
  run_in_child(peak_child, NULL, 60, &status, err, sizeof err);
  ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
     "12 MiB in 1 KiB blocks: the peak of mapped bytes is the most mapped at once (status %#x)",
     status);
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

static void sleep_ms(long ms)
{
  struct timespec wait = { ms / 1000, (ms % 1000) * 1000000 };
  while (nanosleep(&wait, &wait) != 0)
    ;
}

/* Frees that reach the backend one by one (blocks beyond the thread caches): the mmap backend
 * looks at idle memory every 64 of them. backend_frees_prepare() allocates the blocks before
 * the memory a test watches; each backend_frees_half() frees half of them. */
enum { BACKEND_FREES = 192, BACKEND_FREES_HALF = BACKEND_FREES / 2 };
static unsigned char *backend_free_block[BACKEND_FREES];

static void backend_frees_prepare(void)
{
  for (int i = 0; i < BACKEND_FREES; i++)
    backend_free_block[i] = malloc(40u << 10);
}

static void backend_frees_half(int half)
{
  for (int i = half * BACKEND_FREES_HALF; i < (half + 1) * BACKEND_FREES_HALF; i++)
    free(backend_free_block[i]);
}

/* Longer than the mmap backend's page-release delay, 2^28 time-stamp counter cycles, at any
 * counter rate from 450 MHz up. */
#define RELEASE_WAIT_MS 600

/* Free pages in the middle of the heap go back to the OS by themselves, without malloc_trim:
 * the sbrk backend gives a free block's pages back at once; the mmap backend keeps them about
 * 100 ms (hysteresis: a program that frees and soon allocates again does not fault them in
 * again) and gives them back at its first frees after that. Five blocks freed between two kept
 * ones make the free block whose interior is watched with mincore. Under memcheck freed
 * blocks wait in palloc's quarantine instead (README "Running under valgrind"). */
static void free_pages_go_back(void)
{
  if (ptest_under_memcheck())
    return;
  bool is_mmap = strcmp(P.backend_name(), "mmap") == 0;
  /* mmap: blocks in a region (under 512 KiB) making a free block of 1 MiB or more; sbrk:
   * blocks in the heap (under 128 KiB) making one of 16 KiB or more. */
  size_t size = is_mmap ? 256u << 10 : 64u << 10;
  static unsigned char *run[HOLE_RUN], *spare[HOLE_TRIES];
  backend_frees_prepare();
  bool found = blocks_side_by_side(size, run, spare);
  ok(found, "%d blocks of %zu KiB lie side by side", HOLE_RUN, size >> 10);
  if (!found)
    return;
  for (int k = 1; k + 1 < HOLE_RUN; k++)
    free(run[k]);
  const char *start = (char *)run[1] + 2 * page_size();
  const char *end = (char *)run[HOLE_RUN - 1] - 2 * page_size();
  size_t pages = (size_t)(end - start) / page_size() - 1;
  size_t after_free = resident_pages(start, end);
  backend_frees_half(0);
  size_t after_frees = resident_pages(start, end);
  sleep_ms(RELEASE_WAIT_MS);
  backend_frees_half(1);
  size_t after_wait = resident_pages(start, end);
  if (is_mmap) {
    ok(after_free >= pages && after_frees >= pages,
       "mmap: the free block's %zu interior pages stay resident after its free and %d more "
       "frees (%zu, %zu)", pages, BACKEND_FREES_HALF, after_free, after_frees);
    ok(after_wait == 0, "and go back after %d ms at the next frees (%zu resident)",
       RELEASE_WAIT_MS, after_wait);
  } else {
    ok(after_free == 0, "sbrk: the free block's %zu interior pages go back at once (%zu resident)",
       pages, after_free);
    ok(after_wait == 0, "and stay given back (%zu resident)", after_wait);
  }
  ok(all_bytes(run[0], size, 0x3c) && all_bytes(run[HOLE_RUN - 1], size, 0x3c),
     "the blocks on either side keep their bytes");
  free(run[0]);
  free(run[HOLE_RUN - 1]);
  for (int i = 0; i < HOLE_TRIES; i++)
    free(spare[i]);
  ok(P.check_heap() == 0, "heap consistent after the pages went back");
}

/* mmap: a region left wholly free stays mapped for about 100 ms (a program that frees and
 * soon allocates again does not map it and fault it in again: bench fragmentation did that
 * with 24 regions), is unmapped at the first frees after that, and at once when a block is to
 * be mapped on its own (which the region could not serve). Seen through mapped_bytes: 40
 * blocks of 256 KiB fill two 4 MiB regions or more. (The sbrk backend has no regions.) */
static void free_regions_wait(void)
{
  if (ptest_under_memcheck() || strcmp(P.backend_name(), "mmap") != 0)
    return;
  enum { BLOCKS = 40 };
  static unsigned char *block[BLOCKS];
  const uint64_t region = 4u << 20;
  backend_frees_prepare();
  for (int i = 0; i < BLOCKS; i++)
    memset(block[i] = malloc(256u << 10), 0x5a, 256u << 10);
  uint64_t before = mapped_bytes();
  for (int i = 0; i < BLOCKS; i++)
    free(block[i]);
  uint64_t freed = mapped_bytes();
  backend_frees_half(0);
  uint64_t soon = mapped_bytes();
  ok(freed == before && soon == before,
     "a region left wholly free stays mapped after its frees and %d more (%llu, %llu, %llu KiB)",
     BACKEND_FREES_HALF, (unsigned long long)before >> 10, (unsigned long long)freed >> 10,
     (unsigned long long)soon >> 10);
  sleep_ms(RELEASE_WAIT_MS);
  backend_frees_half(1);
  uint64_t later = mapped_bytes();
  ok(later + region <= before, "and is unmapped at the first frees after %d ms (%llu KiB)",
     RELEASE_WAIT_MS, (unsigned long long)later >> 10);

  for (int i = 0; i < BLOCKS; i++)
    memset(block[i] = malloc(256u << 10), 0x5a, 256u << 10);
  before = mapped_bytes();
  for (int i = 0; i < BLOCKS; i++)
    free(block[i]);
  freed = mapped_bytes();
  unsigned char *big = malloc(2u << 20);
  uint64_t mapped = mapped_bytes();
  ok(freed == before && mapped + region <= before + (2u << 20) + (64u << 10),
     "a block mapped on its own first unmaps the regions kept free (%llu -> %llu KiB)",
     (unsigned long long)freed >> 10, (unsigned long long)mapped >> 10);
  memset(big, 0x5b, 2u << 20);
  ok(all_bytes(big, 2u << 20, 0x5b), "the mapped block holds its bytes");
  free(big);
  ok(P.check_heap() == 0, "heap consistent after the regions went back");
}

/* mmap: where a big block's mapping lies (the block's header, 48 bytes, starts the mapping's
 * first page and ends at the payload; the mapping ends 8 bytes past the usable size). */
static char *mapping_start_of(void *p)
{
  return (char *)((uintptr_t)p & ~(uintptr_t)(page_size() - 1));
}

static char *mapping_end_of(void *p) { return (char *)p + malloc_usable_size(p) + 8; }

/* Whether a's mapping ends where b's starts, and the kernel keeps them apart. */
static bool kernel_mappings_touch(unsigned char *a, unsigned char *b)
{
  return mapping_end_of(a) == mapping_start_of(b) && kernel_mapping_starts_at(mapping_start_of(b));
}

/* Two big blocks whose mappings lie side by side as two kernel mappings: one moved by mremap
 * (a realloc that could not grow in place), which keeps its old offset, so the kernel does
 * not join it with a block mapped next to it (here the kernel maps the other one just above
 * it, where it was before it moved). Tries GROW_TRIES times (the ones that do not touch are
 * kept in spare[]). */
enum { GROW_TRIES = 16 };
static bool mappings_side_by_side(unsigned char **lower, unsigned char **upper,
                                  unsigned char **spare)
{
  for (int i = 0; i < GROW_TRIES; i++) {
    unsigned char *moved = realloc(malloc(1u << 20), 3u << 20), *other = malloc(1u << 20);
    *lower = moved < other ? moved : other;
    *upper = moved < other ? other : moved;
    if (moved != NULL && other != NULL && kernel_mappings_touch(*lower, *upper))
      return true;
    spare[2 * i] = moved;
    spare[2 * i + 1] = other;
  }
  return false;
}

/* mmap: a big block that a cached mapping (a freed block's, kept resident) cannot hold grows
 * the largest one, whose pages move with mremap instead of faulting in again; when the cached
 * address space is two kernel mappings side by side (two freed blocks the cache joined),
 * which mremap refuses to grow as one, they move into a new mapping (os_remap). Before, such a block was
 * mapped afresh: bench large faulted 7216 pages where mimalloc faulted 6233 (perf stat); and
 * a realloc of a block made so copied it. */
static void cached_mappings_grow_without_faults(void)
{
  if (ptest_under_memcheck() || strcmp(P.backend_name(), "mmap") != 0)
    return;
  static unsigned char *spare[2 * GROW_TRIES];
  unsigned char *lower, *upper;
  malloc_trim(0); /* empties the mapping cache */
  bool found = mappings_side_by_side(&lower, &upper, spare);
  ok(found, "two big blocks lie side by side in two kernel mappings");
  if (found) {
    size_t len = (size_t)(mapping_end_of(upper) - mapping_start_of(lower));
    memset(lower, 0x5a, malloc_usable_size(lower));
    memset(upper, 0x5a, malloc_usable_size(upper));
    free(upper);
    free(lower); /* the cache joins the two mappings */
    size_t size = len + (2u << 20);
    unsigned char *grown = malloc(size);
    const char *moved_end = (char *)grown + len - page_size() - 64;
    size_t pages = whole_pages((char *)grown, moved_end);
    size_t resident = resident_pages((char *)grown, moved_end);
    ok(resident == pages, "a bigger block grows from both: their %zu pages stay resident (%zu)",
       pages, resident);
    memset(grown, 0x6b, size);
    ok(all_bytes(grown, size, 0x6b), "and it holds its %zu bytes", size);
    unsigned char *regrown = realloc(grown, size + (4u << 20)); /* moves pieces again */
    ok(regrown != NULL && all_bytes(regrown, size, 0x6b),
       "realloc moves that block (pieces of several kernel mappings) with its bytes");
    free(regrown ? regrown : grown);
    unsigned char *zeroed = calloc(1, size + (2u << 20));
    ok(zeroed != NULL && all_bytes(zeroed, size + (2u << 20), 0),
       "calloc of a block grown from that cached mapping reads zero");
    free(zeroed);
  }
  for (int i = 0; i < 2 * GROW_TRIES; i++)
    free(spare[i]);
  ok(P.check_heap() == 0, "heap consistent after the cached mappings grew");
}

/* Bytes the allocator holds in use beyond the live blocks: its own structures (thread caches
 * among them) and the blocks' headers. */
static uint64_t overhead_bytes(struct palloc_stats s)
{
  return s.mapped_bytes - s.backend_free_bytes - s.cached_bytes - s.live_bytes;
}

/* Give the thread its cache, then wait until every such thread has one (arg: a barrier), so
 * that none takes over the cache of one that exited before it started. */
static void *allocate_wait_and_exit(void *arg)
{
  free(malloc(64));
  pthread_barrier_wait(arg);
  return NULL;
}

/* An exited thread's cache waits as a spare for the next thread (lib/tcache.c), and
 * malloc_trim hands the spares back: the overhead falls by at least four caches' slots. */
static void spare_caches_trimmed(void)
{
  enum { THREADS = 4, CACHE_SLOT_BYTES_MIN = 6 * 1024 };
  if (ptest_under_memcheck()) {
    ok(1, "no thread caches under memcheck: no spare caches to hand back");
    return;
  }
  pthread_t threads[THREADS];
  pthread_barrier_t all_have_caches;
  pthread_barrier_init(&all_have_caches, NULL, THREADS);
  int started = 0;
  for (int i = 0; i < THREADS; i++)
    started += pthread_create(&threads[i], NULL, allocate_wait_and_exit, &all_have_caches) == 0;
  for (int i = 0; i < started; i++)
    pthread_join(threads[i], NULL);
  pthread_barrier_destroy(&all_have_caches);
  struct palloc_stats before = stats_now();
  malloc_trim(0);
  struct palloc_stats after = stats_now();
  ok(started == THREADS && overhead_bytes(before) >= overhead_bytes(after) +
                                                      THREADS * CACHE_SLOT_BYTES_MIN,
     "%d exited threads' caches handed back by malloc_trim: overhead %llu -> %llu B", started,
     (unsigned long long)overhead_bytes(before), (unsigned long long)overhead_bytes(after));
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

/* The older mallinfo gives mallinfo2's numbers (glibc's own, left to answer, would describe
 * its unused heap), and malloc_info palloc's statistics in glibc's XML layout. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void mallinfo_old_and_xml(void)
{
  void *held = malloc(100000);
  memset(held, 1, 100000);
  struct mallinfo2 wide = mallinfo2();
  struct mallinfo narrow = mallinfo();
  ok(narrow.uordblks > 0 && (size_t)narrow.uordblks == wide.uordblks &&
         (size_t)narrow.arena == wide.arena && (size_t)narrow.hblkhd == wide.hblkhd &&
         (size_t)narrow.fordblks == wide.fordblks,
     "mallinfo() gives mallinfo2()'s numbers (uordblks %d, arena %d)", narrow.uordblks,
     narrow.arena);
  FILE *xml = tmpfile();
  uint64_t mapped_before = stats_now().mapped_bytes;
  int rc = xml ? malloc_info(0, xml) : -1;
  uint64_t mapped_after = stats_now().mapped_bytes;
  char text[4096] = "";
  unsigned long long current = 0;
  if (xml != NULL) {
    rewind(xml);
    text[fread(text, 1, sizeof text - 1, xml)] = '\0';
  }
  const char *system = strstr(text, "<system type=\"current\" size=\"");
  if (system != NULL)
    sscanf(system, "<system type=\"current\" size=\"%llu\"", &current);
  ok(rc == 0 && strncmp(text, "<malloc version=\"1\">", 20) == 0 &&
         strstr(text, "</malloc>") != NULL && current >= mapped_before && current <= mapped_after,
     "malloc_info(0) writes glibc's XML layout, its current size palloc's mapped bytes "
     "(%llu, palloc %llu)", current, (unsigned long long)mapped_before);
  ok(xml != NULL && malloc_info(1, xml) == EINVAL, "malloc_info(1) is EINVAL, as glibc's");
  if (xml != NULL)
    fclose(xml);
  free(held);
}
#pragma GCC diagnostic pop

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
  peak_counts_what_stays_mapped(); /* in a child: the heap here stays young */
  free_pages_go_back(); /* first: it looks for blocks side by side, as a young heap has them */
  free_regions_wait();
  cached_mappings_grow_without_faults();
  live_counts();
  call_counts();
  mallinfo_numbers();
  mallinfo_old_and_xml();
  rss_returns();
  spare_caches_trimmed();
  reports();
  return tap_done();
}
