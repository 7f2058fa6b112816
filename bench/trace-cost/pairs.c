/* pairs.c: N malloc/free pairs of small blocks, the cost that tracing call sites add to, and
 * the cost of a thread-cache hit (bench/pair_cost.py).
 *
 *   pairs N [LIVE]   prints the wall time per pair in nanoseconds
 *
 * Sizes cycle through 16..256 bytes so that several size classes are used. With LIVE = 0 (the
 * default) each block is freed at once; with LIVE > 0 the loop keeps a ring of LIVE blocks and
 * frees the oldest before each malloc, so that no allocator sees its pages empty and refill
 * in a loop. Pointers go through a volatile sink so that the compiler keeps every call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define LIVE_MAX 4096

static void *volatile sink;
static void *ring[LIVE_MAX];

int main(int argc, char **argv)
{
  long pairs = argc > 1 ? atol(argv[1]) : 1000000;
  long live = argc > 2 ? atol(argv[2]) : 0;
  if (live < 0 || live > LIVE_MAX)
    live = LIVE_MAX;
  for (long i = 0; i < live; i++)
    ring[i] = malloc(16 + (size_t)(i & 15) * 16);
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < pairs; i++) {
    void *p = malloc(16 + (size_t)(i & 15) * 16);
    sink = p;
    if (live > 0) {
      free(ring[i % live]);
      ring[i % live] = p;
    } else {
      free(p);
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  for (long i = 0; i < live; i++)
    free(ring[i]);
  double ns = (double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec);
  printf("%.2f\n", pairs > 0 ? ns / (double)pairs : 0.0);
  return 0;
}
