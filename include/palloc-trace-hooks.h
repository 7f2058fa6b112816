/* palloc-trace-hooks.h: how a tracer receives palloc's allocation events (hooks version 1).
 *
 * palloc's libraries contain no tracer. They export one function, palloc_trace_register(),
 * through which a tracer installs a table of hooks; until one does, each entry point tests one
 * pointer and goes on. libpalloc-lttng.so (built with LTTng-UST) is such a tracer: it installs
 * hooks that fire the palloc:* tracepoints. Anything else may use the same interface.
 *
 * What palloc guarantees to the hooks:
 *   - call() runs once per call of malloc, calloc, realloc, reallocarray, free, free_sized,
 *     free_aligned_sized, posix_memalign, aligned_alloc, memalign, valloc and pvalloc, in the
 *     calling thread: after the call for the functions that allocate (so the pointer is
 *     valid), before it for the free family (so no other thread can be handed the block
 *     before its free is reported).
 *   - heap() runs when palloc takes memory from the OS or gives it back, and flush() when a
 *     thread cache sends blocks back to the shared heap, in the thread that does it.
 *   - A hook may allocate: calls made from inside a hook are served normally and not
 *     reported, and no hook runs inside another (a per-thread guard).
 *   - No hook runs for a call made by the dynamic loader itself (its return address lies in
 *     ld.so), nor for what such a call does to the heap: the loader allocates while it updates
 *     a thread's TLS, and a hook that touches global-dynamic TLS would re-enter it.
 *   - errno as seen by the program is what the call left, whatever the hook does to it.
 * The table must stay valid and its hooks callable until it is unregistered.
 */
#ifndef PALLOC_TRACE_HOOKS_H
#define PALLOC_TRACE_HOOKS_H

#include "palloc.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PALLOC_TRACE_HOOKS_VERSION 1

/* One call of an API function. Members the function does not have are 0. */
struct palloc_trace_call {
  enum palloc_function function; /* which API function */
  void *ptr;        /* the pointer returned (NULL when the call failed), or the one freed */
  void *in_ptr;     /* realloc, reallocarray: the old pointer */
  size_t size;      /* bytes asked for (for calloc and reallocarray: the size of one member) */
  size_t nmemb;     /* calloc, reallocarray: the number of members */
  size_t alignment; /* posix_memalign, aligned_alloc, memalign, valloc, pvalloc, and
                       free_aligned_sized: the alignment as passed */
  size_t usable;    /* the block's usable size (malloc_usable_size); 0 without a block */
  int result;       /* posix_memalign: its return value (0, EINVAL or ENOMEM) */
  void *caller;     /* the return address in the program that called the function */
};

/* How palloc took memory from the OS or gave it back. */
enum palloc_heap_how {
  PALLOC_HEAP_SBRK = 0,    /* the program break moved (up: grow, down: shrink) */
  PALLOC_HEAP_MMAP = 1,    /* a new anonymous mapping (grow) */
  PALLOC_HEAP_MUNMAP = 2,  /* a mapping or part of one given back (shrink) */
  PALLOC_HEAP_MADVISE = 3, /* pages dropped with MADV_DONTNEED, still mapped (shrink) */
  PALLOC_HEAP_MREMAP = 4   /* a mapping moved or resized: a shrink of the old range, then a
                              grow of the new one */
};

/* Memory taken from the OS (grow = 1) or given back (grow = 0). */
struct palloc_trace_heap {
  int grow;                 /* 1: [addr, addr+len) was obtained; 0: it was given back */
  enum palloc_heap_how how; /* the system call */
  void *addr;               /* start of the range */
  size_t len;               /* bytes in the range */
  void *caller;             /* the return address of the API call that caused it, or NULL */
};

/* Why a thread cache sent blocks back. */
enum palloc_flush_why {
  PALLOC_FLUSH_FULL = 0, /* a free found its bin full: the older half goes back */
  PALLOC_FLUSH_ALL = 1   /* the whole cache goes back (thread exit, malloc_trim, fork) */
};

/* A thread cache sent count blocks of one size class back to the shared heap. */
struct palloc_trace_flush {
  unsigned size_class;      /* the class index */
  size_t block_size;        /* bytes per block of that class */
  size_t count;             /* blocks sent back */
  enum palloc_flush_why why;
  void *caller;             /* the return address of the API call that caused it, or NULL */
};

struct palloc_trace_hooks {
  uint32_t size;     /* sizeof(struct palloc_trace_hooks) as the tracer was compiled */
  uint32_t version;  /* PALLOC_TRACE_HOOKS_VERSION as the tracer was compiled */
  void (*call)(const struct palloc_trace_call *call);    /* may be NULL */
  void (*heap)(const struct palloc_trace_heap *heap);    /* may be NULL */
  void (*flush)(const struct palloc_trace_flush *flush); /* may be NULL */
  /* Whether the tracer wants each API function's calls now: palloc reports a call of
   * function f only while *call_wanted[f] is nonzero (a NULL entry: always). A tracer that
   * knows when its events are switched on and off (LTTng's tracepoint state) saves palloc
   * the whole reporting path while they are off. */
  const int *call_wanted[PALLOC_FN_COUNT];
};

/* Install hooks (or remove them with NULL). Returns 0; EINVAL when the table's size or
 * version is not one this palloc knows; EBUSY when another table is installed. Safe to call
 * before palloc has initialised and from any thread; a hook may still be running in another
 * thread for a moment after its table was removed. */
int palloc_trace_register(const struct palloc_trace_hooks *hooks);

#ifdef __cplusplus
}
#endif

#endif /* PALLOC_TRACE_HOOKS_H */
