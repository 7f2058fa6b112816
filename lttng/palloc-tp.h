/* palloc-tp.h: the palloc LTTng-UST tracepoint provider (events palloc:*).
 *
 * One event per API function, named after it, with the field names of lttng_ust_libc:*
 * where they overlap; every one also carries usable (the block's usable size), caller (the
 * return address in the program, also fed to the ip context, see palloc-tp.c) and stack (the
 * caller and its callers, empty unless PALLOC_TRACE_STACK asks for frames). Failed calls have
 * ptr 0. Then the heap events (heap_grow, heap_shrink) and the thread-cache flush event.
 * README.md ("Tracing") says what each event means.
 */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER palloc

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "palloc-tp.h"

#if !defined(PALLOC_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define PALLOC_TP_H

#include <lttng/tracepoint.h>
#include <stdint.h>

#include "palloc-trace-hooks.h"

#ifndef PALLOC_TP_TYPES
#define PALLOC_TP_TYPES
#define PALLOC_TP_STACK_MAX 16
/* The call stack of an event: frames[0] is the caller. */
struct palloc_tp_stack {
  uint8_t depth;                         /* frames recorded */
  uint64_t frames[PALLOC_TP_STACK_MAX];  /* return addresses, innermost first */
};
#endif

/* Arguments and fields every API event has. */
#define PALLOC_TP_CALL_ARGS                                                                   \
  LTTNG_UST_TP_ARGS(const struct palloc_trace_call *, call, void *, caller,                 \
                    const struct palloc_tp_stack *, stack)
#define PALLOC_TP_PTR lttng_ust_field_integer_hex(uintptr_t, ptr, (uintptr_t)call->ptr)
#define PALLOC_TP_SIZE lttng_ust_field_integer(size_t, size, call->size)
#define PALLOC_TP_NMEMB lttng_ust_field_integer(size_t, nmemb, call->nmemb)
#define PALLOC_TP_ALIGNMENT lttng_ust_field_integer(size_t, alignment, call->alignment)
#define PALLOC_TP_IN_PTR lttng_ust_field_integer_hex(uintptr_t, in_ptr, (uintptr_t)call->in_ptr)
#define PALLOC_TP_COMMON                                                                      \
  lttng_ust_field_integer(size_t, usable, call->usable)                                     \
  lttng_ust_field_integer_hex(uintptr_t, caller, (uintptr_t)caller)                         \
  lttng_ust_field_sequence_hex(uint64_t, stack, stack->frames, uint8_t, stack->depth)

LTTNG_UST_TRACEPOINT_EVENT(palloc, malloc, PALLOC_TP_CALL_ARGS,
  LTTNG_UST_TP_FIELDS(PALLOC_TP_PTR PALLOC_TP_SIZE PALLOC_TP_COMMON))

LTTNG_UST_TRACEPOINT_EVENT(palloc, calloc, PALLOC_TP_CALL_ARGS,
  LTTNG_UST_TP_FIELDS(PALLOC_TP_PTR PALLOC_TP_NMEMB PALLOC_TP_SIZE PALLOC_TP_COMMON))

LTTNG_UST_TRACEPOINT_EVENT(palloc, realloc, PALLOC_TP_CALL_ARGS,
  LTTNG_UST_TP_FIELDS(PALLOC_TP_PTR PALLOC_TP_IN_PTR PALLOC_TP_SIZE PALLOC_TP_COMMON))

LTTNG_UST_TRACEPOINT_EVENT(palloc, reallocarray, PALLOC_TP_CALL_ARGS,
  LTTNG_UST_TP_FIELDS(PALLOC_TP_PTR PALLOC_TP_IN_PTR PALLOC_TP_NMEMB PALLOC_TP_SIZE
                      PALLOC_TP_COMMON))

LTTNG_UST_TRACEPOINT_EVENT(palloc, free, PALLOC_TP_CALL_ARGS,
  LTTNG_UST_TP_FIELDS(PALLOC_TP_PTR PALLOC_TP_COMMON))

LTTNG_UST_TRACEPOINT_EVENT(palloc, free_sized, PALLOC_TP_CALL_ARGS,
  LTTNG_UST_TP_FIELDS(PALLOC_TP_PTR PALLOC_TP_SIZE PALLOC_TP_COMMON))

LTTNG_UST_TRACEPOINT_EVENT(palloc, free_aligned_sized, PALLOC_TP_CALL_ARGS,
  LTTNG_UST_TP_FIELDS(PALLOC_TP_PTR PALLOC_TP_ALIGNMENT PALLOC_TP_SIZE PALLOC_TP_COMMON))

