/* t-api.c: the core rules of the API, with contents checked; glibc's own names for its
 * allocator lead to palloc. */
#include "ptest.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct block {
  unsigned char *p;
  size_t size;
  size_t usable;
};

/* Blocks up to 64 KiB are filled whole; bigger ones over their first 64 KiB and last 4 KiB
 * (touching hundreds of MiB would only measure the machine). */
static size_t head_size(size_t usable) { return usable <= 65536 + 4096 ? usable : 65536; }

static void fill_block(struct block *b, uint64_t seed)
{
  size_t head = head_size(b->usable);
  fill_pattern(b->p, head, seed);
  if (b->usable > head)
    fill_pattern(b->p + b->usable - 4096, 4096, ~seed);
}

static bool block_ok(const struct block *b, uint64_t seed)
{
  size_t head = head_size(b->usable);
  return pattern_ok(b->p, head, seed) &&
         (b->usable == head || pattern_ok(b->p + b->usable - 4096, 4096, ~seed));
}

static int by_address(const void *a, const void *b)
{
  const struct block *x = a, *y = b;
  return (x->p > y->p) - (x->p < y->p);
}

/* Sizes 0..4096 and 2^k-1, 2^k, 2^k+1 up to 64 MiB: all live at once, each filled with its own
 * pattern, then checked for alignment, disjointness and intact contents. */
static void size_sweep(void)
{
  enum { SMALL = 4097, MAX_BLOCKS = SMALL + 3 * 27 };
  static struct block blocks[MAX_BLOCKS];
  size_t count = 0, bad_align = 0, bad_usable = 0, nulls = 0;
  for (size_t size = 0; size < SMALL; size++)
    blocks[count++].size = size;
  for (unsigned k = 13; k <= 26; k++)
    for (int d = -1; d <= 1; d++)
      blocks[count++].size = ((size_t)1 << k) + (size_t)d;
  for (size_t i = 0; i < count; i++) {
    struct block *b = &blocks[i];
    b->p = malloc(b->size);
    if (b->p == NULL) {
      nulls++;
      continue;
    }
    b->usable = malloc_usable_size(b->p);
    bad_align += !aligned_to(b->p, 16);
    bad_usable += b->usable < b->size;
    fill_block(b, i);
  }
  ok(nulls == 0, "size sweep: %zu blocks, none NULL (%zu were)", count, nulls);
  ok(bad_align == 0, "size sweep: every pointer 16-aligned (%zu were not)", bad_align);
  ok(bad_usable == 0, "size sweep: usable size >= size asked (%zu were smaller)", bad_usable);
  size_t bad_fill = 0;
  for (size_t i = 0; i < count; i++)
    if (blocks[i].p && !block_ok(&blocks[i], i))
      bad_fill++;
  ok(bad_fill == 0, "size sweep: every block keeps its pattern (%zu lost it)", bad_fill);
  ok(P.check_heap() == 0, "size sweep: heap consistent with all blocks live");
  struct block sorted[MAX_BLOCKS];
  memcpy(sorted, blocks, sizeof blocks[0] * count);
  qsort(sorted, count, sizeof sorted[0], by_address);
  size_t overlaps = 0;
  for (size_t i = 1; i < count; i++)
    if (sorted[i - 1].p && sorted[i - 1].p + sorted[i - 1].usable > sorted[i].p)
      overlaps++;
  ok(overlaps == 0, "size sweep: no two blocks' usable ranges overlap (%zu did)", overlaps);
  /* Free every other block, allocate again, and check the survivors. */
  for (size_t i = 0; i < count; i += 2)
    free(blocks[i].p);
  void *again[SMALL / 2 + 64];
  size_t n_again = 0;
  for (size_t i = 0; i < count && n_again < sizeof again / sizeof again[0]; i += 2) {
    again[n_again] = malloc(blocks[i].size);
    if (again[n_again])
      memset(again[n_again], 0xee, blocks[i].size);
    n_again++;
  }
  bad_fill = 0;
  for (size_t i = 1; i < count; i += 2)
    if (blocks[i].p && !block_ok(&blocks[i], i))
      bad_fill++;
  ok(bad_fill == 0, "size sweep: survivors intact after freeing and reusing their neighbours");
  for (size_t i = 0; i < n_again; i++)
    free(again[i]);
  for (size_t i = 1; i < count; i += 2)
    free(blocks[i].p);
  ok(P.check_heap() == 0, "size sweep: heap consistent after freeing everything");
}

