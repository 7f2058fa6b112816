/* sbrk_backend.h: the sbrk backend's tunables, its test hooks, and its mapped blocks' API.
 *
 * sbrk_backend.c owns the boundary-tag heap (regions grown with sbrk, or mapped when the break
 * is not ours to move); sbrk_mapped.c owns the blocks that live in a mapping of their own;
 * sbrk_check.c checks both. The mapped_* functions run with the backend's lock held.
 *
 * Tunables (bytes):
 *   SBRK_MAP_THRESHOLD  a block of at least this size is mapped on its own (sbrk_mapped.c);
 *                       everything smaller lives in the heap.
 *   SBRK_MAP_CACHE_BYTES the mappings of freed mapped blocks kept for reuse, at most.
 *   SBRK_GROW_MIN       the least the heap grows by at a time (rounded up to pages).
 *   SBRK_TRIM_THRESHOLD when a free block at the top of the heap reaches this size, the break
 *                       is lowered (negative sbrk) ...
 *   SBRK_TOP_PAD        ... keeping this much free at the top.
 *   SBRK_RELEASE_MIN    a free that leaves a free block of at least this size (not the top
 *                       region's last) gives back the whole pages inside it (MADV_DONTNEED).
 *   SBRK_MAP_REGION_MIN the least a mapped region (the heap's continuation when sbrk fails or
 *                       the break was moved by someone else) is mapped with.
 *   SBRK_HIGH_PLACE_MIN a block of at least this size is carved from the high end of the free
 *                       block it is placed in when that block keeps ...
 *   SBRK_HIGH_PLACE_SLACK ... at least this many bytes free; other blocks from the low end.
 *   SBRK_BATCH_ALIGN    a batch of one block (backend_alloc_batch: a thread cache's first
 *                       refill of a class) starts a cache line of this many bytes.
 *   SBRK_SEARCH_BUDGET  (blocks) how far one first-fit search walks in a region; past it, the
 *                       request is served from the heap's top and the next search goes on
 *                       from where this one stopped.
 *
 * The placement policy is read once, in backend_init(), from PALLOC_SBRK_FIT=first|next|best.
 */
#ifndef PALLOC_SBRK_BACKEND_H
#define PALLOC_SBRK_BACKEND_H

#include "backend.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef SBRK_MAP_THRESHOLD /* each may be set at build time (CPPFLAGS=-DSBRK_...=bytes) */
#  define SBRK_MAP_THRESHOLD  ((size_t)128 * 1024)
#endif
#ifndef SBRK_GROW_MIN
#  define SBRK_GROW_MIN       ((size_t)4096)
#endif
#ifndef SBRK_TRIM_THRESHOLD
#  define SBRK_TRIM_THRESHOLD ((size_t)256 * 1024)
#endif
#ifndef SBRK_TOP_PAD
#  define SBRK_TOP_PAD        ((size_t)64 * 1024)
#endif
#ifndef SBRK_RELEASE_MIN /* free blocks this big have their interior pages given back */
#  define SBRK_RELEASE_MIN ((size_t)16 * 1024)
#endif
#ifndef SBRK_MAP_REGION_MIN
#  define SBRK_MAP_REGION_MIN ((size_t)1024 * 1024)
#endif
#ifndef SBRK_HIGH_PLACE_MIN /* blocks this big are carved from the high end of a free block */
#  define SBRK_HIGH_PLACE_MIN ((size_t)256)
#endif
#ifndef SBRK_HIGH_PLACE_SLACK
#  define SBRK_HIGH_PLACE_SLACK ((size_t)BACKEND_MIN_BLOCK)
#endif
#ifndef SBRK_MAP_CACHE_BYTES
#  define SBRK_MAP_CACHE_BYTES ((size_t)32 * 1024 * 1024)
#endif
#ifndef SBRK_BATCH_ALIGN /* a one-block batch starts a line of this many bytes */
#  define SBRK_BATCH_ALIGN 64
#endif
#ifndef SBRK_SEARCH_BUDGET /* blocks a first-fit search walks before it takes the heap's top */
#  define SBRK_SEARCH_BUDGET 4096
#endif

