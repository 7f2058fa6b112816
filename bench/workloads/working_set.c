/* working_set: a large live set (~150 MB) of mixed sizes, replaced at random: the backend's
 * fit, split and coalesce under memory pressure. Args: LIVE_BLOCKS (400000), ROUNDS (6). */
#include "bench_common.h"

int main(int argc, char **argv)
{
  long live = arg_long(argc, argv, 1, 400000);
  long rounds = arg_long(argc, argv, 2, 6);
  uint64_t rng = 7;
  void **slot = calloc((size_t)live, sizeof *slot);
  size_t *size = calloc((size_t)live, sizeof *size);
  for (long r = 0; r < rounds; r++)
    for (long k = 0; k < live; k++) {
      long i = (long)rng_below(&rng, (size_t)live);
      if (slot[i] != NULL) {
        verify(slot[i], size[i], (uint64_t)i);
        bench_free(slot[i]);
      }
      size[i] = rng_typical_size(&rng);
      slot[i] = bench_malloc(size[i]);
      stamp(slot[i], size[i], (uint64_t)i);
    }
  for (long i = 0; i < live; i++)
    bench_free(slot[i]);
  free(slot);
  free(size);
  return 0;
}
