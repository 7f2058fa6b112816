/* event.h: one decoded trace event, the only thing the model sees of babeltrace2.
 *
 * trace-read.c fills a struct pt_event per event message; fields that an event does not carry
 * are 0 (strings NULL). Timestamps are nanoseconds from the clock's origin. Requested sizes
 * are already multiplied out (calloc, reallocarray: nmemb * size, saturated).
 */
#ifndef PALLOC_TRACE_EVENT_H
#define PALLOC_TRACE_EVENT_H

#include <stdbool.h>
#include <stdint.h>

/* The allocation API, in the order of the calls table of the reports. */
enum pt_function {
  PT_FN_MALLOC,
  PT_FN_CALLOC,
  PT_FN_REALLOC,
  PT_FN_REALLOCARRAY,
  PT_FN_FREE,
  PT_FN_FREE_SIZED,
  PT_FN_FREE_ALIGNED_SIZED,
  PT_FN_POSIX_MEMALIGN,
  PT_FN_ALIGNED_ALLOC,
  PT_FN_MEMALIGN,
  PT_FN_VALLOC,
  PT_FN_PVALLOC,
  PT_FN_COUNT
};

enum pt_kind {
  PT_EV_OTHER,      /* an event palloc-trace does not use */
  PT_EV_CALL,       /* palloc:<function> */
  PT_EV_HEAP_GROW,  /* palloc:heap_grow */
  PT_EV_HEAP_SHRINK,/* palloc:heap_shrink */
  PT_EV_FLUSH,      /* palloc:tcache_flush */
  PT_EV_MODULE,     /* lttng_ust_statedump:bin_info, lttng_ust_lib:load: an object mapped */
  PT_EV_PROCNAME,   /* lttng_ust_statedump:procname: the process's name (procname) */
};

struct pt_event {
  enum pt_kind kind;
  enum pt_function function; /* PT_EV_CALL */
  uint64_t ts;               /* ns from the clock's origin */
  int64_t vpid, vtid;        /* contexts; -1 when the trace lacks them */
  const char *procname;      /* context (or PT_EV_PROCNAME's payload), NULL when absent;
                                valid during the callback only */
  uint64_t ptr;              /* result block (0: none or failed), or the block freed */
  uint64_t in_ptr;           /* realloc, reallocarray: the block passed in */
  uint64_t size;             /* requested bytes */
  uint64_t usable;           /* usable size of ptr's block (of the block freed, for frees) */
  uint64_t caller;           /* return address in the caller */
  uint64_t addr, len;        /* heap events: the range */
  int64_t how;               /* heap events: PALLOC_HEAP_* */
  uint64_t baddr, memsz;     /* module events: where the object lies */
  bool is_pic;               /* module events: position-independent (relocated) object */
  const char *path;          /* module events: the object's file; callback only */
};

static inline bool pt_function_is_free(enum pt_function fn)
{
  return fn == PT_FN_FREE || fn == PT_FN_FREE_SIZED || fn == PT_FN_FREE_ALIGNED_SIZED;
}

static inline bool pt_function_is_realloc(enum pt_function fn)
{
  return fn == PT_FN_REALLOC || fn == PT_FN_REALLOCARRAY;
}

extern const char *const pt_function_names[PT_FN_COUNT];

#endif
