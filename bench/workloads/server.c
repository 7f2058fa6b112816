/* server: THREADS workers share a table of blocks; each allocates a block, swaps it into a
 * random slot and frees whatever it took out, which another thread usually allocated (remote
 * frees, like request objects handed between threads). Args: THREADS (4), OPS per thread (3M). */
#include "bench_common.h"

#include <pthread.h>
#include <stdatomic.h>

#define SLOTS 4096

static _Atomic(void *) table[SLOTS];
static long ops_per_thread;

static void *worker(void *arg)
{
  uint64_t rng = (uint64_t)(uintptr_t)arg * 7919 + 1;
  for (long i = 0; i < ops_per_thread; i++) {
    size_t size = rng_typical_size(&rng) & 1023;
    void *block = bench_malloc(size + 8);
    stamp(block, size + 8, 0xabcdef);
    void *old = atomic_exchange(&table[rng_below(&rng, SLOTS)], block);
    if (old != NULL) {
      verify(old, 8, 0xabcdef);
      bench_free(old);
    }
  }
  return NULL;
}

int main(int argc, char **argv)
{
  int threads = (int)arg_long(argc, argv, 1, 4);
  ops_per_thread = arg_long(argc, argv, 2, 3000000);
  pthread_t tid[64];
  for (int t = 0; t < threads && t < 64; t++)
    pthread_create(&tid[t], NULL, worker, (void *)(uintptr_t)(t + 1));
  for (int t = 0; t < threads && t < 64; t++)
    pthread_join(tid[t], NULL);
  for (int i = 0; i < SLOTS; i++)
    bench_free(atomic_load(&table[i]));
  return 0;
}
