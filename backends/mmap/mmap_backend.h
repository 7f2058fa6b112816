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
#include <stdint.h>

/* One bit per 4 MiB of the 47-bit address space: set while a region occupies that slot. Read
 * without a lock by backend_tag_readable(); written under the heap lock. 4 MiB of zero pages,
 * touched only where looked at. */
#define MMAP_REGION_BITS_WORDS (((uint64_t)1 << (47 - 22)) / 64)
extern uint64_t mmap_region_bits[MMAP_REGION_BITS_WORDS];

static inline bool mmap_in_region(const void *addr)
{
  uint64_t chunk = (uint64_t)(uintptr_t)addr >> 22;
  if (chunk >= ((uint64_t)1 << (47 - 22)))
    return false;
  return (__atomic_load_n(&mmap_region_bits[chunk / 64], __ATOMIC_RELAXED) >> (chunk % 64)) & 1;
}

#endif /* PALLOC_MMAP_BACKEND_H */
