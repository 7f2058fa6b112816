/* misuse_cases.h: the misuse programs of issue #6, shared by tests/t-death.c (palloc must stop
 * each with SIGABRT and a "palloc: ..." line naming the problem and the function) and by
 * tests/misuse-run.c, the stand-alone program that tests/misuse-matrix.sh runs under each
 * allocator with LD_PRELOAD to build the README's table.
 *
 * Each case allocates for itself and calls only the standard functions (free_sized through
 * dlsym, as glibc 2.36 lacks it), so that any malloc can run it; a case that returns means the
 * allocator let the misuse pass.
 */
#ifndef PALLOC_MISUSE_CASES_H
#define PALLOC_MISUSE_CASES_H

#include <stddef.h>

struct misuse_case {
  const char *name;     /* argv[1] of misuse-run */
  const char *label;    /* the table's row */
  void (*run)(void);
  const char *expect;   /* palloc's message contains one of these ('|'-separated) */
  const char *function; /* ... and names this function */
  const char *env;      /* NAME=value palloc needs to catch it, or NULL */
};

extern const struct misuse_case misuse_cases[];
extern const size_t misuse_case_count;

/* Allocate count blocks of size bytes (count at most FILLERS_MAX), then free them all: the
 * frees that push earlier ones on, out of a queue of recent frees (the two below). */
#define FILLERS_MAX 256
void free_fillers(int count, size_t size);

/* palloc's free queues a thread's last few freed blocks (TCACHE_PENDING in lib/tcache.h, 8)
 * before they join their cache bins, where a write after free into a block's link shows: free
 * SETTLE_FREES blocks of a size no test uses, so that every block freed before is on its bin.
 * (Harmless under any other allocator.) */
#define SETTLE_FREES 16
static inline void settle_recent_frees(void) { free_fillers(SETTLE_FREES, 1984); }

/* Under memcheck a freed block waits in palloc's quarantine of the last 256 freed blocks
 * (README "Running under valgrind"): free 256 more small ones, so that it is a free block. */
static inline void push_out_of_quarantine(void) { free_fillers(256, 48); }

/* Exit status of a case that cannot run under this C library (no free_sized). */
#define MISUSE_NOT_APPLICABLE 77

#endif /* PALLOC_MISUSE_CASES_H */
