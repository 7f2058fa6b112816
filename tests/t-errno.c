/* t-errno.c: successful calls and free leave errno alone; failures set exactly ENOMEM or
 * EINVAL (posix_memalign returns the code instead). */
#include "ptest.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>


static unsigned changed;
static char first[120];

static void expect_1789(const char *what, size_t size)
{
  if (errno != 1789 && changed++ == 0)
    snprintf(first, sizeof first, "%s(%zu) set errno to %d", what, size, errno);
  errno = 1789;
}

/* Every function at one size, all successes; errno must stay 1789 throughout. */
static void all_functions(size_t size)
{
  errno = 1789;
  void *a = v_malloc(size);
  expect_1789("malloc", size);
  void *b = v_calloc(1, size);
  expect_1789("calloc", size);
  a = v_realloc(a, size * 2 + 1);
  expect_1789("realloc grow", size);
  a = v_realloc(a, size / 2 + 1);
  expect_1789("realloc shrink", size);
  void *c = v_reallocarray(NULL, 2, size / 2 + 1);
  expect_1789("reallocarray", size);
  void *d = NULL;
  int rc = v_posix_memalign(&d, 64, size);
  expect_1789("posix_memalign", size);
  void *e = v_aligned_alloc(256, size);
  expect_1789("aligned_alloc", size);
  void *f = v_memalign(4096, size);
  expect_1789("memalign", size);
  void *g = v_valloc(size);
  expect_1789("valloc", size);
  void *h = v_pvalloc(size);
  expect_1789("pvalloc", size);
  malloc_usable_size(a);
  expect_1789("malloc_usable_size", size);
  if (!a || !b || !c || rc != 0 || !d || !e || !f || !g || !h) {
    if (changed++ == 0)
      snprintf(first, sizeof first, "an allocation of %zu bytes failed", size);
  }
  v_free(a);
  expect_1789("free(malloc)", size);
  v_free(b);
  expect_1789("free(calloc)", size);
  P.free_sized(c, 2 * (size / 2 + 1));
  expect_1789("free_sized", size);
  v_free(d);
  expect_1789("free(posix_memalign)", size);
  P.free_aligned_sized(e, 256, size);
  expect_1789("free_aligned_sized", size);
  v_free(f);
  expect_1789("free(memalign)", size);
  v_free(g);
  expect_1789("free(valloc)", size);
  v_free(h);
  expect_1789("free(pvalloc)", size);
  v_free(v_realloc(v_malloc(size), 0));
  expect_1789("realloc(p, 0)", size);
}

static void failures_table(void)
{
  struct {
    const char *what;
    int expect;
    void *result;
    int err;
  } rows[12];
  int n = 0;
#define ROW(call, code)                                                                            \
  do {                                                                                             \
    errno = 1789;                                                                                  \
    rows[n].result = (call);                                                                       \
    rows[n].err = errno;                                                                           \
    rows[n].what = #call;                                                                          \
    rows[n++].expect = (code);                                                                     \
  } while (0)
  ROW(v_malloc(SIZE_MAX), ENOMEM);
  ROW(v_calloc(SIZE_MAX, 2), ENOMEM);
  ROW(v_realloc(NULL, SIZE_MAX), ENOMEM);
  ROW(v_reallocarray(NULL, SIZE_MAX, 3), ENOMEM);
  ROW(v_aligned_alloc(3, 64), EINVAL);
  ROW(v_aligned_alloc(64, SIZE_MAX), ENOMEM);
  ROW(v_memalign(SIZE_MAX, 1), EINVAL);
  ROW(v_memalign(64, SIZE_MAX), ENOMEM);
  ROW(v_valloc(SIZE_MAX), ENOMEM);
  ROW(v_pvalloc(SIZE_MAX), ENOMEM);
  for (int i = 0; i < n; i++)
    ok(rows[i].result == NULL && rows[i].err == rows[i].expect, "%s -> NULL, errno %s (got %d)",
       rows[i].what, rows[i].expect == ENOMEM ? "ENOMEM" : "EINVAL", rows[i].err);
  void *p = &p;
  errno = 1789;
  int rc = v_posix_memalign(&p, 3, 64);
  ok(rc == EINVAL && errno == 1789 && p == &p, "posix_memalign(3) returns EINVAL, errno untouched");
  errno = 1789;
  rc = v_posix_memalign(&p, 64, SIZE_MAX);
  ok(rc == ENOMEM && errno == 1789 && p == &p, "posix_memalign(64, SIZE_MAX) returns ENOMEM, errno untouched");
}

int test_errno(void)
{
  /* The very first allocator call of this program (palloc's lazy initialisation path). */
  errno = 1789;
  void *first_block = v_malloc(40);
  int first_errno = errno;
  ptest_init();
  ok(first_block != NULL && first_errno == 1789, "the program's first malloc keeps errno (%d)",
     first_errno);
  free(first_block);
  size_t sizes[] = {0, 1, 24, 100, 1000, 5000, 70000, 200000, 3u << 20, 40u << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    changed = 0;
    all_functions(sizes[i]);
    ok(changed == 0, "every successful call at size %zu keeps errno 1789 %s", sizes[i], first);
  }
  failures_table();
  ok(P.check_heap() == 0, "heap consistent at the end");
  return tap_done();
}
