/* probe.c: libpalloc-lttng.so, the hooks that turn palloc's events into palloc:* tracepoints.
 *
 * Preloaded next to a palloc library (LD_PRELOAD="libpalloc-lttng.so libpalloc.so"), or into
 * a program linked with palloc, it finds palloc_trace_register() in the process and installs
 * the hooks below while a session has some palloc:* event enabled. palloc itself never links
 * with LTTng: a process that does not load this library, or whose palloc events are not
 * enabled, pays one compare and one branch per call.
 *
 * Environment:
 *   PALLOC_TRACE_STACK=N  record up to N frames (at most 16) of the call stack with each API
 *                         event, starting at the caller (glibc's backtrace(); costs several
 *                         microseconds per event). Default 0: the field is empty.
 *
 * fork: LTTng-UST must be told of a fork (liblttng-ust-fork.so wraps fork() for that); a child
 * forked while one of its threads held its lock otherwise hangs at exit. When that library is
 * not preloaded, this one tells LTTng-UST from pthread_atfork handlers instead, registered
 * after palloc's own, so that LTTng's child handler runs when palloc is usable again.
 */
#include "config.h"

#include "palloc-tp.h"
#include "palloc-trace-hooks.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <lttng/ust-fork.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int register_fn(const struct palloc_trace_hooks *hooks);

static register_fn *palloc_register;
static unsigned stack_depth;

/* The caller and its callers, from glibc's backtrace(): frames before the caller are ours. */
static void capture_stack(struct palloc_tp_stack *stack, void *caller)
{
  stack->depth = 0;
  if (stack_depth == 0)
    return;
  void *frames[PALLOC_TP_STACK_MAX + 8];
  int count = backtrace(frames, (int)stack_depth + 8);
  int first = 0;
  while (first < count && frames[first] != caller)
    first++;
  if (first == count)
    first = 0; /* caller not among the frames (a tail call): keep them all */
  for (int i = first; i < count && stack->depth < stack_depth; i++)
    stack->frames[stack->depth++] = (uint64_t)(uintptr_t)frames[i];
}

static void on_call(const struct palloc_trace_call *call)
{
  struct palloc_tp_stack stack;
  void *caller = call->caller;
  capture_stack(&stack, caller);
  switch (call->function) {
  case PALLOC_FN_MALLOC: lttng_ust_tracepoint(palloc, malloc, call, caller, &stack); break;
  case PALLOC_FN_CALLOC: lttng_ust_tracepoint(palloc, calloc, call, caller, &stack); break;
  case PALLOC_FN_REALLOC: lttng_ust_tracepoint(palloc, realloc, call, caller, &stack); break;
  case PALLOC_FN_REALLOCARRAY:
    lttng_ust_tracepoint(palloc, reallocarray, call, caller, &stack);
    break;
  case PALLOC_FN_FREE: lttng_ust_tracepoint(palloc, free, call, caller, &stack); break;
  case PALLOC_FN_FREE_SIZED: lttng_ust_tracepoint(palloc, free_sized, call, caller, &stack); break;
  case PALLOC_FN_FREE_ALIGNED_SIZED:
    lttng_ust_tracepoint(palloc, free_aligned_sized, call, caller, &stack);
    break;
  case PALLOC_FN_POSIX_MEMALIGN:
    lttng_ust_tracepoint(palloc, posix_memalign, call, caller, &stack);
    break;
  case PALLOC_FN_ALIGNED_ALLOC:
    lttng_ust_tracepoint(palloc, aligned_alloc, call, caller, &stack);
    break;
  case PALLOC_FN_MEMALIGN: lttng_ust_tracepoint(palloc, memalign, call, caller, &stack); break;
  case PALLOC_FN_VALLOC: lttng_ust_tracepoint(palloc, valloc, call, caller, &stack); break;
  case PALLOC_FN_PVALLOC: lttng_ust_tracepoint(palloc, pvalloc, call, caller, &stack); break;
  default: break;
  }
}

static void on_heap(const struct palloc_trace_heap *heap)
{
  if (heap->grow)
    lttng_ust_tracepoint(palloc, heap_grow, heap, heap->caller);
  else
    lttng_ust_tracepoint(palloc, heap_shrink, heap, heap->caller);
}

