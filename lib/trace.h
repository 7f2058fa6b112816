/* trace.h: where the front end and the backends report allocation events to a tracer.
 *
 * palloc holds no tracer. A tracer (libpalloc-lttng.so) installs a table of hooks with
 * palloc_trace_register() (include/palloc-trace-hooks.h); until then every call site below
 * costs one load of trace_hooks and one branch. Configured with --disable-lttng, every call
 * site compiles to nothing.
 *
 * Call sites:
 *   TRACE_ENTRY(fn, args...)       first statement of each exported API function fn returning
 *   TRACE_ENTRY_VOID(fn, args...)  a value (or void): when hooks are installed, the tracer
 *                                  wants fn's calls (call_wanted) and the thread is not
 *                                  already inside a traced call or a hook, the whole call is
 *                                  handed to trace_fn(args..., caller), its traced twin below,
 *                                  which calls fn again and reports it.
 *   TRACE_HEAP(grow, how, addr, len)  backends/os.c, at each kernel memory call.
 *   TRACE_FLUSH(cls, block_size, count, why)  lib/tcache.c, when a cache sends blocks back.
 *
 * Per-thread state (initial-exec TLS, struct trace_thread):
 *
 *     IDLE --entry, caller in the program--> IN_CALL ----hook----> IN_HOOK --return--> IN_CALL
 *       \--entry, caller in ld.so---------> IN_LOADER_CALL (nothing reported)
 *     IN_CALL / IN_LOADER_CALL --twin returns--> IDLE;   IN_QUIET around fork()
 *
 * Only in IDLE does an entry point divert to its twin, so the twin's own call of fn, and every
 * allocation a hook makes, is served untraced (the guard against recursion). Heap events
 * happen with backend locks held, where a hook must not run (it may allocate): they are queued
 * in the thread's state and handed to the hook at the next point where no lock is held and
 * the thread is not in a loader call (a twin's report, a cache flush, the next traced call).
 */
#ifndef PALLOC_TRACE_H
#define PALLOC_TRACE_H

#include "backend.h"
#include "palloc-trace-hooks.h"
#include "util/bits.h"

#ifndef PALLOC_HAVE_LTTNG

#define TRACE_ENTRY(fn, ...)                     ((void)0)
#define TRACE_ENTRY_VOID(fn, ...)                ((void)0)
#define TRACE_HEAP(grow, how, addr, len)         ((void)0)
#define TRACE_FLUSH(cls, block_size, count, why) ((void)0)

#else /* PALLOC_HAVE_LTTNG */

#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

enum trace_mode { TRACE_IDLE, TRACE_IN_CALL, TRACE_IN_LOADER_CALL, TRACE_IN_HOOK, TRACE_IN_QUIET };

#define TRACE_PENDING_MAX 16

struct trace_thread {
  unsigned char mode;          /* enum trace_mode */
  unsigned char pending_count; /* heap events queued in pending[] */
  void *caller;                /* the traced call's return address, while IN_CALL */
  uint64_t pending_lost;       /* heap events dropped because pending[] was full */
  struct palloc_trace_heap pending[TRACE_PENDING_MAX];
};

extern __thread struct trace_thread trace_thread __attribute__((tls_model("initial-exec")));
/* Written with __atomic builtins (trace.c); read here with a plain load, which x86-64 makes
 * atomic for an aligned pointer, so that the test is one cmp with memory and one branch (an
 * atomic load would cost a third instruction). The cold path re-reads it with acquire. */
extern const struct palloc_trace_hooks *trace_hooks __attribute__((visibility("hidden")));

static inline bool trace_hooks_installed(void)
{
  return unlikely(trace_hooks != NULL);
}

/* Whether this thread is to take the traced path for a call of fn now (hooks are
 * installed): the tracer wants fn's calls, or heap events wait in the queue (the traced path
 * hands them over). */
static inline bool trace_call_wanted(enum palloc_function fn)
{
  if (trace_thread.mode != TRACE_IDLE)
    return false;
  if (trace_thread.pending_count != 0)
    return true;
  /* A second, atomic, load: reusing the first would cost the fast path a register move. */
  const struct palloc_trace_hooks *hooks = __atomic_load_n(&trace_hooks, __ATOMIC_ACQUIRE);
  if (hooks == NULL)
    return false;
  const int *wanted = hooks->call_wanted[fn];
  return wanted == NULL || __atomic_load_n(wanted, __ATOMIC_RELAXED) != 0;
}

