/* probe.c: libpalloc-lttng.so, the hooks that turn palloc's events into palloc:* tracepoints.
 *
 * Preloaded next to a palloc library (LD_PRELOAD="libpalloc-lttng.so libpalloc.so"), or into
 * a program linked with palloc, its constructor finds palloc_trace_register() in the process
 * and installs the hooks below. palloc itself never links with LTTng: a process that does not
 * load this library loads nothing of LTTng and pays one test of a pointer per call.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  int error = palloc_register(&hooks);
  if (error != 0) {
    fprintf(stderr, "libpalloc-lttng: palloc_trace_register: %s\n", strerror(error));
    palloc_register = NULL;
    return;
  }
  tell_lttng_of_forks();
}

/* Before liblttng-ust's destructors: palloc stops calling into LTTng. */
__attribute__((destructor)) static void palloc_lttng_stop(void)
{
  if (palloc_register != NULL)
    palloc_register(NULL);
}
