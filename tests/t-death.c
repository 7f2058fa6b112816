/* t-death.c: misuse stops the process: SIGABRT with one line "palloc: <problem> (pointer 0x...,
 * in <function>())" that names the problem and the function.
 *
 * Every case of misuse_cases.h (the programs behind the README's misuse table) runs here for
 * the library under test, plus palloc's own cases: the options PALLOC_ON_MISUSE=continue,
 * PALLOC_QUARANTINE, PALLOC_JUNK, PALLOC_CHECK_FREE_SIZED, PALLOC_CANARY and PALLOC_GUARD (whose
 * overflow must end in SIGSEGV). Each case runs in a forked child
 * that allocates for itself; a case that needs an option re-executes this program with the
 * option in its environment and PALLOC_TEST_DEATH_CASE naming the case. A clean exit or any
 * other signal (SIGSEGV included) fails a case that must die. */
#include "misuse_cases.h"
#include "ptest.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void foreign_mapping_free(int prot)
{
  char *m = mmap(NULL, 16 * 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  v_malloc(10);
  v_free(m + 8 * 4096);
}
static void foreign_rw_free(void) { foreign_mapping_free(PROT_READ | PROT_WRITE); }
static void foreign_none_free(void) { foreign_mapping_free(PROT_NONE); }
static void free_one(void) { v_malloc(10); v_free((void *)1); }
static void free_page_one(void) { v_malloc(10); v_free((void *)0x1000); }
static void realloc_sixteen(void) { v_malloc(10); v_realloc((void *)16, 10); }
static void usable_wild(void) { v_malloc(10); v_usable((void *)0x1000); }

static void header_clobber(void)
{
  uint64_t *p = v_malloc(64);
  p[-1] = 1; /* a tag with a size of 0 */
  v_free(p);
}

/* Not misuse: a freed block's first 16 bytes (whatever links or keys the allocator keeps
 * there) and tag-like words copied into live blocks (glibc's tst-tcfree3). */
static void lookalike_data(void)
{
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

/* PALLOC_ON_MISUSE=continue: five misuses reported, each call dropped, the process goes on
 * and the heap stays sound; a block freed twice is not handed out twice. */
static void continue_after_misuse(void)
{
  char local[32] __attribute__((aligned(16)));
  void *p = v_malloc(32), *big = v_malloc(1u << 20);
  v_free(p);
  v_free(p);
  v_free(&local[0]);
  if (v_realloc((void *)0x1000, 10) != NULL)
    _exit(3);
  v_free(big);
  v_free(big);
  char *q = v_malloc(256);
  v_free(q + 16);
  void *a = v_malloc(32), *b = v_malloc(32);
  if (a == b || P.check_heap() != 0)
    _exit(4);
  v_free(a);
  v_free(b);
  v_free(q);
}

/* PALLOC_ON_MISUSE=continue, damage found inside palloc's structures: a cached block's first
 * word overwritten after free (reported by malloc, the block leaked; the bin's other blocks,
 * undamaged, are handed out), then an overflow over
 * the next block's tag with bytes that make it look free (reported by free of the overflowing
 * block, which the backend then leaks, and by free of the damaged one, which is dropped): three
 * lines, and no leaked block is handed out again. */
static void continue_after_damage(void)
{
  char *keep = v_malloc(32), *p = v_malloc(32);
  v_free(keep);
  v_free(p);
  settle_recent_frees();
  *(volatile uintptr_t *)p ^= 8;
  for (int i = 0; i < 8; i++) {
    char *q = v_malloc(32);
    if (q == p)
      _exit(3);
  }
  enum { SIZE = 40000, COUNT = 48 };
  char *blocks[COUNT], *a = NULL, *b = NULL;
  for (int i = 0; i < COUNT; i++)
    blocks[i] = v_malloc(SIZE);
  for (int i = 0; i < COUNT && a == NULL; i++)
    for (int j = 0; j < COUNT && a == NULL; j++)
      if (blocks[j] == blocks[i] + v_usable(blocks[i]) + 8) {
        a = blocks[i];
        b = blocks[j];
      }
  if (a == NULL)
    _exit(4);
  memset(a, 'B', (size_t)(b - a)); /* up to b's tag included */
  v_free(a);
  v_free(b);
  for (int i = 0; i < 64; i++) {
    char *q = v_malloc(SIZE);
    if (q == a || q == b)
      _exit(5);
    memset(q, 1, SIZE);
  }
}

/* PALLOC_QUARANTINE=8 PALLOC_JUNK=1: a freed block reads as junk and is not reused at once;
 * a second free of it is still named a double free. */
static void quarantine_and_junk(void)
{
  unsigned char *p = v_malloc(100);
  memset(p, 0x11, 100);
  v_free(p);
  for (int i = 16; i < 100; i++)
    if (p[i] != 0xdf)
      _exit(3);
  for (int i = 0; i < 4; i++)
    if (v_malloc(100) == p)
      _exit(4);
  v_free(p);
}

static void free_sized_right_size(void)
{
  for (size_t size = 1; size < 70000; size = size * 3 + 1) {
    void *p = v_malloc(size);
    P.free_sized(p, size);
  }
  void *q = v_malloc(1000);
  q = v_realloc(q, 600);
  P.free_sized(q, 600);
}

static void free_sized_too_big(void) { P.free_sized(v_malloc(100), 200); }

/* PALLOC_CANARY=1: every size, grown and shrunk by realloc, reports the size asked as its
 * usable size, keeps its contents, and frees silently; the heap stays sound. */
static void canary_sound(void)
{
  for (size_t size = 1; size < 3000000; size = size * 3 + 5) {
    unsigned char *p = v_malloc(size);
    if (v_usable(p) != size)
      _exit(3);
    memset(p, 0x5a, size);
    p = v_realloc(p, size * 2 + 1);
    if (v_usable(p) != size * 2 + 1 || p[size - 1] != 0x5a || p[0] != 0x5a)
      _exit(4);
    memset(p, 0x5b, size * 2 + 1);
    p = v_realloc(p, size / 2 + 1);
    if (v_usable(p) != size / 2 + 1 || p[size / 2] != 0x5b)
      _exit(5);
    if (P.check_heap() != 0)
      _exit(6);
    v_free(p);
  }
  void *aligned = NULL;
  if (posix_memalign(&aligned, 4096, 5000) != 0 || v_usable(aligned) != 5000)
    _exit(7);
  unsigned char *zeroed = calloc(77, 3);
  for (int i = 0; i < 77 * 3; i++)
    if (zeroed[i] != 0)
      _exit(8);
  v_free(aligned);
  v_free(zeroed);
}

/* One byte written just past the bytes asked for, then free or realloc. */
static void canary_overflow_free(void)
{
  char *p = v_malloc(100);
  p[100] = 0;
  v_free(p);
}
static void canary_overflow_realloc(void)
{
  char *p = v_malloc(100);
  p[100] = 0;
  v_realloc(p, 200);
}
static void canary_overflow_mapped(void)
{
  char *p = v_malloc((1u << 20) + 3);
  p[(1u << 20) + 3] = 0;
  v_free(p);
}

/* PALLOC_GUARD=1: mapped blocks, grown, shrunk, freed and mapped again (a backend may reuse
 * a mapping), have every byte asked for writable, and the heap stays sound. */
static void guard_sound(void)
{
  for (int round = 0; round < 6; round++) {
    size_t size = ((size_t)1 << 20) + (size_t)round * 40000 + 1;
    char *p = v_malloc(size);
    memset(p, round, size);
    p = v_realloc(p, size * 3);
    memset(p, round, size * 3);
    p = v_realloc(p, size / 2);
    memset(p, round, size / 2);
    char *q = v_malloc(size);
    memset(q, round, size);
    if (P.check_heap() != 0)
      _exit(3);
    v_free(p);
    v_free(q);
  }
}

/* A write at the first page boundary after the bytes asked for must fault. */
static void guard_overflow(void)
{
  size_t size = (1u << 20) + 5;
  char *p = v_malloc(size);
  uintptr_t boundary = ((uintptr_t)p + size + 4095) & ~(uintptr_t)4095;
  memset(p, 1, size);
  *(volatile char *)boundary = 1;
  v_free(p);
}

/* EXITS_REPORTING: exit 0 after 5 lines of report; EXITS_REPORTING_3: after 3. */
enum outcome { DIES, EXITS_SILENTLY, EXITS_REPORTING, EXITS_REPORTING_3, FAULTS };

struct death_case {
  const char *label;
  void (*run)(void);
  const char *expect;   /* '|'-separated alternatives the first line must contain */
  const char *function; /* the function the line must name */
  const char *env;      /* NAME=value (or two, space-separated) to run with, or NULL */
  enum outcome outcome;
};

static const struct death_case own_cases[] = {
  {"free inside a foreign read-write mapping", foreign_rw_free, "invalid pointer", "free", NULL,
   DIES},
  {"free inside a foreign PROT_NONE mapping", foreign_none_free, "invalid pointer", "free",
   NULL, DIES},
  {"free((void *)1)", free_one, "invalid pointer", "free", NULL, DIES},
  {"free((void *)0x1000)", free_page_one, "invalid pointer", "free", NULL, DIES},
  {"realloc((void *)16, 10)", realloc_sixteen, "invalid pointer", "realloc", NULL, DIES},
  {"malloc_usable_size((void *)0x1000)", usable_wild, "invalid pointer", "malloc_usable_size",
   NULL, DIES},
  {"free with a tag of size 0", header_clobber, "damaged", "free", NULL, DIES},
  {"metadata look-alike data in live blocks is not misuse", lookalike_data, NULL, NULL, NULL,
   EXITS_SILENTLY},
  {"PALLOC_ON_MISUSE=continue: 5 misuses reported, calls dropped, heap sound",
   continue_after_misuse, "double free", "free", "PALLOC_ON_MISUSE=continue", EXITS_REPORTING},
  {"PALLOC_ON_MISUSE=continue: a damaged cached block and a damaged neighbour tag reported, "
   "blocks leaked", continue_after_damage, "thread cache is damaged", "malloc",
   "PALLOC_ON_MISUSE=continue", EXITS_REPORTING_3},
  {"PALLOC_QUARANTINE=8 PALLOC_JUNK=1: junk-filled, not reused, double free caught",
   quarantine_and_junk, "double free", "free", "PALLOC_QUARANTINE=8 PALLOC_JUNK=1", DIES},
  {"PALLOC_CHECK_FREE_SIZED=1: the right sizes pass", free_sized_right_size, NULL, NULL,
   "PALLOC_CHECK_FREE_SIZED=1", EXITS_SILENTLY},
  {"PALLOC_CHECK_FREE_SIZED=1: free_sized(malloc(100), 200)", free_sized_too_big,
   "size does not match", "free_sized", "PALLOC_CHECK_FREE_SIZED=1", DIES},
  {"PALLOC_CANARY=1: sizes 1 B - 2 MiB, realloc, calloc, memalign: usable = asked, heap sound",
   canary_sound, NULL, NULL, "PALLOC_CANARY=1", EXITS_SILENTLY},
  {"PALLOC_CANARY=1: one byte past 100 B, free", canary_overflow_free, "heap overflow", "free",
   "PALLOC_CANARY=1", DIES},
  {"PALLOC_CANARY=1: one byte past 100 B, realloc", canary_overflow_realloc, "heap overflow",
   "realloc", "PALLOC_CANARY=1", DIES},
  {"PALLOC_CANARY=1 PALLOC_GUARD=1: one byte past 1 MiB + 3, free", canary_overflow_mapped,
   "heap overflow", "free", "PALLOC_CANARY=1 PALLOC_GUARD=1", DIES},
  {"PALLOC_GUARD=1: mapped blocks written whole, realloc'd, freed, mapped again; heap sound",
   guard_sound, NULL, NULL, "PALLOC_GUARD=1", EXITS_SILENTLY},
  {"PALLOC_GUARD=1: a write at the page after 1 MiB + 5", guard_overflow, NULL, NULL,
   "PALLOC_GUARD=1", FAULTS},
};
#define OWN_COUNT (sizeof own_cases / sizeof own_cases[0])

/* Case i: misuse_cases[] first, then own_cases[]. */
static struct death_case case_at(size_t i)
{
  if (i >= misuse_case_count)
    return own_cases[i - misuse_case_count];
  const struct misuse_case *m = &misuse_cases[i];
  return (struct death_case){m->label, m->run, m->expect, m->function, m->env, DIES};
}

/* The child of a case with options: this program again, with them in its environment. */
static void reexec_with_options(void *arg)
{
  size_t i = (size_t)(uintptr_t)arg;
  struct death_case c = case_at(i);
  char options[128], index[24];
  snprintf(options, sizeof options, "%s", c.env);
  for (char *tok = strtok(options, " "); tok != NULL; tok = strtok(NULL, " ")) {
    char *eq = strchr(tok, '=');
    *eq = 0;
    setenv(tok, eq + 1, 1);
  }
  snprintf(index, sizeof index, "%zu", i);
  setenv("PALLOC_TEST_DEATH_CASE", index, 1);
  /* The program's path, not /proc/self/exe itself: under valgrind that is valgrind's tool,
   * which refuses to run ("You cannot run 'palloc-tests' directly"), whereas readlink of it
   * answers the program's path (the child then runs natively: no --trace-children). */
  char self[4096];
  ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
  if (length <= 0)
    _exit(5);
  self[length] = 0;
  execl(self, "palloc-tests", "death", (char *)NULL);
  _exit(5);
}

static void run_case(void *arg)
{
  case_at((size_t)(uintptr_t)arg).run();
}

/* Whether line contains one of the '|'-separated alternatives. */
static bool contains_one_of(const char *line, const char *alternatives)
{
  char copy[128];
  snprintf(copy, sizeof copy, "%s", alternatives);
  for (char *tok = strtok(copy, "|"); tok != NULL; tok = strtok(NULL, "|"))
    if (strstr(line, tok) != NULL)
      return true;
  return false;
}

/* "palloc: " + the problem + ", in <function>())". */
static bool message_right(const char *line, const struct death_case *c)
{
  char in_function[64];
  snprintf(in_function, sizeof in_function, ", in %s())", c->function);
  return strncmp(line, "palloc: ", 8) == 0 && contains_one_of(line, c->expect) &&
         strstr(line, in_function) != NULL;
}

static unsigned count_lines(const char *text)
{
  unsigned n = 0;
  for (; *text; text++)
    n += *text == '\n';
  return n;
}

static void check_case(size_t i)
{
  static char err[4096];
  struct death_case c = case_at(i);
  int status = 0;
  run_in_child(c.env ? reexec_with_options : run_case, (void *)(uintptr_t)i, 30, &status, err,
               sizeof err);
  unsigned lines = count_lines(err);
  char *nl = strchr(err, '\n');
  if (nl)
    *nl = 0;
  const char *how = WIFSIGNALED(status) ? "signal" : "exit";
  int code = WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status);
  /* Under memcheck a write into a freed or free block is memcheck's to report (palloc keeps
   * freed blocks out of use there, so its own checks never see it): the child then exits
   * with memcheck's error exit code, 1 (run-test.sh), its report on valgrind's own stream. */
  bool memcheck_caught = ptest_under_memcheck() && WIFEXITED(status) && WEXITSTATUS(status) == 1;
  switch (c.outcome) {
  case DIES:
    ok((WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && message_right(err, &c) &&
        lines == 1) || memcheck_caught,
       "%s: SIGABRT, one line naming \"%s\" in %s()%s (%s %d; %u lines, \"%.150s\")", c.label,
       c.expect, c.function, memcheck_caught ? ", or memcheck's report" : "", how, code, lines,
       err);
    break;
  case EXITS_SILENTLY:
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && err[0] == 0,
       "%s: exits 0 silently (%s %d, stderr \"%.120s\")", c.label, how, code, err);
    break;
  case FAULTS:
    ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
       "%s: SIGSEGV (%s %d, stderr \"%.120s\")", c.label, how, code, err);
    break;
  case EXITS_REPORTING:
  case EXITS_REPORTING_3: {
    unsigned expected = c.outcome == EXITS_REPORTING ? 5 : 3;
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && message_right(err, &c) &&
           lines == expected,
       "%s: exits 0 after %u lines, the first naming \"%s\" (%s %d; %u lines, \"%.120s\")",
       c.label, expected, c.expect, how, code, lines, err);
    break;
  }
  }
}

int test_death(void)
{
  const char *only = getenv("PALLOC_TEST_DEATH_CASE");
  ptest_init();
  if (only != NULL) {
    case_at((size_t)strtoul(only, NULL, 10)).run();
    return 0;
  }
  for (size_t i = 0; i < misuse_case_count + OWN_COUNT; i++)
    check_case(i);
  return tap_done();
}