LTTNG_UST_TRACEPOINT_EVENT(palloc, posix_memalign, PALLOC_TP_CALL_ARGS,
  LTTNG_UST_TP_FIELDS(PALLOC_TP_PTR PALLOC_TP_ALIGNMENT PALLOC_TP_SIZE
                      lttng_ust_field_integer(int, result, call->result) PALLOC_TP_COMMON))

/* aligned_alloc, memalign, valloc, pvalloc (the last two: alignment is the page size). */
LTTNG_UST_TRACEPOINT_EVENT_CLASS(palloc, aligned, PALLOC_TP_CALL_ARGS,
  LTTNG_UST_TP_FIELDS(PALLOC_TP_PTR PALLOC_TP_ALIGNMENT PALLOC_TP_SIZE PALLOC_TP_COMMON))
LTTNG_UST_TRACEPOINT_EVENT_INSTANCE(palloc, aligned, palloc, aligned_alloc, PALLOC_TP_CALL_ARGS)
LTTNG_UST_TRACEPOINT_EVENT_INSTANCE(palloc, aligned, palloc, memalign, PALLOC_TP_CALL_ARGS)
LTTNG_UST_TRACEPOINT_EVENT_INSTANCE(palloc, aligned, palloc, valloc, PALLOC_TP_CALL_ARGS)
LTTNG_UST_TRACEPOINT_EVENT_INSTANCE(palloc, aligned, palloc, pvalloc, PALLOC_TP_CALL_ARGS)

/* Memory taken from the OS (heap_grow) or given back (heap_shrink); caller: the API call
 * that caused it, 0 when none (thread exit, malloc_trim). */
LTTNG_UST_TRACEPOINT_ENUM(palloc, heap_how,
  LTTNG_UST_TP_ENUM_VALUES(
    lttng_ust_field_enum_value("sbrk", PALLOC_HEAP_SBRK)
    lttng_ust_field_enum_value("mmap", PALLOC_HEAP_MMAP)
    lttng_ust_field_enum_value("munmap", PALLOC_HEAP_MUNMAP)
    lttng_ust_field_enum_value("madvise", PALLOC_HEAP_MADVISE)
    lttng_ust_field_enum_value("mremap", PALLOC_HEAP_MREMAP)))

LTTNG_UST_TRACEPOINT_EVENT_CLASS(palloc, heap,
  LTTNG_UST_TP_ARGS(const struct palloc_trace_heap *, heap, void *, caller),
  LTTNG_UST_TP_FIELDS(
    lttng_ust_field_integer_hex(uintptr_t, addr, (uintptr_t)heap->addr)
    lttng_ust_field_integer(size_t, len, heap->len)
    lttng_ust_field_enum(palloc, heap_how, int, how, heap->how)
    lttng_ust_field_integer_hex(uintptr_t, caller, (uintptr_t)caller)))
LTTNG_UST_TRACEPOINT_EVENT_INSTANCE(palloc, heap, palloc, heap_grow,
  LTTNG_UST_TP_ARGS(const struct palloc_trace_heap *, heap, void *, caller))
LTTNG_UST_TRACEPOINT_EVENT_INSTANCE(palloc, heap, palloc, heap_shrink,
  LTTNG_UST_TP_ARGS(const struct palloc_trace_heap *, heap, void *, caller))

/* A thread cache sent count blocks of one size class back to the shared heap. */
LTTNG_UST_TRACEPOINT_ENUM(palloc, flush_why,
  LTTNG_UST_TP_ENUM_VALUES(
    lttng_ust_field_enum_value("full", PALLOC_FLUSH_FULL)
    lttng_ust_field_enum_value("all", PALLOC_FLUSH_ALL)))

LTTNG_UST_TRACEPOINT_EVENT(palloc, tcache_flush,
  LTTNG_UST_TP_ARGS(const struct palloc_trace_flush *, flush, void *, caller),
  LTTNG_UST_TP_FIELDS(
    lttng_ust_field_integer(unsigned int, size_class, flush->size_class)
    lttng_ust_field_integer(size_t, block_size, flush->block_size)
    lttng_ust_field_integer(size_t, count, flush->count)
    lttng_ust_field_enum(palloc, flush_why, int, why, flush->why)
    lttng_ust_field_integer_hex(uintptr_t, caller, (uintptr_t)caller)))

#endif /* PALLOC_TP_H */

#include <lttng/tracepoint-event.h>
