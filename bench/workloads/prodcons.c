/* prodcons: one producer thread allocates messages, one consumer thread frees them: every free
 * is remote. A bounded ring between them. Args: MESSAGES (1.5M). */
#include "bench_common.h"

#include <pthread.h>
#include <stdatomic.h>

#define RING 1024

static _Atomic(void *) ring[RING];
static long messages;

static void *producer(void *arg)
{
  (void)arg;
  uint64_t rng = 3;
  for (long i = 0; i < messages; i++) {
    size_t size = 16 + rng_below(&rng, 240);
    void *message = bench_malloc(size);
    stamp(message, size, (uint64_t)i);
    _Atomic(void *) *cell = &ring[i % RING];
    void *expected = NULL;
    while (!atomic_compare_exchange_weak(cell, &expected, message))
      expected = NULL;
  }
  return NULL;
}

static void *consumer(void *arg)
{
  (void)arg;
  for (long i = 0; i < messages; i++) {
    _Atomic(void *) *cell = &ring[i % RING];
    void *message;
    while ((message = atomic_exchange(cell, NULL)) == NULL)
      ;
    verify(message, 16, (uint64_t)i);
    bench_free(message);
  }
  return NULL;
}

int main(int argc, char **argv)
{
  messages = arg_long(argc, argv, 1, 1500000);
  pthread_t p, c;
  pthread_create(&p, NULL, producer, NULL);
  pthread_create(&c, NULL, consumer, NULL);
  pthread_join(p, NULL);
  pthread_join(c, NULL);
  return 0;
}