static void malloc_zero(void)
{
  void *a = malloc(0), *b = malloc(0);
  ok(a != NULL && b != NULL, "malloc(0) returns non-NULL");
  ok(a != b, "two malloc(0) return distinct pointers");
  ok(aligned_to(a, 16) && aligned_to(b, 16), "malloc(0) pointers are 16-aligned");
  void *live[512];
  size_t clashes = 0;
  for (int i = 0; i < 512; i++) {
    live[i] = malloc(64);
    clashes += live[i] == a || live[i] == b;
    free(malloc(0));
  }
  ok(clashes == 0, "no malloc(64) returns a live malloc(0) pointer");
  for (int i = 0; i < 512; i++)
    free(live[i]);
  free(a);
  free(b);
}

static void null_rules(void)
{
  errno = 1789;
  free(NULL);
  ok(errno == 1789, "free(NULL) does nothing and keeps errno");
  ok(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) == 0");
  P.free_sized(NULL, 0);
  P.free_aligned_sized(NULL, 0, 0);
  ok(errno == 1789, "free_sized(NULL, 0) and free_aligned_sized(NULL, 0, 0) do nothing");
  void *p = realloc(NULL, 100);
  ok(p != NULL && malloc_usable_size(p) >= 100, "realloc(NULL, 100) allocates like malloc");
  if (p)
    memset(p, 1, 100);
  free(p);
  p = realloc(NULL, 0);
  ok(p != NULL, "realloc(NULL, 0) is non-NULL like malloc(0)");
  free(p);
}


static void calloc_degenerate(void)
{
  void *a = v_calloc(0, 0), *b = v_calloc(0, SIZE_MAX), *c = v_calloc(SIZE_MAX, 0);
  ok(a && b && c, "calloc(0,0), calloc(0,SIZE_MAX), calloc(SIZE_MAX,0) are non-NULL");
  ok(a != b && b != c && a != c, "and distinct");
  free(a);
  free(b);
  free(c);
}

static void page_allocs(void)
{
  size_t page = page_size();
  void *v1 = valloc(1), *v2 = valloc(page + 1);
  ok(v1 && aligned_to(v1, page) && malloc_usable_size(v1) >= 1, "valloc(1) is page-aligned");
  ok(v2 && aligned_to(v2, page) && malloc_usable_size(v2) >= page + 1,
     "valloc(page+1) is page-aligned with usable >= page+1");
  if (v2)
    fill_pattern(v2, page + 1, 7);
  void *p1 = pvalloc(1), *p0 = pvalloc(0), *p3 = pvalloc(3 * page + 5);
  ok(p1 && aligned_to(p1, page) && malloc_usable_size(p1) >= page,
     "pvalloc(1) is page-aligned with usable >= one page");
  ok(p0 && aligned_to(p0, page), "pvalloc(0) is non-NULL and page-aligned");
  ok(p3 && aligned_to(p3, page) && malloc_usable_size(p3) >= 4 * page,
     "pvalloc(3 pages + 5) rounds up to 4 pages");
  if (p3)
    memset(p3, 0x3c, 4 * page);
  char *s = pvalloc(5);
  if (s)
    strcpy(s, "abcdefg");
  ok(s && strcmp(s, "abcdefg") == 0, "pvalloc(5) holds a string longer than 5 bytes");
  ok(v2 && pattern_ok(v2, page + 1, 7), "valloc block intact after pvalloc calls");
  ok(p3 && all_bytes(p3, 4 * page, 0x3c), "pvalloc block writable over 4 pages");
  free(v1);
  free(v2);
  free(p1);
  free(p0);
  free(p3);
  free(s);
}

