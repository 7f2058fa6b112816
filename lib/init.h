/* init.h: start-up, options, fork and exit handling of the front end.
 *
 * palloc initialises lazily, on the first call of any entry point, whichever thread makes it
 * and whether or not constructors have run (the dynamic loader and other libraries' constructors
 * allocate first). Initialisation may itself allocate (pthread_atfork does): such a nested call
 * from the initialising thread is served by the backend directly, without a thread cache.
 */
#ifndef PALLOC_INIT_H
#define PALLOC_INIT_H

#include "util/bits.h"

#include <stdatomic.h>
#include <stdbool.h>

struct init_options {
  bool print_stats_at_exit;     /* PALLOC_STATS=1 */
  unsigned long check_interval; /* PALLOC_CHECK=N: palloc_check_heap() every N calls, or 0 */
  bool thread_caches;           /* off with PALLOC_CHECK, PALLOC_JUNK or PALLOC_QUARANTINE,
                                   so that every call takes the slow path */
  bool check_free_sized;        /* PALLOC_CHECK_FREE_SIZED=1: free_sized's size must fit */
  bool junk_on_free;            /* PALLOC_JUNK=1: fill freed blocks with 0xdf */
  unsigned long quarantine_blocks; /* PALLOC_QUARANTINE=N: delay the reuse of N freed blocks */
};

extern struct init_options init_options;
extern atomic_int init_state; /* INIT_NONE, INIT_RUNNING, INIT_DONE */
enum { INIT_NONE, INIT_RUNNING, INIT_DONE };

void init_slow(void);

static inline void init_ensure(void)
{
  if (unlikely(atomic_load_explicit(&init_state, memory_order_acquire) != INIT_DONE))
    init_slow();
}

/* With PALLOC_CHECK=N, run the heap checker every N slow-path calls; abort when it fails. */
void init_count_call_for_check(void);

#endif /* PALLOC_INIT_H */