static void on_flush(const struct palloc_trace_flush *flush)
{
  lttng_ust_tracepoint(palloc, tcache_flush, flush, flush->caller);
}

/* call_wanted: each event's tracepoint state, which LTTng-UST sets while a session has the
 * event enabled; until then palloc does not even enter its reporting path. */
static const struct palloc_trace_hooks hooks = {
  .size = sizeof hooks,
  .version = PALLOC_TRACE_HOOKS_VERSION,
  .call = on_call,
  .heap = on_heap,
  .flush = on_flush,
  .call_wanted = {
    [PALLOC_FN_MALLOC] = &lttng_ust_tracepoint_palloc___malloc.state,
    [PALLOC_FN_CALLOC] = &lttng_ust_tracepoint_palloc___calloc.state,
    [PALLOC_FN_REALLOC] = &lttng_ust_tracepoint_palloc___realloc.state,
    [PALLOC_FN_REALLOCARRAY] = &lttng_ust_tracepoint_palloc___reallocarray.state,
    [PALLOC_FN_FREE] = &lttng_ust_tracepoint_palloc___free.state,
    [PALLOC_FN_FREE_SIZED] = &lttng_ust_tracepoint_palloc___free_sized.state,
    [PALLOC_FN_FREE_ALIGNED_SIZED] = &lttng_ust_tracepoint_palloc___free_aligned_sized.state,
    [PALLOC_FN_POSIX_MEMALIGN] = &lttng_ust_tracepoint_palloc___posix_memalign.state,
    [PALLOC_FN_ALIGNED_ALLOC] = &lttng_ust_tracepoint_palloc___aligned_alloc.state,
    [PALLOC_FN_MEMALIGN] = &lttng_ust_tracepoint_palloc___memalign.state,
    [PALLOC_FN_VALLOC] = &lttng_ust_tracepoint_palloc___valloc.state,
    [PALLOC_FN_PVALLOC] = &lttng_ust_tracepoint_palloc___pvalloc.state,
  },
};

static void read_stack_depth(void)
{
  const char *text = getenv("PALLOC_TRACE_STACK");
  if (text == NULL)
    return;
  unsigned long depth = strtoul(text, NULL, 10);
  stack_depth = depth > PALLOC_TP_STACK_MAX ? PALLOC_TP_STACK_MAX : (unsigned)depth;
  if (stack_depth != 0) {
    void *frames[2];
    backtrace(frames, 2); /* its first call loads libgcc_s and allocates: do it now */
  }
}

/* ---- Hooks installed only while an event is enabled ---------------------------------------
 *
 * While palloc has no hooks, each of its calls costs one compare and one branch. So the hooks
 * are installed only while a session has some palloc:* event enabled: at start (a session
 * that is already active enables the events before this library's constructor runs, through
 * LTTng-UST's registration), then as a watcher thread finds the events' state changed (it
 * looks every WATCH_PERIOD_MS; events enabled later are recorded from then on), and removed
 * a second after the last one was disabled. */

#define WATCH_PERIOD_MS 20
#define REMOVE_AFTER_POLLS 50

static struct lttng_ust_tracepoint *const watched[] = {
  &lttng_ust_tracepoint_palloc___malloc, &lttng_ust_tracepoint_palloc___calloc,
  &lttng_ust_tracepoint_palloc___realloc, &lttng_ust_tracepoint_palloc___reallocarray,
  &lttng_ust_tracepoint_palloc___free, &lttng_ust_tracepoint_palloc___free_sized,
  &lttng_ust_tracepoint_palloc___free_aligned_sized,
  &lttng_ust_tracepoint_palloc___posix_memalign, &lttng_ust_tracepoint_palloc___aligned_alloc,
  &lttng_ust_tracepoint_palloc___memalign, &lttng_ust_tracepoint_palloc___valloc,
  &lttng_ust_tracepoint_palloc___pvalloc, &lttng_ust_tracepoint_palloc___heap_grow,
  &lttng_ust_tracepoint_palloc___heap_shrink, &lttng_ust_tracepoint_palloc___tcache_flush,
};

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static bool installed; /* palloc has our hooks (install_lock) */
static bool stopping;  /* the process is exiting: never install again (install_lock) */

