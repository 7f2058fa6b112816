/* lock.h: the one lock type palloc uses, a pthread mutex behind three short names.
 *
 * pthread_mutex_lock never allocates, works before any constructor has run (static
 * initialiser) and can be re-initialised in a forked child (lock_reset), which is all the
 * allocator needs. Locks are never held across a call that may allocate.
 */
#ifndef PALLOC_LOCK_H
#define PALLOC_LOCK_H

#include <pthread.h>

typedef pthread_mutex_t palloc_lock;
#define PALLOC_LOCK_INIT PTHREAD_MUTEX_INITIALIZER

static inline void lock_acquire(palloc_lock *lock) { pthread_mutex_lock(lock); }
static inline void lock_release(palloc_lock *lock) { pthread_mutex_unlock(lock); }
/* In a forked child: the lock may have been held by a thread that no longer exists. */
static inline void lock_reset(palloc_lock *lock) { pthread_mutex_init(lock, NULL); }

#endif /* PALLOC_LOCK_H */
