/* bench_common.h: what every workload shares: a deterministic PRNG, argument parsing, a
 * content check that keeps the allocator honest, and the volatile function pointers that stop
 * the compiler from folding malloc/free pairs away. Workloads link with nothing but libc and
 * run under any allocator through LD_PRELOAD. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*volatile bench_malloc)(size_t) = malloc;
static void (*volatile bench_free)(void *) = free;
static void *(*volatile bench_realloc)(void *, size_t) = realloc;

/* xorshift64*: fast, deterministic per seed. */
static inline uint64_t rng_next(uint64_t *state)
{
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545f4914f6cdd1dull;
}

static inline size_t rng_below(uint64_t *state, size_t bound) { return (size_t)(rng_next(state) % bound); }

/* A size from a distribution typical of C programs: mostly small, a tail of larger ones. */
static inline size_t rng_typical_size(uint64_t *state)
{
  uint64_t r = rng_next(state);
  unsigned bucket = (unsigned)(r & 127);
  r >>= 8;
  if (bucket < 96)
    return 8 + r % 120;          /* 75%: 8..127 bytes */
  if (bucket < 122)
    return 128 + r % 1920;       /* 20%: up to 2 KiB */
  return 2048 + r % 30720;       /* 5%: up to 32 KiB */
}

static inline long arg_long(int argc, char **argv, int index, long fallback)
{
  return argc > index ? atol(argv[index]) : fallback;
}

/* Stamp and verify the first word of a block: catches an allocator that hands out a block
 * twice or corrupts contents. */
static inline void stamp(void *block, size_t size, uint64_t value)
{
  if (size >= sizeof value)
    memcpy(block, &value, sizeof value);
  else if (size > 0)
    memset(block, (int)(value & 0xff), size);
}

static inline void verify(const void *block, size_t size, uint64_t value)
{
  uint64_t seen;
  if (size >= sizeof value) {
    memcpy(&seen, block, sizeof seen);
    if (seen != value) {
      fprintf(stderr, "bench: block %p lost its contents\n", (void *)block);
      abort();
    }
  }
}

#endif