static void reallocarray_basic(void)
{
  unsigned char *p = reallocarray(NULL, 10, 2);
  ok(p && malloc_usable_size(p) >= 20, "reallocarray(NULL, 10, 2) gives >= 20 bytes");
  if (!p)
    return;
  memset(p, 0xaf, 20);
  p = reallocarray(p, 20, 2);
  ok(p && all_bytes(p, 20, 0xaf), "reallocarray grow to 40 keeps the 20 bytes");
  if (!p)
    return;
  memset(p, 0xaf, 40);
  p = reallocarray(p, 5, 3);
  ok(p && all_bytes(p, 15, 0xaf), "reallocarray shrink to 15 keeps 15 bytes");
  free(p);
  errno = 0;
  p = reallocarray(NULL, 0, 16);
  ok(p != NULL && errno == 0, "reallocarray(NULL, 0, 16) is non-NULL, errno untouched");
  free(p);
}

static void sized_frees(void)
{
  uint64_t base = live_bytes();
  uint64_t fs = call_count(PALLOC_FN_FREE_SIZED), fas = call_count(PALLOC_FN_FREE_ALIGNED_SIZED);
  void *a = malloc(128);
  memset(a, 1, 128);
  P.free_sized(a, 128);
  void *b = calloc(3, 40);
  P.free_sized(b, 120);
  void *c = realloc(malloc(8), 300);
  memset(c, 2, 300);
  P.free_sized(c, 300);
  void *d = aligned_alloc(128, 1024);
  ok(d && aligned_to(d, 128), "aligned_alloc(128, 1024) is 128-aligned");
  memset(d, 3, 1024);
  P.free_aligned_sized(d, 128, 1024);
  ok(live_bytes() == base, "free_sized/free_aligned_sized return live bytes to baseline (%llu -> %llu)",
     (unsigned long long)base, (unsigned long long)live_bytes());
  ok(call_count(PALLOC_FN_FREE_SIZED) == fs + 3, "free_sized counted 3 times");
  ok(call_count(PALLOC_FN_FREE_ALIGNED_SIZED) == fas + 1, "free_aligned_sized counted once");
  ok(P.check_heap() == 0, "heap consistent after sized frees");
}

static void mixed_frees(void)
{
  /* Every allocation function's blocks can be freed with free() and resized with realloc(). */
  size_t page = page_size();
  void *blocks[8];
  void *pm = NULL;
  blocks[0] = malloc(100);
  blocks[1] = calloc(10, 10);
  blocks[2] = realloc(NULL, 100);
  blocks[3] = reallocarray(NULL, 10, 10);
  blocks[4] = posix_memalign(&pm, 256, 100) == 0 ? pm : NULL;
  blocks[5] = aligned_alloc(512, 100);
  blocks[6] = memalign(1024, 100);
  blocks[7] = valloc(100);
  size_t bad = 0;
  for (int i = 0; i < 8; i++) {
    if (!blocks[i]) {
      bad++;
      continue;
    }
    fill_pattern(blocks[i], 100, (uint64_t)i);
    unsigned char *r = realloc(blocks[i], 5000 + page);
    if (!r || !pattern_ok(r, 100, (uint64_t)i))
      bad++;
    blocks[i] = r;
  }
  ok(bad == 0, "blocks of every allocation function grow with realloc keeping contents");
  for (int i = 0; i < 8; i++)
    free(blocks[i]);
  ok(P.check_heap() == 0, "heap consistent after freeing them with free()");
}

static void extension_names(void)
{
  ok(strcmp(P.function_name(PALLOC_FN_MALLOC), "malloc") == 0, "palloc_function_name(MALLOC)");
  ok(strcmp(P.function_name(PALLOC_FN_FREE_ALIGNED_SIZED), "free_aligned_sized") == 0,
     "palloc_function_name(FREE_ALIGNED_SIZED)");
  ok(strcmp(P.function_name(PALLOC_FN_PVALLOC), "pvalloc") == 0, "palloc_function_name(PVALLOC)");
  ok(P.function_name(PALLOC_FN_COUNT) == NULL && P.function_name((enum palloc_function)-1) == NULL,
     "palloc_function_name out of range is NULL");
  const char *name = P.backend_name();
  ok(strcmp(name, "mmap") == 0 || strcmp(name, "sbrk") == 0, "palloc_backend_name() is \"%s\"", name);
}

