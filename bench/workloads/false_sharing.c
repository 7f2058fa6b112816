/* false_sharing: each thread allocates small objects one after another and writes them hard;
 * an allocator that hands neighbouring bytes of one cache line to different threads makes
 * the cores fight over the line (cache-scratch). Args: THREADS (2), ROUNDS (20000), WRITES (20000). */
#include "bench_common.h"

#include <pthread.h>

static long rounds, writes;

static void *worker(void *arg)
{
  (void)arg;
  for (long r = 0; r < rounds; r++) {
    volatile char *object = bench_malloc(8);
    for (long w = 0; w < writes; w++)
      object[w & 7]++;
    bench_free((void *)object);
  }
  return NULL;
}

int main(int argc, char **argv)
{
  int threads = (int)arg_long(argc, argv, 1, 2);
  rounds = arg_long(argc, argv, 2, 20000);
  writes = arg_long(argc, argv, 3, 20000);
  pthread_t tid[64];
  for (int t = 0; t < threads && t < 64; t++)
    pthread_create(&tid[t], NULL, worker, NULL);
  for (int t = 0; t < threads && t < 64; t++)
    pthread_join(tid[t], NULL);
  return 0;
}
