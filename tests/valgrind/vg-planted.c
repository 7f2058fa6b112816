/* vg-planted.c: small programs with one planted memory error each, linked with palloc, for
 * tests/valgrind/vg-planted.sh to run under valgrind's memcheck (with palloc serving the
 * allocations, and with memcheck's own malloc for comparison). argv[1] picks the program:
 *
 *   leak      loses a 40-byte block              "definitely lost: 40 bytes in 1 blocks"
 *   uaf       reads a freed 40-byte block         "Invalid read of size 1", "inside a block
 *                                                 of size 40 free'd"
 *   overflow  writes one byte past a 24-byte block "Invalid write of size 1", "0 bytes after
 *             (24 is a whole usable block: the byte hit is the next block's tag) a block of size 24"
 *   underflow reads the byte before a block       "Invalid read of size 1", "1 bytes before
 *                                                 a block of size 100 alloc'd"
 *   uninit    branches on a malloc'ed byte       "Conditional jump or move depends on
 *                                                 uninitialised value(s)"
 *   realloc   grows a block: the old bytes stay defined, a byte past them is not (one
 *             "Conditional jump" report); then shrinks it and writes past the new size
 *   clean     every function, contents used, all freed: no error, no leak
 *
 * Each prints "palloc served N calls" first (palloc_stats_get), so the script can tell whether
 * palloc or memcheck's own malloc served the program. Compiled with -O0 -fno-builtin so that
 * the compiler keeps every planted error.
 */
#include <malloc.h>
#include <palloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The out-of-bounds accesses below are the point of these programs: GCC's warnings about them
 * would only hide real warnings in the build's output. */
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"

static volatile char sink;

static void report_server(void)
{
  free(malloc(1));
  struct palloc_stats s;
  palloc_stats_get(&s);
  unsigned long long calls = 0;
  for (int i = 0; i < PALLOC_FN_COUNT; i++)
    calls += s.calls[i];
  printf("palloc served %llu calls (backend %s)\n", calls, palloc_backend_name());
  fflush(stdout);
}

static void leak(void)
{
  char *p = malloc(40);
  memset(p, 1, 40);
  sink = p[3];
  p = NULL;
}

static void use_after_free(void)
{
  char *p = malloc(40);
  memset(p, 2, 40);
  free(p);
  sink = p[5];
}

static void overflow(void)
{
  char *p = malloc(24);
  memset(p, 3, 24);
  p[24] = 1;
  free(p);
}

static void underflow(void)
{
  char *p = malloc(100);
  memset(p, 3, 100);
  sink = p[-1]; /* a read: a write would clobber palloc's tag, which palloc reports itself */
  free(p);
}

static void uninitialised(void)
{
  char *p = malloc(64);
  if (p[10] == 42)
    puts("forty-two");
  free(p);
}

static void reallocation(void)
{
  char *p = malloc(16);
  memset(p, 4, 16);
  p = realloc(p, 4000); /* moves: the first 16 bytes defined, the rest undefined */
  int sum = 0;
  for (int i = 0; i < 16; i++)
    sum += p[i];
  if (sum != 64)
    puts("lost contents");
  if (p[100] == 7) /* the one planted error: an uninitialised byte of the grown block */
    puts("seven");
  p = realloc(p, 10);
  p[10] = 1; /* past the shrunk block: one invalid write */
  free(p);
}

static void clean(void)
{
  char *a = malloc(100), *b = calloc(10, 10), *c = NULL;
  if (posix_memalign((void **)&c, 64, 200) != 0)
    return;
  char *d = aligned_alloc(256, 512), *e = memalign(4096, 33);
  memset(a, 5, 100);
  memset(c, 6, 200);
  memset(d, 7, 512);
  memset(e, 8, 33);
  a = realloc(a, 300);
  memset(a + 100, 9, 200);
  a = reallocarray(a, 5, 10);
  size_t usable = malloc_usable_size(b);
  memset(b, 0, usable); /* every byte malloc_usable_size grants may be used */
  long sum = 0;
  for (int i = 0; i < 50; i++)
    sum += a[i] + b[i] + c[i] + d[i] + e[i % 33];
  char *big = malloc(1u << 20);
  memset(big, 1, 1u << 20);
  big = realloc(big, 3u << 20);
  sum += big[12345];
  free(big);
  free(a);
  free(b);
  free(c);
  free(d);
  free(e);
  printf("sum %ld\n", sum);
}

int main(int argc, char **argv)
{
  static const struct { const char *name; void (*run)(void); } cases[] = {
    {"leak", leak},   {"uaf", use_after_free},   {"overflow", overflow}, {"underflow", underflow},
    {"uninit", uninitialised}, {"realloc", reallocation}, {"clean", clean},
  };
  report_server();
  for (size_t i = 0; argc == 2 && i < sizeof cases / sizeof cases[0]; i++)
    if (strcmp(argv[1], cases[i].name) == 0) {
      cases[i].run();
      return 0;
    }
  fprintf(stderr, "usage: %s leak|uaf|overflow|underflow|uninit|realloc|clean\n", argv[0]);
  return 2;
}