/* Bit 3 of the tag (TAG_CACHED in backend.h's first version, TAG_RESERVED since): this backend
 * never sets it, and refuses to free a block that has it. */
#define SBRK_TAG_BIT3 ((uint64_t)8)

/* backend.h's free fast path: whether the tag before payload may be read without a lock and
 * without faulting. True for the top sbrk region's blocks (where nearly every block lives);
 * other blocks (older regions, mapped ones) take the slow path, which checks them with
 * backend_owns(). The range is published with atomic stores under the lock (high = 0, then
 * low, then high: publish_readable() in sbrk_region.c), so it is read high first; it is
 * lowered before the break is. Hidden, so that the fast path reads the bounds straight from
 * their addresses (without, the linker turns each GOT load into a lea: two instructions a
 * bound, on every free and realloc). */
extern uintptr_t sbrk_readable_low __attribute__((visibility("hidden")));
extern uintptr_t sbrk_readable_high __attribute__((visibility("hidden")));

static inline bool backend_tag_readable(const void *payload)
{
  uintptr_t p = (uintptr_t)payload;
  return p < __atomic_load_n(&sbrk_readable_high, __ATOMIC_ACQUIRE) &&
         p >= __atomic_load_n(&sbrk_readable_low, __ATOMIC_ACQUIRE);
}

enum sbrk_fit { SBRK_FIT_FIRST, SBRK_FIT_NEXT, SBRK_FIT_BEST };

/* Test and benchmark hooks (not part of backend.h): the placement policy in force, and a way
 * to change it between runs. */
enum sbrk_fit sbrk_fit_policy(void);
void sbrk_set_fit_policy(enum sbrk_fit fit);
/* Carve blocks of at least bytes from the high end of big free blocks (SIZE_MAX: never; 0:
 * SBRK_HIGH_PLACE_MIN again). */
void sbrk_set_high_place_min(size_t bytes);
/* Where the zero area (invariant I10) of the region holding addr begins, or NULL. */
void *sbrk_clean_from(const void *addr);
/* The name of a policy: "first", "next" or "best". */
const char *sbrk_fit_name(enum sbrk_fit fit);

/* ---- sbrk_mapped.c: blocks mapped on their own (lock held) ------------------------------ */

/* A mapped block of at least block_size bytes whose payload is aligned to alignment (16 or a
 * larger power of two); NULL when the OS refuses. *dirty = how many of its payload bytes may be
 * non-zero: 0 for a fresh mapping, all for one reused from the cache of freed mappings. */
void *mapped_alloc(size_t block_size, size_t alignment, size_t *dirty);
/* The heap is about to take bytes more from the OS: unmap cached mappings so that it holds no
 * more than at its peak afterwards, if the cache has enough (sbrk_region.c). */
void sbrk_make_room(size_t bytes);
/* Unmap cached mappings until bytes are released or the cache is empty: the smallest that
 * covers what is left, else the largest, in turn; returns the bytes released. */
size_t mapped_cache_evict(size_t bytes);
/* Unmap the cached mappings of freed blocks; returns their bytes. */
size_t mapped_trim(void);
/* Whether payload is the payload of a live mapped block. */
bool mapped_owns(const void *payload);
void mapped_free(void *payload);
/* Shrink in place (unmapping whole pages past the new end); false when growing is asked. */
bool mapped_resize(void *payload, size_t new_block_size);
/* Move to a mapping of at least new_block_size bytes; NULL with the block untouched. */
void *mapped_remap(void *payload, size_t new_block_size);
/* Verify every mapped block (invariant I9); 0 or 9. */
int mapped_check(void);
/* Mapping bytes (the cache's included), block bytes (tags included) and block count of the
 * live mapped blocks. */
uint64_t mapped_total_len(void);
uint64_t mapped_block_bytes(void);
uint64_t mapped_block_count(void);

#endif /* PALLOC_SBRK_BACKEND_H */
