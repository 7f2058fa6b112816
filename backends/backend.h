/* backend.h: the contract between the front end (lib/) and a backend (backends/NAME/).
 *
 * Exactly one backend is compiled into each library, chosen by the preprocessor symbol
 * PALLOC_BACKEND_MMAP or PALLOC_BACKEND_SBRK; the front end calls the plain functions below
 * (no function pointers). A backend owns memory policy: where blocks come from, how free
 * blocks are found, split, coalesced and given back to the OS. The front end owns the API's
 * semantics, size classes and the thread caches.
 *
 * The block tag. Every payload pointer p that a backend hands out is 16-byte aligned, and the
 * 8 bytes just before it hold the block's tag word, which the front end may read and whose bit
 * C it may flip:
 *
 *        63          48 47                         4   3   2   1   0
 *       +--------------+-----------------------------+---+---+---+---+
 *       | check        | block size (a multiple of 16)| C | M | P | U |   at p - 8
 *       +--------------+-----------------------------+---+---+---+---+
 *       check          bits 48-63 of an in-use block's tag: tag_check_bits(), a keyed hash of
 *                      p and of the tag's size, U, M and C bits (not P, which a backend flips
 *                      on a neighbour), so that an overwritten tag or a pointer into the middle
 *                      of a block is noticed (1 chance in 65536 of a miss); 0 in a free block's
 *                      tag. tag_size() masks them off.
 *       U  TAG_IN_USE     the block belongs to the program or to a thread cache
 *       P  TAG_PREV_FREE  backend-private (e.g. "the block before this one is free")
 *       M  TAG_MAPPED     the block lives in a mapping of its own; never thread-cached
 *       C  TAG_RESERVED   always 0 (the front end never writes a tag: a backend may update a
 *                         neighbour's P bit under its lock while the owner thread reads the tag)
 *
 * Contract (each backend's heap checker verifies its side of it):
 *   B1  usable bytes of a block = tag size - BACKEND_BLOCK_OVERHEAD; all of them are writable.
 *   B2  tag size >= the block size asked for, and >= BACKEND_MIN_BLOCK.
 *   B3  a block returned by backend_alloc*(), backend_resize() or backend_remap() has U set,
 *       C clear and a sealed tag (tag_sealed()); so does every in-use block in the heap. Blocks in thread caches
 *       stay U to the backend: the front end marks them in their payload, never in the tag.
 *   B4  backend_free*() accepts only blocks with U set and C clear; anything else is a misuse
 *       the backend reports with report_misuse() (lib/util/report.h), which does not return.
 *   B5  no backend function calls malloc or any function that may call it, and none is called
 *       with a front-end lock held; each backend serialises itself and survives fork through
 *       the three backend_fork_*() hooks.
 *   B6  backend functions leave errno unchanged.
 *   B7  the front end reads a tag only for blocks it owns (in use by the program or cached),
 *       and writes only payload bytes; the tag of an in-use block changes only inside
 *       backend_resize()/backend_remap() or in its P bit.
 */
#ifndef PALLOC_BACKEND_H
#define PALLOC_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each backend's header supplies, as a static inline function on the free fast path:
 *   bool backend_tag_readable(const void *payload)
 *     true only if the 8 bytes before payload lie in memory the backend keeps mapped for its
 *     small blocks, so that the tag can be read without faulting whatever the pointer; false
 *     sends the pointer to the slow path, which validates it with backend_owns(). */
#if defined(PALLOC_BACKEND_MMAP)
#  define BACKEND_NAME "mmap"
#  define BACKEND_BLOCK_OVERHEAD 8   /* the tag; a free block's footer overlaps the next tag */
#  include "mmap/mmap_backend.h"
#  define BACKEND_MAPPED_THRESHOLD MMAP_MAPPED_THRESHOLD /* blocks from here up are mapped */
/* Blocks over this size are not cached while threads share the process (lib/tcache.h): the
 * backend keeps freed pages for a while, so a block it gets back is cheap to hand out again. */
