/* os.h: every call palloc makes to the kernel for memory, in one place.
 *
 * Backends get address space here and give it back here; nothing else in palloc calls mmap,
 * munmap, madvise, mremap or sbrk. Every function preserves errno and accounts the bytes it
 * maps, so that mapped_bytes is exact. No function allocates. Each is also where a heap event
 * (memory taken from or given back to the OS) is reported to the tracer, and where memory taken
 * is marked NOACCESS for valgrind's memcheck (lib/util/vg.h, V1).
 */
#ifndef PALLOC_OS_H
#define PALLOC_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

size_t os_page_size(void);

/* Anonymous read-write memory of len bytes (a multiple of the page size), zero-filled.
 * NULL when the OS refuses. */
void *os_map(size_t len);
/* As os_map, with the start aligned to align (a power of two >= the page size). */
void *os_map_aligned(size_t len, size_t align);
/* Unmap [addr, addr+len); false when the kernel refuses (the range stays mapped). */
bool os_unmap(void *addr, size_t len);
/* Move or resize a mapping keeping its contents, and its resident pages resident (mremap; a
 * range that spans several kernel mappings grows by moving them one by one into a new
 * mapping); NULL when the kernel refuses. */
void *os_remap(void *addr, size_t old_len, size_t new_len);
/* Tell the kernel the pages in [addr, addr+len) may be dropped (they read as zero after);
 * addr and len are page-aligned. */
void os_release(void *addr, size_t len);
/* Make the pages in [addr, addr+len) inaccessible (a guard page) or read-write again; addr and
 * len are page-aligned. False when the kernel refuses. */
bool os_protect(void *addr, size_t len, bool accessible);
/* Move the program break by increment bytes; returns the old break, or NULL when refused. */
void *os_sbrk(intptr_t increment);

/* A cheap clock for how long memory has stayed free: the processor's time-stamp counter,
 * which counts at a fixed rate of a few GHz on current x86-64 processors (invariant TSC; on one
 * that varies, the delays it times only stretch or shrink). Not clock_gettime: its first call
 * maps the vDSO's data and libc's clock code into a small process's resident set (+64 KiB of
 * peak RSS in bench churn). */
static inline uint64_t os_cycles(void) { return __builtin_ia32_rdtsc(); }

/* Bytes mapped (or obtained by sbrk) and not given back, now and at the highest. */
uint64_t os_mapped_bytes(void);
uint64_t os_peak_mapped_bytes(void);

#endif /* PALLOC_OS_H */
