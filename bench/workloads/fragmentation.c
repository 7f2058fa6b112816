/* fragmentation: many small blocks, free most of them (keeping one in eight), then allocate
 * medium blocks: an allocator that cannot reuse the holes grows; peak RSS shows it.
 * Args: SMALL (1500000), ROUNDS (4). */
#include "bench_common.h"

int main(int argc, char **argv)
{
  long small = arg_long(argc, argv, 1, 1500000);
  long rounds = arg_long(argc, argv, 2, 4);
  uint64_t rng = 13;
  void **block = calloc((size_t)small, sizeof *block);
  void **kept = calloc((size_t)rounds * (size_t)small / 8 + 1, sizeof *kept);
  long kept_count = 0;
  for (long r = 0; r < rounds; r++) {
    for (long i = 0; i < small; i++) {
      block[i] = bench_malloc(16 + rng_below(&rng, 48));
      stamp(block[i], 16, (uint64_t)i);
    }
    for (long i = 0; i < small; i++) {
      if (i % 8 == 0)
        kept[kept_count++] = block[i];
      else
        bench_free(block[i]);
    }
    long medium = small / 16;
    for (long i = 0; i < medium; i++) {
      block[i] = bench_malloc(256 + rng_below(&rng, 768));
      stamp(block[i], 16, (uint64_t)i);
    }
    for (long i = 0; i < medium; i++) {
      verify(block[i], 16, (uint64_t)i);
      bench_free(block[i]);
    }
  }
  for (long i = 0; i < kept_count; i++)
    bench_free(kept[i]);
  free(block);
  free(kept);
  return 0;
}
