/* t-death.c: misuse stops the process: SIGABRT with a one-line message starting "palloc: ".
 * Each case runs in a forked child that allocates for itself; a clean exit or any other signal
 * (SIGSEGV included) fails the case. */
#include "ptest.h"

#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

/* Through volatile pointers, so the compiler cannot see (and warn about or drop) the misuse. */

static void double_free_small(void *arg)
{
  (void)arg;
  void *p = v_malloc(32);
  v_free(p);
  v_free(p);
}

static void double_free_delayed(void *arg)
{
  (void)arg;
  void *p = v_malloc(32), *q = v_malloc(32);
  v_free(p);
  v_free(q);
  v_free(p);
}

static void double_free_deep(void *arg)
{
  (void)arg;
  void *p[20];
  for (int i = 0; i < 20; i++)
    p[i] = v_malloc(20);
  for (int i = 0; i < 20; i++)
    v_free(p[i]);
  v_free(p[0]);
}

static void double_free_size(void *arg)
{
  void *p = v_malloc((size_t)(uintptr_t)arg);
  memset(p, 1, 64);
  v_free(p);
  v_free(p);
}

static void unaligned_free(void *arg)
{
  (void)arg;
  char *p = v_malloc(64);
  v_free(p + 1);
}

static void interior_free_small(void *arg)
{
  (void)arg;
  char *p = v_malloc(256);
  v_free(p + 16);
}

static void interior_free_large(void *arg)
{
  (void)arg;
  char *p = v_malloc(1u << 20);
  v_free(p + 4096);
}

static void stack_free(void *arg)
{
  (void)arg;
  char local[64] __attribute__((aligned(16)));
  memset(local, 0, sizeof local);
  v_malloc(10);
  v_free(&local[16]);
}

static char global_buffer[256] __attribute__((aligned(64)));
static void global_free(void *arg)
{
  (void)arg;
  v_malloc(10);
  v_free(&global_buffer[64]);
}

static void foreign_mapping_free(void *arg)
{
  int prot = (int)(uintptr_t)arg;
  char *m = mmap(NULL, 16 * 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  v_malloc(10);
  v_free(m + 8 * 4096);
}

static void wild_free(void *arg)
{
  v_malloc(10);
  v_free(arg);
}

static void wild_realloc(void *arg)
{
  (void)arg;
  v_malloc(10);
  v_realloc((void *)16, 10);
}

static void wild_usable(void *arg)
{
  (void)arg;
  v_malloc(10);
  v_usable((void *)0x1000);
}

static void realloc_after_free(void *arg)
{
  (void)arg;
  void *p = v_malloc(100);
  v_free(p);
  v_realloc(p, 200);
}

static void header_clobber(void *arg)
{
  (void)arg;
  uint64_t *p = v_malloc(64);
  p[-1] = 1; /* a tag with a size of 0 */
  v_free(p);
}

/* Not misuse: a freed block's first 16 bytes (whatever links or keys the allocator keeps
 * there) and tag-like words copied into live blocks (glibc's tst-tcfree3). */
static void lookalike_data(void *arg)
{
  (void)arg;
  unsigned char *a = v_malloc(32), *keep = v_malloc(32);
  v_free(a);
  unsigned char copy[32];
  memcpy(copy, a, 16);
  uint64_t fake[2] = {64 | 1, (uint64_t)(uintptr_t)keep};
  memcpy(copy + 16, fake, 16);
  unsigned char *b = v_malloc(32), *c = v_malloc(127 * 1024);
  memset(c, 0xff, 127 * 1024);
  memcpy(b, copy, 32);
  memcpy(c, copy, 32);
  v_free(b);
  v_free(c);
  v_free(keep);
  if (P.check_heap() != 0)
    abort();
}

struct death_case {
  const char *name;
  void (*fn)(void *);
  void *arg;
  bool dies; /* false: must exit 0 */
};

int test_death(void)
{
  ptest_init();
  struct death_case cases[] = {
    {"double free, 32 B", double_free_small, NULL, true},
    {"double free, delayed (free p, free q, free p)", double_free_delayed, NULL, true},
    {"double free deep in a cache (20 x 20 B)", double_free_deep, NULL, true},
    {"double free, 5000 B", double_free_size, (void *)5000, true},
    {"double free, 300 KiB", double_free_size, (void *)(300 * 1024), true},
    {"double free, 1 MiB (mapped)", double_free_size, (void *)(1u << 20), true},
    {"double free, 16 MiB", double_free_size, (void *)(16u << 20), true},
    {"unaligned free (p + 1)", unaligned_free, NULL, true},
    {"interior free, 256 B block + 16", interior_free_small, NULL, true},
    {"interior free, 1 MiB block + 4096", interior_free_large, NULL, true},
    {"free of a stack address", stack_free, NULL, true},
    {"free of a global", global_free, NULL, true},
    {"free inside a foreign read-write mapping", foreign_mapping_free,
     (void *)(uintptr_t)(PROT_READ | PROT_WRITE), true},
    {"free inside a foreign PROT_NONE mapping", foreign_mapping_free,
     (void *)(uintptr_t)PROT_NONE, true},
    {"free((void *)1)", wild_free, (void *)1, true},
    {"free((void *)0x1000)", wild_free, (void *)0x1000, true},
    {"free((void *)0x7ff000000000)", wild_free, (void *)0x7ff000000000, true},
    {"realloc((void *)16, 10)", wild_realloc, NULL, true},
    {"malloc_usable_size((void *)0x1000)", wild_usable, NULL, true},
    {"realloc after free", realloc_after_free, NULL, true},
    {"free with a clobbered tag", header_clobber, NULL, true},
    {"metadata look-alike data in live blocks is not misuse", lookalike_data, NULL, false},
  };
  static char err[4096];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int status = 0;
    run_in_child(cases[i].fn, cases[i].arg, 20, &status, err, sizeof err);
    char *nl = strchr(err, '\n');
    if (nl)
      *nl = 0;
    if (cases[i].dies) {
      ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
             strncmp(err, "palloc: ", 8) == 0,
         "%s: SIGABRT with \"palloc: ...\" (%s %d; stderr \"%.120s\")", cases[i].name,
         WIFSIGNALED(status) ? "signal" : "exit",
         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), err);
    } else {
      ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && err[0] == 0,
         "%s: exits 0 silently (status %#x, stderr \"%.120s\")", cases[i].name, status, err);
    }
  }
  return tap_done();
}
