/* large: blocks from 64 KiB to 8 MiB, a few alive at a time, each touched: the mapping and
 * page-return policy (a page fault costs ~2 us here). Args: ITERATIONS (6000). */
#include "bench_common.h"

#define LIVE 8

int main(int argc, char **argv)
{
  long iterations = arg_long(argc, argv, 1, 6000);
  uint64_t rng = 5;
  char *slot[LIVE] = { 0 };
  for (long i = 0; i < iterations; i++) {
    unsigned k = (unsigned)rng_below(&rng, LIVE);
    bench_free(slot[k]);
    unsigned shift = 16 + (unsigned)rng_below(&rng, 8); /* 64 KiB .. 8 MiB */
    size_t size = ((size_t)1 << shift) + rng_below(&rng, (size_t)1 << shift);
    if (size > ((size_t)8 << 20))
      size = (size_t)8 << 20;
    slot[k] = bench_malloc(size);
    for (size_t off = 0; off < size; off += 4096 * 4)
      slot[k][off] = (char)i;
  }
  for (unsigned k = 0; k < LIVE; k++)
    bench_free(slot[k]);
  return 0;
}
