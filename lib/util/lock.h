/* lock.h: the one lock type palloc uses, a pthread mutex behind three short names.
 *
 * The mutex is glibc's adaptive kind: a thread that finds it taken spins a little before it
 * sleeps. palloc's critical sections are short (a batch of blocks), so the holder usually
 * releases within the spin, and two threads trading blocks do not pay a futex sleep and a
 * context switch each time (prodcons: about 3x faster than with a plain mutex on 2 cores).
 * pthread_mutex_lock never allocates, works before any constructor has run (static
 * initialiser) and can be re-initialised in a forked child (lock_reset), which is all the
 * allocator needs. Locks are never held across a call that may allocate.
 */
#ifndef PALLOC_LOCK_H
#define PALLOC_LOCK_H

#include <pthread.h>

typedef pthread_mutex_t palloc_lock;
#define PALLOC_LOCK_INIT PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP

static inline void lock_acquire(palloc_lock *lock) { pthread_mutex_lock(lock); }
static inline void lock_release(palloc_lock *lock) { pthread_mutex_unlock(lock); }
/* In a forked child: the lock may have been held by a thread that no longer exists. */
static inline void lock_reset(palloc_lock *lock)
{
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
  pthread_mutex_init(lock, &attr);
  pthread_mutexattr_destroy(&attr);
}

#endif /* PALLOC_LOCK_H */
