/* t-transfer.c: blocks handed between threads through the transfer cache (lib/transfer.h).
 *
 * A consumer thread frees what a producer allocated: its overflowing bins go to the transfer
 * cache, and the producer's next refills take them back. The test checks contents across the
 * handoff, the heap (transfer invariants T4-T5 included) after every step, that the statistics
 * count the held blocks as cached, that malloc_trim drains them, and that a block held there
 * is still caught when freed again.
 */
#include "ptest.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define HANDOFF_BLOCKS 600
#define HANDOFF_SIZE 48

static void *blocks[HANDOFF_BLOCKS];

static void *free_all_blocks(void *arg)
{
  (void)arg;
  for (int i = 0; i < HANDOFF_BLOCKS; i++)
    free(blocks[i]);
  return NULL;
}

static void run_thread(void *(*fn)(void *), void *arg)
{
  pthread_t thread;
  if (pthread_create(&thread, NULL, fn, arg) == 0)
    pthread_join(thread, NULL);
}

static int allocate_and_fill(uint64_t seed)
{
  int wrong = 0;
  for (int i = 0; i < HANDOFF_BLOCKS; i++) {
    blocks[i] = malloc(HANDOFF_SIZE);
    fill_pattern(blocks[i], HANDOFF_SIZE, seed + (uint64_t)i);
  }
  for (int i = 0; i < HANDOFF_BLOCKS; i++)
    wrong += !pattern_ok(blocks[i], HANDOFF_SIZE, seed + (uint64_t)i);
  return wrong;
}

static void handoff_rounds(void)
{
  int wrong = 0, broken = 0;
  for (uint64_t round = 0; round < 20; round++) {
    wrong += allocate_and_fill(round * 1000);
    broken += P.check_heap() != 0;
    run_thread(free_all_blocks, NULL);
    broken += P.check_heap() != 0;
  }
  ok(wrong == 0, "20 rounds of %d blocks allocated here, freed by another thread: contents intact",
     HANDOFF_BLOCKS);
  ok(broken == 0, "heap consistent after every allocation and every remote free");
}

static void held_blocks_counted_and_drained(void)
{
  allocate_and_fill(7);
  run_thread(free_all_blocks, NULL);
  uint64_t cached = stats_now().cached_bytes;
  ok(cached >= 64 * HANDOFF_SIZE, "blocks freed by an exited thread are counted as cached (%llu B)",
     (unsigned long long)cached);
  malloc_trim(0);
  cached = stats_now().cached_bytes;
  ok(cached == 0, "malloc_trim hands them all back (%llu B cached after)", (unsigned long long)cached);
  ok(P.check_heap() == 0, "heap consistent after the trim");
}

static void *free_one(void *arg)
{
  free(arg);
  return NULL;
}

/* In a child: a block freed by a thread that then exits lands in the transfer cache; freeing
 * it again from this thread must abort as a double free. */
static void double_free_of_held_block(void *arg)
{
  (void)arg;
  void *p = malloc(HANDOFF_SIZE);
  run_thread(free_one, p);
  free(p);
}

int test_transfer(void)
{
  ptest_init();
  handoff_rounds();
  held_blocks_counted_and_drained();
  static char err[4096];
  int status = 0;
  run_in_child(double_free_of_held_block, NULL, 20, &status, err, sizeof err);
  ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && strstr(err, "palloc: double free"),
     "a second free of a block held by the transfer cache aborts with \"palloc: double free\" "
     "(stderr \"%.100s\")", err);
  return tap_done();
}
