/* palloc.h: the public API of palloc, a malloc replacement for GNU/Linux.
 *
 * Linking with -lpalloc (pkg-config --libs palloc), or preloading libpalloc.so, replaces the
 * C library's malloc, free, calloc, realloc, reallocarray, posix_memalign, aligned_alloc,
 * memalign, valloc, pvalloc, malloc_usable_size, malloc_trim, mallinfo2 and malloc_stats:
 * those keep their standard declarations in <stdlib.h> and <malloc.h>.
 *
 * This header declares what the C library does not: C23's free_sized and free_aligned_sized
 * (not in glibc 2.36's headers) and palloc's own extension API, every name prefixed palloc_.
 *
 * Environment variables read once, at the first allocation:
 *   PALLOC_STATS=1      print palloc_stats_print()'s report on stderr when the process exits.
 *   PALLOC_CHECK=N      run palloc_check_heap() every N allocator calls (N >= 1; slow) and
 *                       abort with a palloc: message when it fails.
 */
#ifndef PALLOC_H
#define PALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* C23: free a block of known size (exactly the size asked for at allocation). */
void free_sized(void *ptr, size_t size);
/* C23: free a block from aligned_alloc() of known alignment and size. */
void free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* The backend this library was built with: "mmap" or "sbrk". */
const char *palloc_backend_name(void);

/* Walk the whole heap (the calling thread's cache and every backend structure) and verify
 * every invariant. Returns 0 when consistent; otherwise writes one line naming the first broken
 * invariant to stderr (without allocating) and returns its number (a positive int). Other
 * threads may allocate meanwhile: their caches are not walked, their blocks count as in use. */
int palloc_check_heap(void);

/* A snapshot of palloc's counters. Live and peak bytes count usable bytes handed to the
 * program and not yet freed. Threads publish their counters to the shared totals whenever
 * their cache talks to the backend, so other threads' figures may lag by at most what their
 * caches hold; the calling thread's are exact. */
enum palloc_function {
  PALLOC_FN_MALLOC,
  PALLOC_FN_CALLOC,
  PALLOC_FN_REALLOC,
  PALLOC_FN_REALLOCARRAY,
  PALLOC_FN_FREE,
  PALLOC_FN_FREE_SIZED,
  PALLOC_FN_FREE_ALIGNED_SIZED,
  PALLOC_FN_POSIX_MEMALIGN,
  PALLOC_FN_ALIGNED_ALLOC,
  PALLOC_FN_MEMALIGN,
  PALLOC_FN_VALLOC,
  PALLOC_FN_PVALLOC,
  PALLOC_FN_COUNT
};

struct palloc_stats {
  uint64_t live_bytes;          /* usable bytes of blocks allocated and not freed */
  uint64_t peak_live_bytes;     /* highest live_bytes seen */
  uint64_t mapped_bytes;        /* bytes currently mapped from the OS (address space) */
  uint64_t peak_mapped_bytes;   /* highest mapped_bytes seen */
  uint64_t backend_free_bytes;  /* bytes in the backend's free blocks */
  uint64_t cached_bytes;        /* bytes held in thread caches */
  uint64_t calls[PALLOC_FN_COUNT]; /* calls per API function, indexed by enum palloc_function */
};

/* Fill *stats. Returns 0 (never fails). */
int palloc_stats_get(struct palloc_stats *stats);
/* Print the statistics report on stderr (without allocating). */
void palloc_stats_print(void);
/* Name of an API function, for reports: "malloc", "calloc", ...; NULL when out of range. */
const char *palloc_function_name(enum palloc_function fn);

#ifdef __cplusplus
}
#endif

#endif /* PALLOC_H */
