/* thread_storm: threads that live for a few hundred allocations, created and joined in waves:
 * thread-cache set-up and hand-back on exit. Args: WAVES (1500), THREADS per wave (4). */
#include "bench_common.h"

#include <pthread.h>

static void *short_life(void *arg)
{
  uint64_t rng = (uint64_t)(uintptr_t)arg + 1;
  void *keep[64];
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < 64; i++) {
      size_t size = rng_typical_size(&rng);
      keep[i] = bench_malloc(size);
      stamp(keep[i], size, (uint64_t)i);
    }
    for (int i = 0; i < 64; i++)
      bench_free(keep[i]);
  }
  return NULL;
}

int main(int argc, char **argv)
{
  long waves = arg_long(argc, argv, 1, 1500);
  int threads = (int)arg_long(argc, argv, 2, 4);
  pthread_t tid[64];
  for (long w = 0; w < waves; w++) {
    for (int t = 0; t < threads && t < 64; t++)
      pthread_create(&tid[t], NULL, short_life, (void *)(uintptr_t)(w * 64 + t));
    for (int t = 0; t < threads && t < 64; t++)
      pthread_join(tid[t], NULL);
  }
  return 0;
}
