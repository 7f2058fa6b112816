/* pairs.c: N malloc/free pairs of small blocks, the cost that tracing call sites add to.
 *
 *   pairs N    prints the wall time per pair in nanoseconds
 *
 * Sizes cycle through 16..256 bytes so that several size classes are used; the pointer goes
 * through a volatile sink so that the compiler keeps every call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void *volatile sink;

int main(int argc, char **argv)
{
  long pairs = argc > 1 ? atol(argv[1]) : 1000000;
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < pairs; i++) {
    void *p = malloc(16 + (size_t)(i & 15) * 16);
    sink = p;
    free(p);
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  double ns = (double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec);
  printf("%.2f\n", pairs > 0 ? ns / (double)pairs : 0.0);
  return 0;
}
