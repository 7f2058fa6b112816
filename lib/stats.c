/* stats.c: the shared totals behind palloc_stats_get() and the report (stats.h). */
#include "config.h"
#include "stats.h"

#include "backend.h"
#include "export.h"
#include "init.h"
#include "util/report.h"

#include <stdatomic.h>
#include <string.h>

static _Atomic int64_t published_live_bytes;
static _Atomic uint64_t peak_live_bytes;
static _Atomic uint64_t retired_calls[PALLOC_FN_COUNT];

static const char *const function_names[PALLOC_FN_COUNT] = {
  "malloc", "calloc", "realloc", "reallocarray", "free", "free_sized", "free_aligned_sized",
  "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
};

static void raise_peak(int64_t live)
{
  uint64_t now = live > 0 ? (uint64_t)live : 0;
  uint64_t peak = atomic_load_explicit(&peak_live_bytes, memory_order_relaxed);
  while (now > peak &&
         !atomic_compare_exchange_weak_explicit(&peak_live_bytes, &peak, now,
                                                memory_order_relaxed, memory_order_relaxed))
    ;
}

static void add_live(int64_t delta)
{
  int64_t live = atomic_fetch_add_explicit(&published_live_bytes, delta, memory_order_relaxed);
  raise_peak(live + delta);
}

void stats_publish(struct tcache *tc)
{
  if (tc->unpublished_live != 0) {
    add_live(tc->unpublished_live);
    tc->unpublished_live = 0;
  }
}

void stats_count_uncached(enum palloc_function fn, int64_t live_delta)
{
  atomic_fetch_add_explicit(&retired_calls[fn], 1, memory_order_relaxed);
  if (live_delta != 0)
    add_live(live_delta);
}

void stats_absorb_calls(const uint64_t calls[PALLOC_FN_COUNT])
{
  for (int fn = 0; fn < PALLOC_FN_COUNT; fn++)
    atomic_fetch_add_explicit(&retired_calls[fn], calls[fn], memory_order_relaxed);
}

PALLOC_EXPORT const char *palloc_function_name(enum palloc_function fn)
{
  return (unsigned)fn < PALLOC_FN_COUNT ? function_names[fn] : NULL;
}

/* Sum the live caches' counters into stats (registry locked by the caller). */
static int64_t sum_live_caches(struct palloc_stats *stats)
{
  int64_t unpublished = 0;
  for (struct tcache *tc = tcache_registry_first(); tc != NULL; tc = tc->next) {
    unpublished += __atomic_load_n(&tc->unpublished_live, __ATOMIC_RELAXED);
    for (int fn = 0; fn < PALLOC_FN_COUNT; fn++)
      stats->calls[fn] += __atomic_load_n(&tc->calls[fn], __ATOMIC_RELAXED);
  }
  return unpublished;
}

PALLOC_EXPORT int palloc_stats_get(struct palloc_stats *stats)
{
  memset(stats, 0, sizeof *stats);
  init_ensure();
  if (tcache_self != NULL)
    stats_publish(tcache_self);
  for (int fn = 0; fn < PALLOC_FN_COUNT; fn++)
    stats->calls[fn] = atomic_load_explicit(&retired_calls[fn], memory_order_relaxed);
  tcache_registry_lock();
  int64_t live = atomic_load_explicit(&published_live_bytes, memory_order_relaxed) +
                 sum_live_caches(stats);
  tcache_registry_unlock();
  raise_peak(live);
  stats->live_bytes = live > 0 ? (uint64_t)live : 0;
  stats->peak_live_bytes = atomic_load_explicit(&peak_live_bytes, memory_order_relaxed);
  struct backend_stats heap;
  backend_get_stats(&heap);
  stats->mapped_bytes = heap.mapped_bytes;
  stats->peak_mapped_bytes = heap.peak_mapped_bytes;
  stats->backend_free_bytes = heap.free_bytes;
  stats->cached_bytes = tcache_cached_bytes();
  return 0;
}

static void print_field(const char *name, uint64_t value)
{
  char buf[128];
  struct report_line line = { buf, sizeof buf, 0 };
  line_str(&line, "palloc:   ");
  line_str(&line, name);
  line_str(&line, " ");
  line_uint(&line, value);
  line_flush(&line);
}

PALLOC_EXPORT void palloc_stats_print(void)
{
  struct palloc_stats stats;
  palloc_stats_get(&stats);
  report_warning("statistics (backend " BACKEND_NAME ")");
  print_field("live_bytes", stats.live_bytes);
  print_field("peak_live_bytes", stats.peak_live_bytes);
  print_field("mapped_bytes", stats.mapped_bytes);
  print_field("peak_mapped_bytes", stats.peak_mapped_bytes);
  print_field("backend_free_bytes", stats.backend_free_bytes);
  print_field("cached_bytes", stats.cached_bytes);
  for (int fn = 0; fn < PALLOC_FN_COUNT; fn++) {
    char name[40];
    struct report_line line = { name, sizeof name - 1, 0 };
    line_str(&line, "calls.");
    line_str(&line, function_names[fn]);
    name[line.len] = '\0';
    print_field(name, stats.calls[fn]);
  }
}

void stats_print_at_exit_if_asked(void)
{
  if (init_options.print_stats_at_exit)
    palloc_stats_print();
}
