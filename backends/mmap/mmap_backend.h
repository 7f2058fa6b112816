/* mmap_backend.h: the mmap backend's tunables, for its tests and the documentation. */
#ifndef PALLOC_MMAP_BACKEND_H
#define PALLOC_MMAP_BACKEND_H

#define MMAP_REGION_SIZE ((size_t)4 << 20)       /* regions: 4 MiB, aligned to 4 MiB */
#define MMAP_MAPPED_THRESHOLD ((size_t)512 << 10) /* blocks from here up get a mapping each */
#define MMAP_RELEASE_MIN ((size_t)1 << 20)        /* free blocks this large give pages back */
#define MMAP_TOP_PAD ((size_t)128 << 10)          /* dirty top bytes kept when trimming */
#define MMAP_TRIM_THRESHOLD ((size_t)1 << 20)     /* trim the top once this much more is dirty */
#define MMAP_BIN_COUNT 128

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One byte per 4 MiB of the 47-bit address space: 1 while a region occupies that slot. Read
 * without a lock by backend_tag_readable(); written under the heap lock. 32 MiB of zero pages,
 * touched only where looked at and written (a page per 16 GiB of address space in use): a byte,
 * not a bit, so that the free fast path's test is one shift and one compare (a bit costs a
 * second shift and a bit test). */
#define MMAP_REGION_MAP_SIZE ((size_t)1 << (47 - 22))
extern uint8_t mmap_region_map[MMAP_REGION_MAP_SIZE]
    __attribute__((visibility("hidden"))); /* addressed from the code, not through the GOT */

/* Whether addr lies in a region; addr must be below 2^47 (payload_may_be_read() tests that
 * with the alignment, in one mask; other callers pass addresses they checked). */
static inline bool mmap_in_region(const void *addr)
{
  uint64_t chunk = (uint64_t)(uintptr_t)addr >> 22;
  if (chunk >= MMAP_REGION_MAP_SIZE)
    return false;
  return __atomic_load_n(&mmap_region_map[chunk], __ATOMIC_RELAXED) != 0;
}

#endif /* PALLOC_MMAP_BACKEND_H */
