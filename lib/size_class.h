/* size_class.h: how a request size becomes a block size, and which sizes the thread cache keeps.
 *
 * A request of n bytes needs a block of block_size_for(n) = max(32, round16(n + overhead))
 * bytes, where overhead is the backend's tag bytes (8 for mmap, 16 for sbrk). Blocks up to
 * CLASS_MAX_BLOCK bytes are "small": they are rounded up to a size class and may be kept in a
 * thread cache. The class table, by block size:
 *
 *   classes  0..62    32, 48, 64, ..., 1024      every 16 bytes       (no rounding beyond 16)
 *   classes 63..70    1152, 1280, ..., 2048      every 128 bytes      8 per doubling
 *   classes 71..78    2304, ..., 4096            every 256 bytes
 *   classes 79..86    4608, ..., 8192            every 512 bytes
 *   classes 87..94    9216, ..., 16384           every 1024 bytes
 *   classes 95..102   18432, ..., 32768          every 2048 bytes
 *
 * Worst-case internal fragmentation from class rounding: 15 bytes up to 1024-byte blocks (plus
 * the 16-byte rounding every block has); above that a block is at most 1/8 of its class's
 * lower bound larger than needed, i.e. under 12.5% (e.g. a 1040-byte block takes 1152).
 * Larger requests get exactly block_size_for(n) from the backend (16-byte rounding only).
 *
 * A block the backend hands out may be larger than its class (a split remainder too small to
 * keep): a freed block goes to the largest class not above its size (class_floor), so every
 * block in class c's cache is at least class_block_size(c) bytes, and exactly that many in the
 * classes spaced 16 bytes apart up to 1008 (class_is_exact): there a freed block's class_floor
 * is its own size, and a refill puts a larger block in its own class or hands it back
 * (tcache.c). malloc counts a block of such a class as class_usable_size(c) bytes without
 * reading its tag.
 */
#ifndef PALLOC_SIZE_CLASS_H
#define PALLOC_SIZE_CLASS_H

#include "backend.h"
#include "util/bits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLASS_COUNT 103
#define CLASS_FINE_COUNT 63           /* classes spaced 16 bytes apart */
#define CLASS_FINE_MAX_BLOCK 1024
#define CLASS_MAX_BLOCK 32768
#define CLASS_MAX_REQUEST (CLASS_MAX_BLOCK - BACKEND_BLOCK_OVERHEAD)

/* The largest request palloc serves: what keeps every size computation below from wrapping
 * and every block below PTRDIFF_MAX. */
#define REQUEST_MAX ((size_t)PTRDIFF_MAX - (1u << 20))

static inline size_t block_size_for(size_t request)
{
  size_t size = (request + BACKEND_BLOCK_OVERHEAD + 15) & ~(size_t)15;
  return size < BACKEND_MIN_BLOCK ? BACKEND_MIN_BLOCK : size;
}

/* The smallest class whose blocks hold block_size bytes; block_size <= CLASS_MAX_BLOCK.
 * (Computed; the hot paths use the tables below, filled from these at start-up.) */
static inline unsigned class_ceil_computed(size_t block_size)
{
  if (block_size <= CLASS_FINE_MAX_BLOCK)
    return block_size < BACKEND_MIN_BLOCK ? 0 : (unsigned)(block_size >> 4) - 2;
  unsigned top_bit = highest_bit(block_size - 1);
  unsigned step_index = (unsigned)((block_size - 1) >> (top_bit - 3)) & 7;
  return CLASS_FINE_COUNT + (top_bit - 10) * 8 + step_index;
}

static inline size_t class_block_size(unsigned cls)
{
  if (cls < CLASS_FINE_COUNT)
    return ((size_t)cls + 2) << 4;
  unsigned group = (cls - CLASS_FINE_COUNT) / 8;
  unsigned step_index = (cls - CLASS_FINE_COUNT) % 8;
  size_t base = (size_t)CLASS_FINE_MAX_BLOCK << group;
  return base + (step_index + 1) * (base / 8);
}

/* Class lookup tables indexed by block size / 16, for block sizes up to CLASS_MAX_BLOCK. */
#define CLASS_TABLE_SIZE (CLASS_MAX_BLOCK / 16 + 1)
extern uint8_t class_ceil_table[CLASS_TABLE_SIZE];
extern uint8_t class_floor_table[CLASS_TABLE_SIZE];
/* class_block_size(c) - BACKEND_BLOCK_OVERHEAD, by class (malloc's count of an exact class). */
extern uint16_t class_usable_table[CLASS_COUNT];
/* Fill the tables; once, at start-up, before any thread cache exists. */
void size_class_init(void);

/* The usable bytes of a block of an exact class. */
static inline size_t class_usable_size(unsigned cls) { return class_usable_table[cls]; }

/* The smallest class whose blocks hold block_size bytes (a multiple of 16, <= CLASS_MAX_BLOCK). */
static inline unsigned class_ceil(size_t block_size) { return class_ceil_table[block_size >> 4]; }

/* The largest class whose blocks are no larger than block_size (>= BACKEND_MIN_BLOCK, a
 * multiple of 16, <= CLASS_MAX_BLOCK). */
static inline unsigned class_floor_units(size_t units) { return class_floor_table[units]; }
static inline unsigned class_floor(size_t block_size) { return class_floor_units(block_size >> 4); }

/* Whether every cached block of class cls is exactly class_block_size(cls) bytes (above): the
 * classes spaced 16 bytes apart but the last, 1024, which is the floor of 1040..1136 too. */
static inline bool class_is_exact(unsigned cls) { return cls < CLASS_FINE_COUNT - 1; }

/* Whether a block of block_size bytes may be cached in class cls. */
static inline bool class_may_hold(unsigned cls, size_t block_size)
{
  size_t class_size = class_block_size(cls);
  return class_is_exact(cls) ? block_size == class_size : block_size >= class_size;
}

/* Class of a small request (request <= CLASS_MAX_REQUEST). */
static inline unsigned class_for_request(size_t request)
{
  return class_ceil_table[(request + BACKEND_BLOCK_OVERHEAD + 15) >> 4];
}

#endif /* PALLOC_SIZE_CLASS_H */
