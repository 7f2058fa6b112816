/* trace.h: where the front end reports allocation events to the tracer.
 *
 * Every API entry point reports its event through one TRACE_* macro here. Without tracing
 * compiled in (the tracing issue adds LTTng-UST), the macros compile to nothing.
 */
#ifndef PALLOC_TRACE_H
#define PALLOC_TRACE_H

#define TRACE_ALLOC(fn, ptr, size, usable)              ((void)0)
#define TRACE_CALLOC(ptr, nmemb, size, usable)          ((void)0)
#define TRACE_REALLOC(fn, ptr, in_ptr, size, usable)    ((void)0)
#define TRACE_ALIGNED(fn, ptr, alignment, size, usable) ((void)0)
#define TRACE_FREE(fn, ptr, usable)                     ((void)0)

#endif /* PALLOC_TRACE_H */
