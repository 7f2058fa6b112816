/* ptest.h: what every palloc test program shares.
 *
 * Each test program is compiled once and runs in two ways (tests/run-test.sh):
 *   linked   the program is linked with libpalloc-<backend>.la;
 *   preload  the same objects linked without palloc, run with LD_PRELOAD=libpalloc-<backend>.so.
 * Either way the standard functions (malloc, free, ...) are called by their names, and palloc's
 * extension functions are looked up at run time with dlsym(RTLD_DEFAULT, ...) into P below, so
 * one object file serves both variants. ptest_init() proves palloc really is the allocator in
 * this process (the backend matches PALLOC_TEST_BACKEND and malloc resolves into libpalloc)
 * and bails out otherwise: a test that silently ran on glibc's malloc would prove nothing.
 *
 * The tests are compiled with -fno-builtin, so GCC cannot fold or delete allocator calls;
 * tests that probe impossible sizes also call through volatile function pointers.
 */
#ifndef PALLOC_PTEST_H
#define PALLOC_PTEST_H

#include "tap.h"

#include <palloc.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* palloc's own functions, resolved at run time. */
struct palloc_api {
  const char *(*backend_name)(void);
  int (*check_heap)(void);
  int (*stats_get)(struct palloc_stats *stats);
  void (*stats_print)(void);
  const char *(*function_name)(enum palloc_function fn);
  void (*free_sized)(void *ptr, size_t size);
  void (*free_aligned_sized)(void *ptr, size_t alignment, size_t size);
};
extern struct palloc_api P;

/* Resolve P and check that palloc serves this process; bails out when it does not. */
void ptest_init(void);

/* Loop counts are divided by this (PALLOC_TEST_SLOW=N, e.g. under valgrind; default 1). */
unsigned ptest_slowdown(void);
/* Whether the test runs under valgrind's memcheck (make check-valgrind), where palloc turns its
 * thread caches off and keeps freed blocks out of use for a while (README "Running under
 * valgrind"): what depends on the caches is asserted as memcheck mode has it. */
bool ptest_under_memcheck(void);
/* ... and multiplied by this (PALLOC_TEST_STRESS=N, make stress; default 1). */
unsigned ptest_stress(void);
static inline unsigned scaled(unsigned n)
{
  unsigned s = n * ptest_stress() / ptest_slowdown();
  return s ? s : 1;
}

/* A deterministic generator (xorshift64*); seeds are printed so a failure can be replayed. */
uint64_t rng_next(uint64_t *state);
static inline uint64_t rng_below(uint64_t *state, uint64_t bound)
{
  return bound ? rng_next(state) % bound : 0;
}

/* Patterns derived from a seed and the byte offset; check_pattern() returns the offset of the
 * first wrong byte, or (size_t)-1 when all n bytes hold the pattern. */
void fill_pattern(void *p, size_t n, uint64_t seed);
size_t check_pattern(const void *p, size_t n, uint64_t seed);
static inline bool pattern_ok(const void *p, size_t n, uint64_t seed)
{
  return check_pattern(p, n, seed) == (size_t)-1;
}
/* Whether all n bytes equal c. */
bool all_bytes(const void *p, size_t n, unsigned char c);

static inline bool aligned_to(const void *p, size_t alignment)
{
  return ((uintptr_t)p & (alignment - 1)) == 0;
}

/* Counters. */
struct palloc_stats stats_now(void);
uint64_t live_bytes(void);
uint64_t mapped_bytes(void);
uint64_t call_count(enum palloc_function fn);
/* Resident set size in bytes (/proc/self/statm), and number of lines of /proc/self/maps. */
size_t rss_bytes(void);
/* The address space in bytes (/proc/self/statm), what RLIMIT_AS limits. */
size_t address_space_bytes(void);
size_t maps_count(void);
/* The whole pages of [start, end), and how many of them are resident (mincore; (size_t)-1 on
 * error or when there are none). */
size_t whole_pages(const char *start, const char *end);
size_t resident_pages(const char *start, const char *end);
/* Whether a kernel mapping (a line of /proc/self/maps) starts at addr. */
bool kernel_mapping_starts_at(const void *addr);
/* Find HOLE_RUN blocks of size bytes laid side by side (the run of a heap's top), among up to
 * HOLE_TRIES tries, written with 0x3c; the others stay allocated in spare[] (freed by the
 * caller, or left to a child's exit). */
enum { HOLE_RUN = 7, HOLE_TRIES = 64 };
bool blocks_side_by_side(size_t size, unsigned char **run, unsigned char **spare);
size_t page_size(void);

/* Run fn(arg) in a forked child with stderr captured; the child exits 0 when fn returns.
 * *status gets the wait status; up to cap-1 bytes of stderr go into err (NUL-terminated).
 * A child running longer than timeout_s seconds is killed with SIGKILL. */
void run_in_child(void (*fn)(void *), void *arg, unsigned timeout_s, int *status, char *err,
                  size_t cap);

/* Test areas (one per tests/t-*.c), run by name by tests/main.c. */
int test_api(void);
int test_limits(void);
int test_aligned(void);
int test_realloc(void);
int test_calloc(void);
int test_errno(void);
int test_stats(void);
int test_randomops(void);
int test_threads(void);
int test_fork(void);
int test_threadstorm(void);
int test_exhaust(void);
int test_death(void);
int test_transfer(void);
int test_corrupt(void);


/* The allocation functions called through volatile pointers (defined in ptest.c), so that the
 * compiler can neither fold a call nor assume what it does to errno. */
extern void *(*volatile v_malloc)(size_t);
extern void *(*volatile v_calloc)(size_t, size_t);
extern void *(*volatile v_realloc)(void *, size_t);
extern void *(*volatile v_reallocarray)(void *, size_t, size_t);
extern int (*volatile v_posix_memalign)(void **, size_t, size_t);
extern void *(*volatile v_aligned_alloc)(size_t, size_t);
extern void *(*volatile v_memalign)(size_t, size_t);
extern void *(*volatile v_valloc)(size_t);
extern void *(*volatile v_pvalloc)(size_t);
extern void (*volatile v_free)(void *);
extern size_t (*volatile v_usable)(void *);

#endif /* PALLOC_PTEST_H */
