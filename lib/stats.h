/* stats.h: palloc's counters (live and peak bytes, calls per function).
 *
 * A thread with a cache counts in its struct tcache without atomics and publishes its live
 * bytes to the shared totals whenever its cache talks to the backend (refill, flush, exit);
 * calls made without a cache (during initialisation, after the thread's cache was handed back)
 * go straight to the shared atomic totals. The peak is updated at each publish, so it may miss
 * a short-lived high point by at most what the thread caches can serve between two publishes.
 */
#ifndef PALLOC_STATS_H
#define PALLOC_STATS_H

#include "palloc.h"
#include "tcache.h"

#include <stdint.h>

/* Move tc's unpublished live bytes into the shared total and update the peak. */
void stats_publish(struct tcache *tc);
/* Count a call made without a cache, with the live bytes it added (or removed, negative). */
void stats_count_uncached(enum palloc_function fn, int64_t live_delta);
/* Fold an exiting thread's call counts into the shared totals. */
void stats_absorb_calls(const uint64_t calls[PALLOC_FN_COUNT]);
/* Print the report at process exit when PALLOC_STATS asks for it. */
void stats_print_at_exit_if_asked(void);

#endif /* PALLOC_STATS_H */