static bool any_event_enabled(void)
{
  for (size_t i = 0; i < sizeof watched / sizeof watched[0]; i++)
    if (__atomic_load_n(&watched[i]->state, __ATOMIC_RELAXED) != 0)
      return true;
  return false;
}

/* Install the hooks when an event is enabled; remove them once none has been for
 * REMOVE_AFTER_POLLS looks in a row (LTTng-UST disables every event for a moment while it
 * re-registers a forked child). False when palloc refuses them. */
static bool sync_hooks(void)
{
  static unsigned idle_polls;
  bool accepted = true;
  pthread_mutex_lock(&install_lock);
  bool wanted = !stopping && any_event_enabled();
  idle_polls = wanted ? 0 : idle_polls + 1;
  if (wanted != installed && (wanted || stopping || idle_polls >= REMOVE_AFTER_POLLS)) {
    int error = palloc_register(wanted ? &hooks : NULL);
    if (error == 0) {
      installed = wanted;
    } else {
      fprintf(stderr, "libpalloc-lttng: palloc_trace_register: %s\n", strerror(error));
      accepted = false;
    }
  }
  pthread_mutex_unlock(&install_lock);
  return accepted;
}

static void *watch_events(void *unused)
{
  (void)unused;
  const struct timespec period = { 0, WATCH_PERIOD_MS * 1000000L };
  while (sync_hooks())
    nanosleep(&period, NULL);
  return NULL;
}

/* The watcher takes no signals meant for the program. */
static void start_watcher(void)
{
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pthread_t thread;
  if (pthread_create(&thread, NULL, watch_events, NULL) == 0) {
    pthread_setname_np(thread, "palloc-trace");
    pthread_detach(thread);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void watch_fork_prepare(void) { pthread_mutex_lock(&install_lock); }
static void watch_fork_parent(void) { pthread_mutex_unlock(&install_lock); }
static void watch_fork_child(void)
{
  pthread_mutex_unlock(&install_lock);
  start_watcher(); /* the parent's did not survive the fork */
}

/* ---- fork, when liblttng-ust-fork.so is not there to wrap it ------------------------------- */

static __thread sigset_t fork_sigset;

static void fork_prepare(void) { lttng_ust_before_fork(&fork_sigset); }
static void fork_parent(void) { lttng_ust_after_fork_parent(&fork_sigset); }
static void fork_child(void) { lttng_ust_after_fork_child(&fork_sigset); }

static void tell_lttng_of_forks(void)
{
  void *fork_wrapper = dlopen("liblttng-ust-fork.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (fork_wrapper != NULL) {
    dlclose(fork_wrapper); /* it calls the same three functions around fork() */
    return;
  }
  if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0)
    fputs("libpalloc-lttng: pthread_atfork failed: forked children may hang\n", stderr);
}

/* ---- Start and stop ---------------------------------------------------------------------- */

/* After liblttng-ust's constructors (it is a dependency) and this library's probe
 * registration (palloc-tp.c comes first in the link). */
__attribute__((constructor)) static void palloc_lttng_start(void)
{
  read_stack_depth();
  palloc_register = (register_fn *)dlsym(RTLD_DEFAULT, "palloc_trace_register");
  if (palloc_register == NULL)
    return; /* no palloc here (say, `timeout` or `env` in front of the program): stay quiet */
  int error = palloc_register(NULL); /* ENOSYS from a palloc built with --disable-lttng */
  if (error != 0 || !sync_hooks()) {
    if (error != 0)
      fprintf(stderr, "libpalloc-lttng: palloc_trace_register: %s\n", strerror(error));
    palloc_register = NULL;
    return;
  }
  tell_lttng_of_forks();
  pthread_atfork(watch_fork_prepare, watch_fork_parent, watch_fork_child);
  start_watcher();
}

/* Before liblttng-ust's destructors: palloc stops calling into LTTng. */
__attribute__((destructor)) static void palloc_lttng_stop(void)
{
  if (palloc_register == NULL)
    return;
  pthread_mutex_lock(&install_lock);
  stopping = true;
  palloc_register(NULL);
  installed = false;
  pthread_mutex_unlock(&install_lock);
}
