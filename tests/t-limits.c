/* t-limits.c: sizes that cannot be served return NULL with errno ENOMEM and leave any old
 * block untouched (after glibc's tst-malloc-too-large, tst-reallocarray, tst-pvalloc). */
#include "ptest.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static unsigned failures;
static char first_failure[200];

static void expect_nomem(void *result, const char *what, size_t a, size_t b)
{
  int saved = errno;
  if (result == NULL && saved == ENOMEM)
    return;
  if (failures++ == 0)
    snprintf(first_failure, sizeof first_failure, "%s(%#zx, %#zx) gave %p, errno %d", what, a,
             b, result, saved);
  if (result != NULL)
    free(result);
}

/* Every function at one impossible size; old (a 16-byte block full of 0xab) must survive. */
static void try_size(size_t size, unsigned char *old)
{
  free(v_malloc(16)); /* warm up any cache, as glibc's test does */
  errno = 0;
  expect_nomem(v_malloc(size), "malloc", size, 0);
  errno = 0;
  expect_nomem(v_realloc(old, size), "realloc", size, 0);
  errno = 0;
  expect_nomem(v_reallocarray(old, size, 1), "reallocarray", size, 1);
  errno = 0;
  expect_nomem(v_reallocarray(old, 1, size), "reallocarray", 1, size);
  for (size_t n = 1; n <= 8; n *= 2) {
    errno = 0;
    expect_nomem(v_calloc(n, size / n), "calloc", n, size / n);
    errno = 0;
    expect_nomem(v_calloc(size / n, n), "calloc", size / n, n);
  }
  errno = 0;
  expect_nomem(v_valloc(size), "valloc", size, 0);
  errno = 0;
  expect_nomem(v_pvalloc(size), "pvalloc", size, 0);
  for (unsigned k = 0; k < 64; k += 3) {
    size_t alignment = (size_t)1 << k;
    errno = 0;
    expect_nomem(v_memalign(alignment, size), "memalign", alignment, size);
    errno = 0;
    expect_nomem(v_aligned_alloc(alignment, size), "aligned_alloc", alignment, size);
    if (alignment >= sizeof(void *)) {
      void *sentinel = &sentinel, *p = sentinel;
      errno = 1789;
      int rc = v_posix_memalign(&p, alignment, size);
      if ((rc != ENOMEM || p != sentinel || errno != 1789) && failures++ == 0)
        snprintf(first_failure, sizeof first_failure,
                 "posix_memalign(%#zx, %#zx) returned %d, memptr %s, errno %d", alignment, size,
                 rc, p == sentinel ? "untouched" : "changed", errno);
    }
  }
  if (!all_bytes(old, 16, 0xab) && failures++ == 0)
    snprintf(first_failure, sizeof first_failure, "old block clobbered at size %#zx", size);
}

static void too_large_sweep(void)
{
  unsigned char *old = malloc(16);
  memset(old, 0xab, 16);
  failures = 0;
  size_t tried = 0;
  unsigned span = scaled(512);
  for (size_t i = 0; i < span; i++, tried += 2) {
    try_size(SIZE_MAX - i, old);
    try_size((size_t)PTRDIFF_MAX + 1 + i, old);
  }
  /* (msbs << 50) with and without the low 50 bits set: msbs from 2^14-1 down to 1, all of
   * 1..64 and a geometric sample above. */
  for (size_t msbs = (1u << 14) - 1; msbs >= 1;
       msbs = msbs > 64 ? msbs - msbs / 8 - 1 : msbs - 1, tried += 2) {
    try_size((msbs << 50) | (((size_t)1 << 50) - 1), old);
    try_size(msbs << 50, old);
  }
  ok(failures == 0, "%zu impossible sizes x every function: NULL + ENOMEM, old block intact%s%s",
     tried, failures ? "; first failure: " : "", failures ? first_failure : "");
  ok(all_bytes(old, 16, 0xab), "old block still holds its 0xab bytes");
  free(old);
  ok(P.check_heap() == 0, "heap consistent after the too-large sweep");
}

static void check_nomem(void *result, const char *what)
{
  int saved = errno;
  ok(result == NULL && saved == ENOMEM, "%s -> NULL, ENOMEM (got %p, errno %d)", what, result, saved);
  free(result);
}