#  define BACKEND_SHARED_CACHE_MAX_BLOCK 4096
static inline bool backend_tag_readable(const void *payload) { return mmap_in_region(payload); }
#elif defined(PALLOC_BACKEND_SBRK)
#  define BACKEND_NAME "sbrk"
#  define BACKEND_BLOCK_OVERHEAD 8   /* the header; only free blocks have a footer (P bit) */
#  include "sbrk/sbrk_backend.h"
#  define BACKEND_MAPPED_THRESHOLD SBRK_MAP_THRESHOLD
/* Every class is cached, shared or not: this backend gives the pages of a free block of
 * SBRK_RELEASE_MIN bytes back at once, so a block of 4-32 KiB handed back and asked for again
 * would fault its pages in each time (bench thread_storm with the mmap backend's bound: 0.169
 * -> 0.560 s, 3.3x glibc's time). */
#  define BACKEND_SHARED_CACHE_MAX_BLOCK SIZE_MAX
#else
#  error "compile with -DPALLOC_BACKEND_MMAP or -DPALLOC_BACKEND_SBRK"
#endif

#define BACKEND_ALIGNMENT 16
#define BACKEND_MIN_BLOCK 32

#define TAG_IN_USE    ((uint64_t)1)
#define TAG_PREV_FREE ((uint64_t)2)
#define TAG_MAPPED    ((uint64_t)4)
#define TAG_RESERVED  ((uint64_t)8)
#define TAG_FLAGS     ((uint64_t)15)
#define TAG_SIZE_MASK ((uint64_t)0x0000fffffffffff0)
#define TAG_CHECK_MASK ((uint64_t)0xffff000000000000)
/* The bits the check covers: all but P and the check itself. */
#define TAG_SEALED_BITS (TAG_SIZE_MASK | TAG_IN_USE | TAG_MAPPED | TAG_RESERVED)

/* Flags for backend_alloc(). */
#define BACKEND_ZERO 1u  /* the usable bytes must read as zero (skip memset on fresh memory) */

/* The default checks (check bits, the cache key, the free fast path's
 * pointer validation) are compiled in, always. Built with -DPALLOC_MEASURE_UNCHECKED they are
 * compiled out: that build exists only to measure what they cost (bench/check-cost.sh); it
 * catches nearly no misuse and its heap checker fails T2, T4 and the check-bit invariants. The
 * backends' neighbour and free-list checks stay in it. */
#ifdef PALLOC_MEASURE_UNCHECKED
#  define HARDEN_DEFAULT_CHECKS 0
#else
#  define HARDEN_DEFAULT_CHECKS 1
#endif

static inline uint64_t *block_tag(void *payload) { return (uint64_t *)payload - 1; }
static inline size_t tag_size(uint64_t tag) { return (size_t)(tag & TAG_SIZE_MASK); }
/* The key of the tag check: random, set once by tag_secret_init() before any block exists
 * (backends/os.c); never 0 or even, so that the multiplication below spreads every bit. */
extern uint64_t tag_secret __attribute__((visibility("hidden"))); /* one load, no GOT */
void tag_secret_init(void);

/* The check bits of a tag at payload - 8 (bits 48-63, the rest 0): the address plus the size,
 * U, M and C bits, multiplied by the secret, whose top 16 bits of product depend on every bit
 * of that sum (the secret is odd). A sum, not a shift and an exclusive or, so that the free
 * fast path, which has the size and U in one word already, forms it in one instruction
 * (tag_seal_ok_sum);
 * payload + tag size is where the next block's payload would start, so a tag moved to another
 * address, or a size changed alone, gives other check bits (but for 1 chance in 65536). */
static inline uint64_t seal_product(const void *payload, uint64_t sealed_bits)
{
  return ((uint64_t)(uintptr_t)payload + sealed_bits) * tag_secret;
}
static inline uint64_t tag_check_bits(const void *payload, uint64_t tag)
{
  if (!HARDEN_DEFAULT_CHECKS)
    return 0;
  return seal_product(payload, tag & TAG_SEALED_BITS) & TAG_CHECK_MASK;
}
/* The tag with its check bits set for a block whose payload is at payload. */
static inline uint64_t tag_sealed(const void *payload, uint64_t tag)
{
  return (tag & ~TAG_CHECK_MASK) | tag_check_bits(payload, tag);
}
/* Whether an in-use tag read at payload - 8 carries the right check bits, given the tag's
 * sealed bits (tag & TAG_SEALED_BITS) when the caller has them at hand already (the free and
 * realloc fast paths: is_cacheable_sealed() in lib/api.c). */
