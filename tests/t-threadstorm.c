/* t-threadstorm.c: thousands of short-lived threads, each filling its thread cache; what a
 * thread's cache holds must go back when it exits, so mapped bytes stay bounded. */
#include "ptest.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { BATCH = 4 };

struct job {
  unsigned id;
  unsigned char *handed; /* a block given to main, freed there */
  int bad;
};

static void *short_life(void *arg)
{
  struct job *job = arg;
  uint64_t rng = job->id + 1;
  void *blocks[48];
  for (int i = 0; i < 48; i++) {
    size_t size = 16 + rng_below(&rng, i < 40 ? 1024 : 20000);
    blocks[i] = malloc(size);
    if (!blocks[i]) {
      job->bad = 1;
      continue;
    }
    memset(blocks[i], (int)job->id, size);
  }
  for (int i = 0; i < 48; i++)
    free(blocks[i]);
  free(malloc(32));
  job->handed = malloc(32);
  if (job->handed)
    fill_pattern(job->handed, 32, job->id);
  else
    job->bad = 1;
  return NULL;
}

static unsigned storm(unsigned threads, unsigned first_id)
{
  unsigned bad = 0;
  for (unsigned t = 0; t < threads; t += BATCH) {
    pthread_t tid[BATCH];
    struct job jobs[BATCH];
    for (int i = 0; i < BATCH; i++) {
      jobs[i] = (struct job){.id = first_id + t + (unsigned)i};
      if (pthread_create(&tid[i], NULL, short_life, &jobs[i]))
        bail_out("pthread_create failed after %u threads", t);
    }
    for (int i = 0; i < BATCH; i++) {
      pthread_join(tid[i], NULL);
      if (jobs[i].bad || !pattern_ok(jobs[i].handed, 32, jobs[i].id))
        bad++;
      free(jobs[i].handed);
    }
  }
  return bad;
}

int test_threadstorm(void)
{
  ptest_init();
  uint64_t live0 = live_bytes();
  unsigned warm = scaled(400), total = scaled(6000);
  unsigned bad = storm(warm, 0);
  struct palloc_stats s1 = stats_now();
  size_t rss1 = rss_bytes();
  bad += storm(total, warm);
  struct palloc_stats s2 = stats_now();
  size_t rss2 = rss_bytes();
  ok(bad == 0, "%u short-lived threads in batches of %d: blocks handed to main intact",
     warm + total, BATCH);
  ok(s2.mapped_bytes <= s1.mapped_bytes + (8u << 20),
     "mapped bytes bounded: %llu KiB after %u threads, %llu KiB after %u more",
     (unsigned long long)s1.mapped_bytes >> 10, warm, (unsigned long long)s2.mapped_bytes >> 10,
     total);
  ok(s2.peak_mapped_bytes <= s1.peak_mapped_bytes + (8u << 20),
     "peak mapped bytes bounded too (%llu -> %llu KiB)",
     (unsigned long long)s1.peak_mapped_bytes >> 10, (unsigned long long)s2.peak_mapped_bytes >> 10);
  ok(rss2 <= rss1 + (4u << 20), "RSS bounded: %zu -> %zu KiB", rss1 >> 10, rss2 >> 10);
  ok(s2.live_bytes <= live0 + 4096, "live bytes back to baseline (%llu -> %llu)",
     (unsigned long long)live0, (unsigned long long)s2.live_bytes);
  ok(s2.cached_bytes <= s1.cached_bytes + (1u << 20),
     "bytes held in thread caches do not pile up (%llu -> %llu)",
     (unsigned long long)s1.cached_bytes, (unsigned long long)s2.cached_bytes);
  ok(P.check_heap() == 0, "heap consistent after the storm");
  return tap_done();
}
