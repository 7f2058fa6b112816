/* t-transfer.c: blocks handed between threads through the transfer cache (lib/transfer.h).
 *
 * A consumer thread frees what a producer allocated: its overflowing bins go to the transfer
 * cache, and the producer's next refills take them back. The test checks contents across the
 * handoff, the heap (transfer invariants T4-T5 included) after every step, that the statistics
 * count the held blocks as cached, that malloc_trim drains them, that a thread's bins keep
 * fewer blocks while other threads have caches (with the mmap backend none over 4 KiB, which
 * the transfer cache does not keep either), and that a block held there is still caught when
 * freed again.
 */
#include "ptest.h"

#include <malloc.h>
#include <stdbool.h>
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

/* ---- A thread's bins hold fewer blocks while other threads have caches ------------------ */

#define BOUND_BLOCKS 300
#define BOUND_SIZE 40 /* a 48-byte block: a bin of 64 blocks alone, 32 shared (lib/tcache.c) */
#define BOUND_BLOCK 48
#define BOUND_BIG_SIZE 1000 /* a 1008- or 1024-byte block: a bin of 16 KiB alone, 4 KiB shared */
#define BOUND_BIG_BLOCK_MAX 1024
#define RING_BLOCKS 8 /* the last frees wait in a ring beside the bins (TCACHE_PENDING) */
#define BOUND_BIG_SHARED_MAX (4096 + RING_BLOCKS * BOUND_BIG_BLOCK_MAX)
#define BOUND_HUGE_SIZE 10000 /* a 10240-byte block: kept by a lone thread, not while shared */
#define BOUND_HUGE_BLOCK 10240

static pthread_barrier_t bound_barrier;

static void *alloc_free_and_exit(void *arg)
{
  size_t request = (size_t)(uintptr_t)arg;
  void *mine[BOUND_BLOCKS];
  for (int i = 0; i < BOUND_BLOCKS; i++)
    mine[i] = malloc(request);
  for (int i = 0; i < BOUND_BLOCKS; i++)
    free(mine[i]);
  return NULL;
}

/* A thread with a cache of its own (one block of another class), alive until released. */
static void *stay_alive(void *arg)
{
  (void)arg;
  free(malloc(3000));
  pthread_barrier_wait(&bound_barrier);
  pthread_barrier_wait(&bound_barrier);
  return NULL;
}

/* Bytes of blocks of request bytes that this thread's cache holds after freeing BOUND_BLOCKS
 * of them, its bin drained first, with the transfer cache full (so that its overflow goes to
 * the backend and the growth of cached_bytes is its own bin's). */
static uint64_t bytes_kept_after_frees(size_t request)
{
  void *mine[BOUND_BLOCKS];
  for (int i = 0; i < BOUND_BLOCKS; i++)
    mine[i] = malloc(request);
  malloc_trim(0);
  run_thread(alloc_free_and_exit, (void *)(uintptr_t)request); /* fills the transfer cache */
  uint64_t before = stats_now().cached_bytes;
  for (int i = 0; i < BOUND_BLOCKS; i++)
    free(mine[i]);
  return stats_now().cached_bytes - before;
}

static void bins_bounded_while_shared(void)
{
  uint64_t alone = bytes_kept_after_frees(BOUND_SIZE) / BOUND_BLOCK;
  uint64_t alone_big = bytes_kept_after_frees(BOUND_BIG_SIZE);
  uint64_t alone_huge = bytes_kept_after_frees(BOUND_HUGE_SIZE);
  ok(alone > 32 && alone <= 64, "a lone thread's bin keeps up to 64 blocks (%llu kept)",
     (unsigned long long)alone);
  ok(alone_big > BOUND_BIG_SHARED_MAX && alone_big <= 16384 + RING_BLOCKS * BOUND_BIG_BLOCK_MAX,
     "a lone thread's bin of 1 KiB blocks keeps up to 16 KiB, 8 more blocks in the ring (%llu B kept)",
     (unsigned long long)alone_big);
  pthread_t other;
  pthread_barrier_init(&bound_barrier, NULL, 2);
  bool started = pthread_create(&other, NULL, stay_alive, NULL) == 0;
  if (started)
    pthread_barrier_wait(&bound_barrier);
  uint64_t shared = bytes_kept_after_frees(BOUND_SIZE) / BOUND_BLOCK;
  uint64_t shared_big = bytes_kept_after_frees(BOUND_BIG_SIZE);
  uint64_t shared_huge = bytes_kept_after_frees(BOUND_HUGE_SIZE);
  malloc_trim(0); /* the transfer cache empty: room for what the thread hands back */
  uint64_t cached = stats_now().cached_bytes;
  run_thread(alloc_free_and_exit, (void *)(uintptr_t)BOUND_HUGE_SIZE);
  uint64_t exited_huge = stats_now().cached_bytes - cached;
  bool consistent = P.check_heap() == 0;
  if (started) {
    pthread_barrier_wait(&bound_barrier);
    pthread_join(other, NULL);
  }
  pthread_barrier_destroy(&bound_barrier);
  ok(started && shared > 0 && shared <= 32,
     "while another thread has a cache, the bin keeps at most 32 blocks (%llu kept)",
     (unsigned long long)shared);
  ok(started && shared_big > 0 && shared_big <= BOUND_BIG_SHARED_MAX,
     "while another thread has a cache, the bin of 1 KiB blocks keeps at most 4 KiB, 8 more "
     "blocks in the ring (%llu B kept)",
     (unsigned long long)shared_big);
  ok(alone_huge >= (RING_BLOCKS + 1) * BOUND_HUGE_BLOCK,
     "a lone thread keeps blocks of 10 KiB: one in the bin, 8 in the ring (%llu B kept)",
     (unsigned long long)alone_huge);
  if (strcmp(P.backend_name(), "mmap") == 0) {
    ok(started && shared_huge <= RING_BLOCKS * BOUND_HUGE_BLOCK,
       "mmap: while another thread has a cache, blocks of 10 KiB stay in the ring only, none in "
       "the bin (%llu B kept)", (unsigned long long)shared_huge);
    ok(started && exited_huge < BOUND_HUGE_BLOCK,
       "mmap: blocks of 10 KiB that an exiting thread hands back are not held in the transfer "
       "cache (%llu B more cached)", (unsigned long long)exited_huge);
  } else { /* the sbrk backend would fault their pages in again (backend.h) */
    ok(started && shared_huge > RING_BLOCKS * BOUND_HUGE_BLOCK,
       "sbrk: while another thread has a cache, the bin still keeps a block of 10 KiB (%llu B "
       "kept)", (unsigned long long)shared_huge);
    ok(started && exited_huge >= BOUND_HUGE_BLOCK,
       "sbrk: blocks of 10 KiB that an exiting thread hands back wait in the transfer cache "
       "(%llu B more cached)", (unsigned long long)exited_huge);
  }
  ok(consistent, "heap and caches consistent after the bound changed");
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
  bins_bounded_while_shared();
  static char err[4096];
  int status = 0;
  run_in_child(double_free_of_held_block, NULL, 20, &status, err, sizeof err);
  ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && strstr(err, "palloc: double free"),
     "a second free of a block held by the transfer cache aborts with \"palloc: double free\" "
     "(stderr \"%.100s\")", err);
  return tap_done();
}
