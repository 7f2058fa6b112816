/* init.c: lazy, re-entrant initialisation; environment options; fork and exit hooks (init.h). */
#include "config.h"
#include "init.h"

#include "backend.h"
#include "harden.h"
#include "palloc.h"
#include "stats.h"
#include "tcache.h"
#include "util/lock.h"
#include "util/report.h"
#include "util/vg.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

struct init_options init_options;
atomic_int init_state = INIT_NONE;

__thread bool init_thread_ready __attribute__((tls_model("initial-exec")));

static palloc_lock init_lock = PALLOC_LOCK_INIT;
static pthread_t init_thread;
enum { FORK_HOOKS_NONE, FORK_HOOKS_REGISTERING, FORK_HOOKS_DONE };
static atomic_int fork_hooks_state = FORK_HOOKS_NONE;
static __thread bool registering_fork_hooks __attribute__((tls_model("initial-exec")));
static _Atomic unsigned long calls_since_check;

/* A decimal number from the environment, 0 when unset or not a number. */
static unsigned long env_number(const char *name)
{
  const char *text = secure_getenv(name);
  unsigned long value = 0;
  if (text == NULL)
    return 0;
  for (; *text >= '0' && *text <= '9'; text++) {
    if (value > (~0ul - 9) / 10)
      return 0;
    value = value * 10 + (unsigned long)(*text - '0');
  }
  return *text == '\0' ? value : 0;
}

/* Debug builds (--enable-debug) walk the heap every this many slow-path calls by default. */
#define DEBUG_CHECK_INTERVAL 256

static void read_options(void)
{
  init_options.print_stats_at_exit = env_number("PALLOC_STATS") != 0;
  init_options.check_interval = env_number("PALLOC_CHECK");
  init_options.check_free_sized = env_number("PALLOC_CHECK_FREE_SIZED") != 0;
  init_options.junk_on_free = env_number("PALLOC_JUNK") != 0;
  init_options.quarantine_blocks = env_number("PALLOC_QUARANTINE");
  if (init_options.quarantine_blocks > HARDEN_QUARANTINE_MAX)
    init_options.quarantine_blocks = HARDEN_QUARANTINE_MAX;
  init_options.canary = env_number("PALLOC_CANARY") != 0 && !vg_memcheck();
  init_options.guard = env_number("PALLOC_GUARD") != 0 && !vg_memcheck();
  const char *on_misuse = secure_getenv("PALLOC_ON_MISUSE");
  report_misuse_continues = on_misuse != NULL && strcmp(on_misuse, "continue") == 0;
  /* Under memcheck every call takes the slow path, where palloc describes its blocks (vg.h). */
  init_options.thread_caches = init_options.check_interval == 0 && !init_options.junk_on_free &&
                               init_options.quarantine_blocks == 0 && !init_options.canary &&
                               !vg_memcheck();
#ifdef PALLOC_DEBUG
  if (init_options.check_interval == 0)
    init_options.check_interval = DEBUG_CHECK_INTERVAL;
#endif
}

/* Fork. Our locks must be held across fork() so that the child inherits consistent heap
 * structures. glibc takes its own malloc's locks only after its stdio list lock, because a
 * thread holding a FILE lock may be waiting in malloc while another thread that holds the list
 * lock (fflush(NULL)) waits for that FILE lock (BZ 19431). pthread_atfork handlers run before
 * glibc takes the list lock, so we take it ourselves, first (it is recursive: glibc's own
 * acquisition after ours nests), then ours. In the parent we release our hold; in the child,
 * where glibc resets the list lock of a multithreaded parent but not of a single-threaded one,
 * we reset it too, which is right in both cases. Weak: other C libraries go without. */
extern void _IO_list_lock(void) __attribute__((weak));
extern void _IO_list_unlock(void) __attribute__((weak));
extern void _IO_list_resetlock(void) __attribute__((weak));

static bool stdio_list_lock_usable(void)
{
  return _IO_list_lock != NULL && _IO_list_unlock != NULL && _IO_list_resetlock != NULL;
}