static inline bool tag_seal_ok_sum(const void *payload, uint64_t tag, uint64_t sealed_bits)
{
  if (!HARDEN_DEFAULT_CHECKS)
    return true;
  return (seal_product(payload, sealed_bits) ^ tag) >> 48 == 0; /* no mask needed */
}
static inline bool tag_seal_ok(const void *payload, uint64_t tag)
{
  return tag_seal_ok_sum(payload, tag, tag & TAG_SEALED_BITS);
}
/* Re-seal the tag just before payload (after a backend changed its size or flags). */
static inline void block_seal(void *payload)
{
  uint64_t *tag = (uint64_t *)payload - 1;
  *tag = tag_sealed(payload, *tag);
}

static inline size_t block_usable_size(void *payload)
{
  return tag_size(*block_tag(payload)) - BACKEND_BLOCK_OVERHEAD;
}

struct backend_stats {
  uint64_t mapped_bytes;       /* address space currently obtained from the OS */
  uint64_t peak_mapped_bytes;  /* the highest mapped_bytes so far */
  uint64_t free_bytes;         /* bytes in free blocks (tags included) */
  uint64_t in_use_bytes;       /* bytes in blocks with U set (tags included), cached ones too */
  uint64_t mapped_block_bytes; /* bytes in blocks with M set */
};

/* Once, before any other call; must not allocate. Returns 0, or an errno value. */
int backend_init(void);

/* A block of at least block_size bytes (a multiple of 16, >= BACKEND_MIN_BLOCK), or NULL when
 * the OS refuses memory. Returns the payload pointer. */
void *backend_alloc(size_t block_size, unsigned flags);
/* Up to count blocks of at least block_size bytes each, in one critical section; returns how
 * many were stored in payloads[]. */
size_t backend_alloc_batch(size_t block_size, void **payloads, size_t count);
/* A block whose payload is aligned to alignment (a power of two > 16) with at least
 * block_size bytes counted from the tag just before that aligned payload. */
void *backend_alloc_aligned(size_t alignment, size_t block_size, unsigned flags);

void backend_free(void *payload);
void backend_free_batch(void **payloads, size_t count);

/* Grow or shrink the block in place to at least new_block_size bytes; true on success (the
 * tag then holds the new size), false with the block untouched. */
bool backend_resize(void *payload, size_t new_block_size);
/* For a block with M set only: move it to a block of at least new_block_size bytes keeping its
 * contents (mremap). Returns the new payload, or NULL with the block untouched. */
void *backend_remap(void *payload, size_t new_block_size);

/* Whether payload lies in memory this backend manages, so that its tag may be read: a
 * 16-aligned address inside a region's blocks, or the payload of a block mapped on its own.
 * Says nothing of U. Used on slow paths to validate pointers before their tag is trusted;
 * O(1) or O(log n) in the number of regions, never faults on a wild pointer. */
bool backend_owns(const void *payload);

/* Walk every structure and verify every invariant; 0 when consistent, else the number of the
 * first broken invariant, reported with report_check_failure(). */
int backend_check_heap(void);
void backend_get_stats(struct backend_stats *stats);
/* Give free memory back to the OS, keeping pad bytes at the heap's top where that applies.
 * Returns the number of bytes released. */
size_t backend_trim(size_t pad);
/* Give the OS back the address space the backend keeps mapped without using it (cached
 * mappings, wholly free regions, the sbrk heap's free top), with no walk of the heap: what a
 * request that failed for want of memory can use (lib/api.c). The pages inside free blocks
 * stay: giving them back lowers neither the address space (RLIMIT_AS, RLIMIT_DATA) nor the
 * commit charge that made the request fail. Returns the number of bytes unmapped. */
size_t backend_release_address_space(void);

void backend_fork_prepare(void);
void backend_fork_parent(void);
void backend_fork_child(void);

#endif /* PALLOC_BACKEND_H */