static void libc_internal_allocations(void)
{
  uint64_t before = call_count(PALLOC_FN_MALLOC);
  char *s = strdup("interposed");
  ok(s && strcmp(s, "interposed") == 0, "strdup works");
  ok(call_count(PALLOC_FN_MALLOC) > before, "glibc's strdup allocated through palloc's malloc");
  ok(malloc_usable_size(s) >= 11, "malloc_usable_size of a strdup'd block >= 11");
  free(s);
}

/* glibc's own names for its allocator (__libc_malloc...) and the old cfree, looked up at run
 * time as a program preloading palloc would reach them: each must be palloc's (the block counts
 * in palloc's live bytes; a block from one name goes back through another). */
static void *named(const char *name)
{
  void *fn = dlsym(RTLD_DEFAULT, name);
  if (fn == NULL)
    ok(0, "%s resolves", name);
  return fn;
}

/* Whether p, just made by name, is a palloc block counted in the live bytes, aligned (and
 * zeroed); it is freed with free, which must take it back. */
static void counted_and_freed(const char *name, void *p, size_t alignment, bool zeroed,
                              uint64_t live_before)
{
  size_t usable = p ? malloc_usable_size(p) : 0;
  bool counted = p != NULL && stats_now().live_bytes >= live_before + usable && usable >= 100 &&
                 ((uintptr_t)p & (alignment - 1)) == 0 && (!zeroed || all_bytes(p, usable, 0));
  if (p != NULL)
    memset(p, 0x3c, usable);
  free(p);
  bool freed = stats_now().live_bytes <= live_before;
  ok(counted && freed && P.check_heap() == 0,
     "%s: a palloc block (%zu usable bytes counted, aligned to %zu%s), which free takes back", name,
     usable, alignment, zeroed ? ", zeroed" : "");
}

/* A block of malloc's given to name (__libc_free or cfree) leaves the live bytes. */
static void takes_back(const char *name)
{
  void (*release)(void *) = (void (*)(void *))named(name);
  if (release == NULL)
    return;
  uint64_t live = stats_now().live_bytes;
  void *q = malloc(1000);
  size_t usable = malloc_usable_size(q);
  uint64_t during = stats_now().live_bytes;
  release(q);
  uint64_t after = stats_now().live_bytes;
  ok(during >= live + usable && after + usable <= during && P.check_heap() == 0,
     "%s takes back a block of malloc's (live %llu -> %llu -> %llu)", name,
     (unsigned long long)live, (unsigned long long)during, (unsigned long long)after);
}

static void glibc_names(void)
{
  size_t page = page_size();
  void *(*libc_malloc)(size_t) = (void *(*)(size_t))named("__libc_malloc");
  void *(*libc_calloc)(size_t, size_t) = (void *(*)(size_t, size_t))named("__libc_calloc");
  void *(*libc_memalign)(size_t, size_t) = (void *(*)(size_t, size_t))named("__libc_memalign");
  void *(*libc_valloc)(size_t) = (void *(*)(size_t))named("__libc_valloc");
  void *(*libc_pvalloc)(size_t) = (void *(*)(size_t))named("__libc_pvalloc");
  void *(*libc_realloc)(void *, size_t) = (void *(*)(void *, size_t))named("__libc_realloc");
  if (libc_malloc)
    counted_and_freed("__libc_malloc", libc_malloc(100), 16, false, stats_now().live_bytes);
  if (libc_calloc)
    counted_and_freed("__libc_calloc", libc_calloc(10, 30), 16, true, stats_now().live_bytes);
  if (libc_memalign)
    counted_and_freed("__libc_memalign", libc_memalign(256, 100), 256, false,
                      stats_now().live_bytes);
  if (libc_valloc)
    counted_and_freed("__libc_valloc", libc_valloc(100), page, false, stats_now().live_bytes);
  if (libc_pvalloc)
    counted_and_freed("__libc_pvalloc", libc_pvalloc(100), page, false, stats_now().live_bytes);
  if (libc_realloc) {
    uint64_t live = stats_now().live_bytes;
    unsigned char *p = malloc(40);
    fill_pattern(p, 40, 77);
    p = libc_realloc(p, 4000);
    ok(p != NULL && pattern_ok(p, 40, 77), "__libc_realloc grows a block of malloc's, contents kept");
    counted_and_freed("__libc_realloc", p, 16, false, live);
  }
  takes_back("__libc_free");
  takes_back("cfree");
}

