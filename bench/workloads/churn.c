/* churn: one thread allocates and frees small objects of typical sizes, keeping a small live
 * set (the thread-cache path). Args: ITERATIONS (default 20M). */
#include "bench_common.h"

#define LIVE 512

int main(int argc, char **argv)
{
  long iterations = arg_long(argc, argv, 1, 20000000);
  uint64_t rng = 42;
  void *slot[LIVE] = { 0 };
  size_t size[LIVE] = { 0 };
  for (long i = 0; i < iterations; i++) {
    unsigned k = (unsigned)rng_below(&rng, LIVE);
    if (slot[k] != NULL) {
      verify(slot[k], size[k], (uint64_t)k);
      bench_free(slot[k]);
    }
    size[k] = rng_typical_size(&rng) & 255;
    slot[k] = bench_malloc(size[k]);
    stamp(slot[k], size[k], (uint64_t)k);
  }
  for (unsigned k = 0; k < LIVE; k++)
    bench_free(slot[k]);
  return 0;
}
