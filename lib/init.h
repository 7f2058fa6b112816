/* init.h: start-up, options, fork and exit handling of the front end.
 *
 * palloc initialises lazily, on the first call of any entry point, whichever thread makes it
 * and whether or not constructors have run (the dynamic loader and other libraries' constructors
 * allocate first). Initialisation may itself allocate (pthread_atfork does): such a nested call
 * from the initialising thread is served by the backend directly, without a thread cache.
 *
 * Fork handlers (pthread_atfork) are registered only once a second thread calls palloc (or at
 * start-up when the initialising thread is not the process's main thread): before that no other
 * thread can hold a palloc lock when fork() is called, and glibc itself takes its malloc's locks
 * around fork only in a multithreaded process. A single-threaded program thus never runs
 * __register_atfork, whose code and tables would fault in two 64 KiB windows of libc (the
 * kernel maps file pages around each fault), about 128 KiB of its peak RSS.
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
  bool canary;                  /* PALLOC_CANARY=1: a checked tail after every block (harden.h) */
  bool guard;                   /* PALLOC_GUARD=1: a PROT_NONE page after every mapped block */
};

extern struct init_options init_options;
extern atomic_int init_state; /* INIT_NONE, INIT_RUNNING, INIT_DONE */
enum { INIT_NONE, INIT_RUNNING, INIT_DONE };

/* Set once the calling thread has seen initialisation done and, if it is not the initialising
 * thread, the fork handlers registered. */
extern __thread bool init_thread_ready __attribute__((tls_model("initial-exec")));

void init_slow(void);
void init_thread_slow(void);

/* First thing of every slow path: start palloc, and say that this thread uses it. */
static inline void init_ensure(void)
{
  if (unlikely(!init_thread_ready))
    init_thread_slow();
}

/* With PALLOC_CHECK=N, run the heap checker every N slow-path calls; abort when it fails. */
void init_count_call_for_check(void);

#endif /* PALLOC_INIT_H */