/* mallopt is palloc's, answers as glibc's (2.36) does (1; 0 for M_MXFAST above 160 bytes or
 * negative) and changes nothing palloc does. */
static void mallopt_is_palloc(void)
{
  int (*opt)(int, int) = (int (*)(int, int))named("mallopt");
  if (opt == NULL)
    return;
  Dl_info info;
  bool ours = dladdr((void *)opt, &info) != 0 && info.dli_fname != NULL &&
              strstr(info.dli_fname, "libpalloc") != NULL;
  ok(ours, "mallopt resolves to palloc's (%s)", ours ? info.dli_fname : "elsewhere");
  ok(opt(M_MXFAST, 160) == 1 && opt(M_MXFAST, 161) == 0 && opt(M_MXFAST, -1) == 0,
     "mallopt(M_MXFAST): 1 up to 160 bytes, 0 above and for -1, as glibc");
  ok(opt(M_MMAP_THRESHOLD, 0) == 1 && opt(M_MMAP_THRESHOLD, 1 << 30) == 1 &&
         opt(M_MMAP_THRESHOLD, -1) == 1 && opt(M_TRIM_THRESHOLD, 0) == 1 &&
         opt(M_TOP_PAD, 0) == 1 && opt(M_MMAP_MAX, 0) == 1 && opt(M_ARENA_MAX, 1) == 1 &&
         opt(M_PERTURB, 0x5a) == 1 && opt(12345, 7) == 1,
     "mallopt's other parameters, whatever the value, and an unknown one, answer 1, as glibc");
  /* palloc's thresholds are its own: it serves as before. */
  uint64_t live = stats_now().live_bytes;
  void *blocks[64];
  for (int i = 0; i < 64; i++)
    blocks[i] = malloc(1000);
  bool served = stats_now().live_bytes >= live + 64 * 1000;
  for (int i = 0; i < 64; i++)
    free(blocks[i]);
  ok(served && P.check_heap() == 0,
     "after mallopt(M_MMAP_MAX, 0), mallopt(M_MMAP_THRESHOLD, -1) and mallopt(M_PERTURB, 0x5a), "
     "palloc serves 64 blocks of 1000 bytes, counted in its live bytes");
  opt(M_PERTURB, 0);
}

/* The mmap backend never moves the program break: if the break moved while this test
 * allocated hundreds of MiB, someone else's malloc (glibc's) served part of it. (The sbrk
 * backend moves it both ways, so there is nothing to assert for it here.) */
static void break_untouched(void *brk_before)
{
  if (strcmp(P.backend_name(), "mmap") == 0)
    ok(sbrk(0) == brk_before, "mmap backend: the program break did not move (%p -> %p)",
       brk_before, sbrk(0));
}

int test_api(void)
{
  ptest_init();
  void *brk_before = sbrk(0);
  size_sweep();
  malloc_zero();
  null_rules();
  calloc_degenerate();
  page_allocs();
  reallocarray_basic();
  sized_frees();
  mixed_frees();
  extension_names();
  libc_internal_allocations();
  glibc_names();
  mallopt_is_palloc();
  break_untouched(brk_before);
  ok(P.check_heap() == 0, "heap consistent at the end");
  return tap_done();
}