#define NOMEM(call)                                                                                \
  do {                                                                                             \
    errno = 0;                                                                                     \
    void *result_ = (call);                                                                        \
    check_nomem(result_, #call);                                                               \
  } while (0)

static void named_cases(void)
{
  size_t page = page_size();
  NOMEM(v_malloc(PTRDIFF_MAX));
  NOMEM(v_malloc((size_t)PTRDIFF_MAX + 1));
  NOMEM(v_malloc(SIZE_MAX));
  NOMEM(v_malloc(SIZE_MAX - 15));
  NOMEM(v_calloc(SIZE_MAX / 2 + 1, 2));
  NOMEM(v_calloc(2, SIZE_MAX));
  NOMEM(v_calloc(SIZE_MAX, SIZE_MAX));
  NOMEM(v_calloc(65537, SIZE_MAX / 65537 + 1));
  NOMEM(v_calloc((size_t)1 << 32, (size_t)1 << 32));
  NOMEM(v_calloc(1, PTRDIFF_MAX));
  NOMEM(v_reallocarray(NULL, SIZE_MAX, 2));
  NOMEM(v_reallocarray(NULL, 2, SIZE_MAX));
  NOMEM(v_aligned_alloc((size_t)1 << 63, (size_t)1 << 63));
  NOMEM(v_aligned_alloc((size_t)1 << 62, 0xc000000000000001u));
  NOMEM(v_aligned_alloc(16, SIZE_MAX - 15));
  NOMEM(v_aligned_alloc(4096, SIZE_MAX - 4095));
  NOMEM(v_memalign(page, -page));
  NOMEM(v_memalign((size_t)1 << 30, SIZE_MAX - ((size_t)1 << 29)));
  NOMEM(v_pvalloc(SIZE_MAX - page + 2));
  NOMEM(v_pvalloc(SIZE_MAX));
  NOMEM(v_valloc(-page));
  NOMEM(v_valloc(SIZE_MAX));
  void *sentinel = &sentinel, *p = sentinel;
  errno = 1789;
  int rc = v_posix_memalign(&p, page, -page);
  ok(rc == ENOMEM && p == sentinel && errno == 1789,
     "posix_memalign(page, -page) returns ENOMEM (%d), *memptr and errno untouched", rc);
}

static void old_block_survives(void)
{
  size_t sizes[] = {24, 1000, 200000, 5u << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    unsigned char *p = malloc(n);
    fill_pattern(p, n, n);
    errno = 0;
    void *r1 = v_realloc(p, SIZE_MAX);
    int e1 = errno;
    errno = 0;
    void *r2 = v_realloc(p, (size_t)-256);
    int e2 = errno;
    errno = 0;
    void *r3 = v_realloc(p, (size_t)PTRDIFF_MAX + 1);
    int e3 = errno;
    errno = 0;
    void *r4 = v_reallocarray(p, 65537, SIZE_MAX / 65537 + 1);
    int e4 = errno;
    errno = 0;
    void *r5 = v_reallocarray(p, 2, SIZE_MAX);
    int e5 = errno;
    ok(!r1 && !r2 && !r3 && !r4 && !r5 && e1 == ENOMEM && e2 == ENOMEM && e3 == ENOMEM &&
           e4 == ENOMEM && e5 == ENOMEM,
       "failed realloc/reallocarray of a %zu-byte block: NULL + ENOMEM each time", n);
    ok(pattern_ok(p, n, n), "the %zu-byte block keeps its contents after failed resizes", n);
    unsigned char *q = v_realloc(p, n + 16);
    ok(q && pattern_ok(q, n, n), "and can still be resized to %zu bytes", n + 16);
    free(q);
  }
  ok(P.check_heap() == 0, "heap consistent after failed resizes");
}

int test_limits(void)
{
  /* A ceiling on address space so a bug cannot actually take the machine's memory. */
  struct rlimit lim = {(rlim_t)1 << 46, (rlim_t)1 << 46};
  struct rlimit cur;
  if (getrlimit(RLIMIT_AS, &cur) == 0 && cur.rlim_max > lim.rlim_max)
    setrlimit(RLIMIT_AS, &lim);
  ptest_init();
  named_cases();
  old_block_survives();
  too_large_sweep();
  return tap_done();
}