static void fork_prepare(void)
{
  if (stdio_list_lock_usable())
    _IO_list_lock();
  vg_enter();
  tcache_fork_prepare();
  harden_fork_prepare();
  backend_fork_prepare();
  vg_leave();
}

static void fork_parent(void)
{
  vg_enter();
  backend_fork_parent();
  harden_fork_parent();
  tcache_fork_parent();
  vg_leave();
  if (stdio_list_lock_usable())
    _IO_list_unlock();
}

static void fork_child(void)
{
  vg_enter();
  backend_fork_child();
  harden_fork_child();
  tcache_fork_child();
  vg_leave();
  if (stdio_list_lock_usable())
    _IO_list_resetlock();
}

/* Register the fork handlers once. pthread_atfork may allocate: that nested call, from the
 * registering thread, goes on without waiting; any other thread waits until the handlers are
 * in place before it can take a lock of ours. */
static void fork_hooks_ensure(void)
{
  if (atomic_load_explicit(&fork_hooks_state, memory_order_acquire) == FORK_HOOKS_DONE ||
      registering_fork_hooks)
    return;
  int expected = FORK_HOOKS_NONE;
  if (atomic_compare_exchange_strong(&fork_hooks_state, &expected, FORK_HOOKS_REGISTERING)) {
    registering_fork_hooks = true;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    registering_fork_hooks = false;
    atomic_store_explicit(&fork_hooks_state, FORK_HOOKS_DONE, memory_order_release);
    return;
  }
  while (atomic_load_explicit(&fork_hooks_state, memory_order_acquire) != FORK_HOOKS_DONE)
    sched_yield();
}

/* Whether the calling thread is the process's main thread (its thread id is the pid). Both
 * through syscall(), which lies in the 64 KiB of libc text that palloc's mmap calls fault in
 * anyway: getpid() lies in another, and faulting it in cost every process 64 KiB of RSS. */
static bool on_main_thread(void)
{
  return syscall(SYS_gettid) == syscall(SYS_getpid);
}

static void initialise(void)
{
  tag_secret_init();
  if (backend_init() != 0)
    report_warning("backend initialisation failed; allocations will fail");
  read_options();
  tcache_init(init_options.thread_caches);
  /* Started from another thread (a dlopen in a thread): the main thread may fork without
   * ever calling palloc, so the handlers cannot wait for a second caller. */
  if (!on_main_thread())
    fork_hooks_ensure();
}

void init_slow(void)
{
  if (atomic_load_explicit(&init_state, memory_order_acquire) == INIT_RUNNING &&
      pthread_equal(init_thread, pthread_self()))
    return;
  lock_acquire(&init_lock);
  if (atomic_load_explicit(&init_state, memory_order_relaxed) == INIT_NONE) {
    init_thread = pthread_self();
    atomic_store_explicit(&init_state, INIT_RUNNING, memory_order_release);
    initialise();
    atomic_store_explicit(&init_state, INIT_DONE, memory_order_release);
  }
  lock_release(&init_lock);
}

void init_thread_slow(void)
{
  if (atomic_load_explicit(&init_state, memory_order_acquire) != INIT_DONE) {
    init_slow();
    if (atomic_load_explicit(&init_state, memory_order_acquire) != INIT_DONE)
      return; /* a nested call while this thread initialises */
  }
  if (!pthread_equal(init_thread, pthread_self()))
    fork_hooks_ensure();
  init_thread_ready = true;
}

void init_count_call_for_check(void)
{
  unsigned long interval = init_options.check_interval;
  if (interval == 0)
    return;
  unsigned long n = atomic_fetch_add_explicit(&calls_since_check, 1, memory_order_relaxed) + 1;
  if (n % interval == 0 && palloc_check_heap() != 0)
    report_misuse("heap corruption found by PALLOC_CHECK", NULL, "palloc_check_heap");
}

__attribute__((constructor)) static void init_at_load(void)
{
  init_ensure();
}

__attribute__((destructor)) static void report_at_exit(void)
{
  stats_print_at_exit_if_asked();
}