#define TRACE_ENTRY(fn, ...)                                                                 \
  do {                                                                                       \
    if (trace_hooks_installed() && trace_call_wanted(TRACE_FN_##fn))                         \
      return trace_##fn(__VA_ARGS__, __builtin_return_address(0));                           \
  } while (0)

#define TRACE_ENTRY_VOID(fn, ...)                                                            \
  do {                                                                                       \
    if (trace_hooks_installed() && trace_call_wanted(TRACE_FN_##fn)) {                       \
      trace_##fn(__VA_ARGS__, __builtin_return_address(0));                                  \
      return;                                                                                \
    }                                                                                        \
  } while (0)

#define TRACE_FN_malloc PALLOC_FN_MALLOC
#define TRACE_FN_calloc PALLOC_FN_CALLOC
#define TRACE_FN_realloc PALLOC_FN_REALLOC
#define TRACE_FN_reallocarray PALLOC_FN_REALLOCARRAY
#define TRACE_FN_free PALLOC_FN_FREE
#define TRACE_FN_free_sized PALLOC_FN_FREE_SIZED
#define TRACE_FN_free_aligned_sized PALLOC_FN_FREE_ALIGNED_SIZED
#define TRACE_FN_posix_memalign PALLOC_FN_POSIX_MEMALIGN
#define TRACE_FN_aligned_alloc PALLOC_FN_ALIGNED_ALLOC
#define TRACE_FN_memalign PALLOC_FN_MEMALIGN
#define TRACE_FN_valloc PALLOC_FN_VALLOC
#define TRACE_FN_pvalloc PALLOC_FN_PVALLOC

/* backends/os.c is also linked into backend unit tests without the front end: there the weak
 * reference to trace_heap_event is NULL. Next to a system call, the call costs nothing. */
#define TRACE_HEAP(grow, how, addr, len)                                                     \
  do {                                                                                       \
    if (trace_heap_event != NULL)                                                            \
      trace_heap_event((grow), (how), (addr), (len));                                        \
  } while (0)

#define TRACE_FLUSH(cls, block_size, count, why)                                             \
  do {                                                                                       \
    if (trace_hooks_installed())                                                             \
      trace_flush_event((cls), (block_size), (count), (why));                                \
  } while (0)

/* lib/trace.c; all cold. */
void trace_heap_event(int grow, enum palloc_heap_how how, void *addr, size_t len)
    __attribute__((weak));
void trace_flush_event(unsigned cls, size_t block_size, size_t count, enum palloc_flush_why why);
/* Enter IN_CALL (true: the call is to be reported) or IN_LOADER_CALL (false). */
bool trace_call_begin(void *caller);
/* Run the call hook (and the queued heap events before it). */
void trace_call_report(const struct palloc_trace_call *call);
/* Back to IDLE, handing over the heap events the call queued. */
void trace_call_finish(void);
/* The usable size of a block about to be freed; 0 when it is not an in-use block of ours.
 * Reads a tag only where free's fast path would (backend_tag_readable), else asks
 * backend_owns (big blocks mapped alone); free itself reports a bad pointer. */
static inline size_t trace_usable_before_free(void *payload)
{
  if (payload == NULL || ((uintptr_t)payload & (BACKEND_ALIGNMENT - 1)) != 0)
    return 0;
  if (!backend_tag_readable(payload) && !backend_owns(payload))
    return 0;
  uint64_t tag = *block_tag(payload);
  if ((tag & (TAG_IN_USE | TAG_RESERVED)) != TAG_IN_USE || tag_size(tag) < BACKEND_MIN_BLOCK)
    return 0;
  return tag_size(tag) - BACKEND_BLOCK_OVERHEAD;
}

/* ---- The traced twins, used by lib/api.c only ---------------------------------------------
 * Each calls its API function again (the thread is no longer IDLE, so that call is served
 * untraced) and reports it. They are static so that, compiled into api.c, they call the
 * library's own functions directly, never another malloc found through the PLT. */
#define TRACE_TWIN static __attribute__((noinline, cold, unused))

static inline void trace_after_alloc(bool report, struct palloc_trace_call *call)
{
  if (report) {
    call->usable = call->ptr != NULL ? block_usable_size(call->ptr) : 0;
    trace_call_report(call);
  }
  trace_call_finish();
}

static inline void trace_before_free(bool report, struct palloc_trace_call *call)
{
  if (report) {
    call->usable = trace_usable_before_free(call->ptr);
    trace_call_report(call);
  }
}

#define TRACE_CALL_INIT(fn) { .function = (fn), .caller = caller }

TRACE_TWIN void *trace_malloc(size_t n, void *caller)
{
  struct palloc_trace_call call = TRACE_CALL_INIT(PALLOC_FN_MALLOC);
  call.size = n;
  bool report = trace_call_begin(caller);
  call.ptr = malloc(n);
  trace_after_alloc(report, &call);
  return call.ptr;
}

TRACE_TWIN void *trace_calloc(size_t nmemb, size_t size, void *caller)
{
  struct palloc_trace_call call = TRACE_CALL_INIT(PALLOC_FN_CALLOC);
  call.nmemb = nmemb;
  call.size = size;
  bool report = trace_call_begin(caller);
  call.ptr = calloc(nmemb, size);
  trace_after_alloc(report, &call);
  return call.ptr;
}

TRACE_TWIN void *trace_realloc(void *in_ptr, size_t n, void *caller)
{
  struct palloc_trace_call call = TRACE_CALL_INIT(PALLOC_FN_REALLOC);
  call.in_ptr = in_ptr;
  call.size = n;
  bool report = trace_call_begin(caller);
  call.ptr = realloc(in_ptr, n);
  trace_after_alloc(report, &call);
  return call.ptr;
}

TRACE_TWIN void *trace_reallocarray(void *in_ptr, size_t nmemb, size_t size, void *caller)
{
  struct palloc_trace_call call = TRACE_CALL_INIT(PALLOC_FN_REALLOCARRAY);
  call.in_ptr = in_ptr;
  call.nmemb = nmemb;
  call.size = size;
  bool report = trace_call_begin(caller);
  call.ptr = reallocarray(in_ptr, nmemb, size);
  trace_after_alloc(report, &call);
  return call.ptr;
}

TRACE_TWIN void trace_free(void *payload, void *caller)
{
  struct palloc_trace_call call = TRACE_CALL_INIT(PALLOC_FN_FREE);
  call.ptr = payload;
  trace_before_free(trace_call_begin(caller), &call);
  free(payload);
  trace_call_finish();
}

TRACE_TWIN void trace_free_sized(void *payload, size_t size, void *caller)
{
  struct palloc_trace_call call = TRACE_CALL_INIT(PALLOC_FN_FREE_SIZED);
  call.ptr = payload;
  call.size = size;
  trace_before_free(trace_call_begin(caller), &call);
  free_sized(payload, size);
  trace_call_finish();
}

TRACE_TWIN void trace_free_aligned_sized(void *payload, size_t alignment, size_t size,
                                         void *caller)
{
  struct palloc_trace_call call = TRACE_CALL_INIT(PALLOC_FN_FREE_ALIGNED_SIZED);
  call.ptr = payload;
  call.alignment = alignment;
  call.size = size;
  trace_before_free(trace_call_begin(caller), &call);
  free_aligned_sized(payload, alignment, size);
  trace_call_finish();
}

TRACE_TWIN int trace_posix_memalign(void **memptr, size_t alignment, size_t n, void *caller)
{
  struct palloc_trace_call call = TRACE_CALL_INIT(PALLOC_FN_POSIX_MEMALIGN);
  call.alignment = alignment;
  call.size = n;
  bool report = trace_call_begin(caller);
  void *payload = NULL;
  call.result = posix_memalign(&payload, alignment, n);
  if (call.result == 0) {
    *memptr = payload;
    call.ptr = payload;
  }
  trace_after_alloc(report, &call);
  return call.result;
}

#define TRACE_ALIGNED_TWIN(fn, FN)                                                           \
  TRACE_TWIN void *trace_##fn(size_t alignment, size_t n, void *caller)                      \
  {                                                                                          \
    struct palloc_trace_call call = TRACE_CALL_INIT(FN);                                     \
    call.alignment = alignment;                                                              \
    call.size = n;                                                                           \
    bool report = trace_call_begin(caller);                                                  \
    call.ptr = fn(alignment, n);                                                             \
    trace_after_alloc(report, &call);                                                        \
    return call.ptr;                                                                         \
  }
TRACE_ALIGNED_TWIN(aligned_alloc, PALLOC_FN_ALIGNED_ALLOC)
TRACE_ALIGNED_TWIN(memalign, PALLOC_FN_MEMALIGN)

#define TRACE_PAGE_TWIN(fn, FN)                                                              \
  TRACE_TWIN void *trace_##fn(size_t n, void *caller)                                        \
  {                                                                                          \
    struct palloc_trace_call call = TRACE_CALL_INIT(FN);                                     \
    call.size = n;                                                                           \
    call.alignment = (size_t)sysconf(_SC_PAGESIZE);                                          \
    bool report = trace_call_begin(caller);                                                  \
    call.ptr = fn(n);                                                                        \
    trace_after_alloc(report, &call);                                                        \
    return call.ptr;                                                                         \
  }
TRACE_PAGE_TWIN(valloc, PALLOC_FN_VALLOC)
TRACE_PAGE_TWIN(pvalloc, PALLOC_FN_PVALLOC)

#endif /* PALLOC_HAVE_LTTNG */

#endif /* PALLOC_TRACE_H */
