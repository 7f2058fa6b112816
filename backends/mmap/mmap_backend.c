/* mmap_backend.c: segregated fit over regions obtained with mmap (the "mmap" backend).
 *
 * Owns: regions, the free blocks in them and their bins, blocks mapped on their own, and
 * giving pages back to the OS. One lock (heap_lock) serialises everything here; the thread
 * caches in front take the common traffic.
 *
 * Region (MMAP_REGION_SIZE bytes, aligned to its size):
 *
 *   region                                                                    region + SIZE
 *   +---------------+--------+--------+-- ... --+---------------------------+----------+
 *   | struct region | block  | block  |         | top: never-used tail      | sentinel |
 *   +---------------+--------+--------+-- ... --+---------------------------+----------+
 *                    ^ first block                                            tag: 0|P|U
 *
 * Block (starts at 8 mod 16, size a multiple of 16, at least 32 bytes):
 *
 *   in use:  +--------------+------------------------------------------------------+
 *            | size | P | U | payload: size - 8 bytes (16-aligned)                 |
 *            +--------------+------------------------------------------------------+
 *   free:    +--------------+--------+--------+------------------------+----------+
 *            | size | P | 0 | next   | prev   |  (unused)              | size     |
 *            +--------------+--------+--------+------------------------+----------+
 *                                                                        footer
 *   P: the block just before is free (its footer, 8 bytes before this tag, holds its size).
 *   The top is a free block with a tag only: it is on no bin, and its bytes at and above
 *   region->clean_from read as zero, so calloc of fresh memory skips the memset.
 *
 * Block mapped on its own (block size >= MMAP_MAPPED_THRESHOLD, or a big alignment):
 *
 *   map_start (page)                        payload (aligned)                  map end
 *   +-------- ... ---+------+------+-----+-------+-----------+------+----------+
 *   | (slack)        | next | prev | len | magic | map_start | size|M|U | payload |
 *   +-------- ... ---+------+------+-----+-------+-----------+------+----------+
 *                    \______ struct mapped_header (48 bytes, ends at payload) ___/
 *   tag size = map end - payload (a multiple of 16): the usable size stops 8 bytes short of
 *   the mapping's end.
 *
 * Freed mappings of up to 16 MiB are kept in a small cache (64 MiB at most, each entry for at
 * most 4096 frees) for the next big block, so that a program cycling through big blocks does
 * not fault their pages in again; a cached mapping serves a smaller block (its tail stays
 * cached) or a larger one (grown with mremap, its pages moving, not faulting).
 *
 * Giving pages back, with hysteresis: a free never calls the kernel for a region's pages. The
 * free top beyond MMAP_TOP_PAD, and the interior of free blocks of MMAP_RELEASE_MIN bytes or
 * more, are given back (MADV_DONTNEED), and a region left wholly free is unmapped, once they
 * have stayed free for PAGE_RELEASE_DELAY (about 100 ms, looked at every HOUSEKEEPING_EVERY
 * frees), so a program that frees and reallocates big blocks in a loop does not fault them in
 * each time, and one that stops using memory returns it at its next frees once that time is
 * past (or at once with malloc_trim). A region kept free is unmapped at once when a block is
 * to be mapped on its own, which it could not serve (unmap_kept_regions).
 *
 * Placement: a block is taken from the bins (below) or carved from the top; a batch for a
 * thread cache cuts as many blocks as fit from each free block it takes (or from the top in
 * one carve), so that they lie side by side and the bins are touched once per free block
 * rather than once per block. A batch of one block of up to 512 bytes (a thread's first
 * refill of a small class) starts a cache line (the gap before it stays free; a free block too small for the gap goes
 * back to its bin), so that two threads' first blocks never share a line.
 *
 * Deferred blocks: a block of up to DEFER_MAX_BLOCK bytes that a thread cache hands back in a
 * batch is not coalesced at once but put on the list of its exact size, which the next batch
 * of that size takes from first; the lists are coalesced when a request finds no bin that fits
 * (block by block, or by one sweep of every region in address order when they hold an eighth
 * of the heap) and before a new region is mapped (see "Deferred blocks" below).
 *
 * Bins: 128 bins of free blocks (the top excepted), on doubly linked lists. Bins 0..62 hold
 * blocks of exactly 32, 48, ..., 1024 bytes, each on BIN_LANES lists (lanes) filled in turn
 * and taken from in turn, so that a batch taking many blocks off one bin follows several
 * chains at once; from bin 63 on, each bin holds a quarter of a doubling ([1024, 1280),
 * [1280, 1536), ...) on one list. bin_bitmap has bit b set iff bin b is not empty, so the
 * first non-empty bin that fits is found in O(1).
 *
 * Invariants (backend_check_heap checks each, by number):
 *   I1  every region on the list has REGION_MAGIC, is aligned to its size, is registered,
 *       and ends in a sentinel tag of size 0 with U set.
 *   I2  blocks tile each region exactly, from the first block to the sentinel: each size is a
 *       multiple of 16 and at least 32; only the current region has a top, and it is last.
 *   I3  every payload is 16-aligned.
 *   I4  a tag's P bit (the sentinel's too) is set iff the block before it is free and not
 *       deferred (the top counts as free), and such a free block's footer equals its size.
 *   I5  no two adjacent blocks are free unless one of them is deferred (the top counts as free).
 *   I6  every free block other than the top and the deferred ones is on a list of its bin
 *       exactly once (lane 0 only from bin 63 on); lists are consistently doubly linked, the
 *       first block's back link being its lane's number; bin_bitmap bit b is set iff bin b is
 *       not empty.
 *   I7  the byte counters equal what the walk finds (free, in use, mapped blocks, cached
 *       mappings), and the mapping cache stays within its budget.
 *   I8  the top's clean_from lies inside the top, past its tag, and the words there are zero.
 *   I9  every mapped block is on the mapped list and registered, has M and U set, a
 *       page-aligned map_start below it and a tag size that runs to the end of its mapping.
 *   I10 every in-use block's tag (mapped ones too) carries its check bits (backend.h); a
 *       free block's tag has none.
 *   I11 a deferred block (free, word 2 DEFER_MARK, not the top) is at most DEFER_MAX_BLOCK
 *       bytes and on a lane of the deferred list of its exact size, once; every block on those
 *       lanes is such a block in a registered region; deferred_lanes[] marks exactly the
 *       non-empty lanes; deferred_bytes is what the walk and the lists find.
 *
 * Hardening: tags are sealed (backend.h) wherever a block leaves this file in use; freeing a
 * block verifies its tag, its free neighbours' footers and sizes and its in-use next
 * neighbour's seal, and unlinking a free block verifies its neighbours on the bin list point
 * back at it, so that an overflow into metadata stops the process before it can steer a write.
 * A deferred block's link is hidden (safe-linking: xor with its word's address >> 12; the
 * backend cannot use the thread caches' secret, which belongs to the front end), and taking
 * one back verifies its tag, its mark and the link it leaves in the list head; a deferred
 * block coalesced on its own has its neighbours verified as a freed block's, and the sweep
 * stops the process at a tag whose size would leave the region.
 */
#include "config.h"
#include "mmap_backend.h"

#include "backend.h"
#include "os.h"
#include "util/bits.h"
#include "util/lock.h"
#include "util/report.h"

#include <string.h>

#define REGION_MAGIC 0x70616c6c6f63524full /* "pallocRO" */
#define MAPPED_MAGIC 0x70616c6c6f634d50ull /* "pallocMP" */
#define FINE_BIN_COUNT 63
#define MAX_ALIGNMENT ((size_t)1 << 40)

_Static_assert(MMAP_REGION_SIZE == (size_t)1 << 22, "mmap_in_region() counts 4 MiB chunks");

struct region {
  uint64_t magic;
  struct region *next, *prev; /* all regions */
  char *top;                  /* the top block's tag, or NULL */
  char *clean_from;           /* bytes from here to the sentinel read as zero (top only) */
  uint64_t top_dirty_since;   /* release_stamp() when the top last grew by a free; 0: trimmed */
};

struct free_block {
  uint64_t tag;
  struct free_block *next, *prev; /* bin list */
};

struct mapped_header {
  struct mapped_header *next, *prev; /* all mapped blocks */
  size_t map_len;
  uint64_t magic;
  char *map_start;
  uint64_t tag;
};

struct heap_counters {
  uint64_t free_bytes;         /* free blocks, tops included */
  uint64_t in_use_bytes;       /* region blocks with U */
  uint64_t mapped_block_bytes; /* tag sizes of mapped blocks */
};

static palloc_lock heap_lock = PALLOC_LOCK_INIT;
static struct region *regions;        /* list of all regions */
static struct region *current_region; /* the one whose top serves new blocks */
static struct mapped_header *mapped_blocks;
/* Each exact-size bin keeps BIN_LANES lists (lanes), filled in turn and taken from in turn;
 * the other bins use lane 0 only (see "Bins" at the top of this file). */
#define BIN_LANES 4
static struct free_block *bins[MMAP_BIN_COUNT][BIN_LANES];
static uint8_t lane_to_fill[FINE_BIN_COUNT], lane_to_take[FINE_BIN_COUNT];
static uint64_t bin_bitmap[MMAP_BIN_COUNT / 64];
static struct heap_counters counters;
uint8_t mmap_region_map[MMAP_REGION_MAP_SIZE] SPARSE_ZEROED;
static uint64_t backend_clock; /* counts frees that take heap_lock: the backend's time */
static bool regions_kept_free; /* a region may be wholly free and waiting (unmap_kept_regions) */

static void region_bit_set(const struct region *region, bool present)
{
  uint64_t chunk = (uint64_t)(uintptr_t)region >> 22;
  __atomic_store_n(&mmap_region_map[chunk], (uint8_t)present, __ATOMIC_RELAXED);
}

/* ---- Address registry: which addresses are ours (backend_owns) ---------------------------- */

/* Open addressing with linear probing over region keys (the base address with bit 0 set, so
 * that a region never looks like a mapped payload at the same address) and mapped payloads. */
#define REGISTRY_BITS 18
#define REGISTRY_SIZE ((size_t)1 << REGISTRY_BITS)
static uintptr_t registry[REGISTRY_SIZE] SPARSE_ZEROED;
static size_t registry_count;

static size_t registry_slot(uintptr_t key)
{
  return (size_t)(((key >> 4) * 0x9e3779b97f4a7c15ull) >> (64 - REGISTRY_BITS));
}

static bool registry_add(uintptr_t key)
{
  if (registry_count >= REGISTRY_SIZE / 4 * 3)
    return false;
  size_t slot = registry_slot(key);
  while (registry[slot] != 0)
    slot = (slot + 1) & (REGISTRY_SIZE - 1);
  registry[slot] = key;
  registry_count++;
  return true;
}

static bool registry_has(uintptr_t key)
{
  for (size_t slot = registry_slot(key); registry[slot] != 0;
       slot = (slot + 1) & (REGISTRY_SIZE - 1))
    if (registry[slot] == key)
      return true;
  return false;
}

/* Remove key, shifting later entries of its probe run back (no tombstones). */
static void registry_remove(uintptr_t key)
{
  size_t slot = registry_slot(key);
  while (registry[slot] != key)
    slot = (slot + 1) & (REGISTRY_SIZE - 1);
  registry[slot] = 0;
  registry_count--;
  for (size_t next = (slot + 1) & (REGISTRY_SIZE - 1); registry[next] != 0;
       next = (next + 1) & (REGISTRY_SIZE - 1)) {
    size_t home = registry_slot(registry[next]);
    bool home_between = slot <= next ? (home > slot && home <= next)
                                     : (home > slot || home <= next);
    if (!home_between) {
      registry[slot] = registry[next];
      registry[next] = 0;
      slot = next;
    }
  }
}

/* ---- Blocks ------------------------------------------------------------------------------ */

static inline uint64_t *tag_of(char *block) { return (uint64_t *)block; }
static inline size_t size_of(char *block) { return tag_size(*tag_of(block)); }
static inline bool is_free(char *block) { return !(*tag_of(block) & TAG_IN_USE); }
static inline char *payload_of(char *block) { return block + 8; }
static inline char *block_of(void *payload) { return (char *)payload - 8; }
static inline char *next_block(char *block) { return block + size_of(block); }
static inline uint64_t *footer_of(char *block, size_t size) { return (uint64_t *)(block + size) - 1; }
static inline char *prev_block(char *block) { return block - *((uint64_t *)block - 1); }

static inline void set_prev_free(char *block, bool prev_free)
{
  if (prev_free)
    *tag_of(block) |= TAG_PREV_FREE;
  else
    *tag_of(block) &= ~TAG_PREV_FREE;
}

static inline struct region *region_of(const void *addr)
{
  return (struct region *)align_down_addr((uintptr_t)addr, MMAP_REGION_SIZE);
}

static inline uintptr_t region_key(const struct region *region)
{
  return (uintptr_t)region | 1;
}

static inline char *region_first_block(struct region *region)
{
  return (char *)region + align_up_addr(sizeof(struct region) + 8, 16) - 8;
}

static inline char *region_sentinel(struct region *region)
{
  return (char *)region + MMAP_REGION_SIZE - 8;
}

/* ---- Bins -------------------------------------------------------------------------------- */

/* Whether [block, block + size) is all of its region's blocks, the region not the current one
 * (whose top is a block of its own): a free such block lets the region go back whole. */
static inline bool is_whole_region_span(char *block, size_t size, struct region *region)
{
  return block == region_first_block(region) && block + size == region_sentinel(region) &&
         region != current_region;
}

static unsigned bin_index(size_t size)
{
  if (size <= 1024)
    return (unsigned)(size >> 4) - 2;
  unsigned top_bit = highest_bit(size);
  return FINE_BIN_COUNT + (top_bit - 10) * 4 + (unsigned)((size >> (top_bit - 2)) & 3);
}

/* A batch of blocks taken off one exact-size bin follows its lanes in turn: BIN_LANES
 * chains side by side, so that the cache misses on the list neighbours (the removal checks
 * the next block's back link) overlap instead of each waiting for the last, as they did in
 * one list (bench fragmentation: 29% of its time in bin_remove). The first block of a lane
 * has the lane's number in its back link (below 8: never a block's address), which a
 * removal of that block hands on to the next. */
static inline bool is_lane_mark(const struct free_block *prev)
{
  return (uintptr_t)prev < BIN_LANES;
}

static inline struct free_block *lane_mark(unsigned lane)
{
  return (struct free_block *)(uintptr_t)lane;
}

/* The lane whose turn it is in turns[] (lane_to_fill or lane_to_take), moving the turn on;
 * lane 0 for a bin of several sizes. */
static inline unsigned next_lane(uint8_t *turns, unsigned bin)
{
  return bin < FINE_BIN_COUNT ? turns[bin]++ % BIN_LANES : 0;
}

static inline bool bin_marked(unsigned bin)
{
  return (bin_bitmap[bin / 64] >> (bin % 64)) & 1;
}

static bool bin_is_empty(unsigned bin)
{
  for (unsigned lane = 0; lane < BIN_LANES; lane++)
    if (bins[bin][lane] != NULL)
      return false;
  return true;
}

static void bin_insert(char *block, size_t size)
{
  unsigned bin = bin_index(size);
  unsigned lane = next_lane(lane_to_fill, bin);
  struct free_block *node = (struct free_block *)block;
  node->prev = lane_mark(lane);
  node->next = bins[bin][lane];
  if (node->next != NULL)
    node->next->prev = node;
  bins[bin][lane] = node;
  bin_bitmap[bin / 64] |= 1ull << (bin % 64);
}

static void bin_remove(char *block)
{
  unsigned bin = bin_index(size_of(block));
  struct free_block *node = (struct free_block *)block;
  struct free_block *prev = node->prev;
  bool first = is_lane_mark(prev);
  if ((first ? bins[bin][(uintptr_t)prev] : prev->next) != node ||
      (node->next != NULL && node->next->prev != node))
    report_misuse("heap corruption: free list links damaged", payload_of(block), "malloc/free");
  if (first)
    bins[bin][(uintptr_t)prev] = node->next;
  else
    prev->next = node->next;
  if (node->next != NULL) {
    node->next->prev = prev;
    if (first) /* the lane's next removal checks the block after the new first one */
      __builtin_prefetch(node->next->next);
  }
  if (first && node->next == NULL && bin_is_empty(bin))
    bin_bitmap[bin / 64] &= ~(1ull << (bin % 64));
}

/* Take the first block of the next non-empty lane of a non-empty bin. */
static char *bin_take_first(unsigned bin)
{
  for (unsigned tries = 0; tries < BIN_LANES; tries++) {
    unsigned lane = next_lane(lane_to_take, bin);
    char *block = (char *)bins[bin][lane];
    if (block != NULL) {
      bin_remove(block);
      return block;
    }
  }
  report_misuse("heap corruption: a bin marked as holding blocks is empty", NULL, "malloc");
}

/* The first non-empty bin at or after bin, or MMAP_BIN_COUNT. */
static unsigned bin_first_nonempty(unsigned bin)
{
  for (unsigned word = bin / 64; word < MMAP_BIN_COUNT / 64; word++) {
    uint64_t bits = bin_bitmap[word];
    if (word == bin / 64)
      bits &= ~0ull << (bin % 64);
    if (bits != 0)
      return word * 64 + (unsigned)__builtin_ctzll(bits);
  }
  return MMAP_BIN_COUNT;
}

/* Take a free block of at least size bytes off the bins (first fit in the size's own bin, else
 * the head of the first larger non-empty bin); NULL when none fits. */
static char *bins_take(size_t size)
{
  unsigned bin = bin_index(size);
  if (bin >= FINE_BIN_COUNT)
    for (struct free_block *node = bins[bin][0]; node != NULL; node = node->next)
      if (tag_size(node->tag) >= size) {
        bin_remove((char *)node);
        return (char *)node;
      }
  if (bin < FINE_BIN_COUNT && bin_marked(bin))
    return bin_take_first(bin);
  unsigned larger = bin_first_nonempty(bin + 1);
  return larger == MMAP_BIN_COUNT ? NULL : bin_take_first(larger);
}

/* ---- Deferred blocks: small blocks handed back in batches, coalesced later --------------- */

/* A block of up to DEFER_MAX_BLOCK bytes that a thread cache hands back in a batch (its
 * overflow, or its flush at thread exit) is not coalesced at once: it goes on the LIFO list
 * of its exact size, from which the next batch of that size takes it back, without touching
 * its neighbours or a bin list (their cache misses were most of what a lone thread's overflow
 * cost: bench fragmentation, working_set). Its tag reads as a free block's (no U, no check
 * bits: a second free of it is a double free), word 1 holds the next block of its list
 * (hidden, safe-linking style: deferred_link), word 2 DEFER_MARK (odd: never a bin link); the
 * next block's P bit stays clear, so that no neighbour merges with it.
 *
 * Each size's list is DEFER_LANES lists (lanes), filled in turn and taken from in turn, the
 * next block of the lane just taken from prefetched: a batch that takes many blocks back
 * follows DEFER_LANES chains at once, so that it waits for one cache miss per DEFER_LANES
 * blocks rather than one per block (each block's link is in the block). A program that
 * mallocs 1.5 M blocks of 40 bytes, frees them all and mallocs them again spent 62% of its
 * time in deferred_take with one list: 130 ns a malloc (mimalloc 4.6); 4 lanes 43 ns, 8 lanes
 * 28-35 ns (55-64 without the prefetch). The bench's workloads, interleaved in alternating
 * order: perl-hash 0.779 -> 0.752 s, fragmentation and working_set within the noise.
 * deferred_lanes[list] has bit l set iff lane l of the list is not empty. The lists are coalesced
 * (deferred_coalesce) when a request finds no bin that fits while they hold more than
 * DEFER_SLACK bytes, before a new region is mapped, and by malloc_trim: memory waiting here
 * never makes the heap grow by more than DEFER_SLACK. */
#define DEFER_MAX_BLOCK 256 /* 1024 cost 2.4% more peak RSS in bench fragmentation */
#define DEFER_LIST_COUNT (DEFER_MAX_BLOCK / 16 - 1) /* one list per size 32, 48, ..., 256 */
#define DEFER_MARK 0x70616c6c6f634445ull /* "pallocDE" */
#define DEFER_SLACK ((size_t)32 << 10) /* at 256 KiB realloc_grow took 10% more page faults */

struct deferred_block {
  uint64_t tag;
  struct deferred_block *next; /* hidden: next ^ (address of this word >> 12) */
  uint64_t mark;               /* DEFER_MARK */
};

#define DEFER_LANES 8
static struct deferred_block *deferred[DEFER_LIST_COUNT][DEFER_LANES];
static uint8_t deferred_lanes[DEFER_LIST_COUNT]; /* bit l: lane l is not empty */
static uint8_t defer_lane_to_fill[DEFER_LIST_COUNT], defer_lane_to_take[DEFER_LIST_COUNT];
_Static_assert(DEFER_LANES <= 8, "deferred_lanes[] has a bit per lane");
static uint64_t deferred_bytes; /* in deferred blocks (counted in counters.free_bytes too) */

static inline bool is_deferred(char *block)
{
  return is_free(block) && ((struct deferred_block *)block)->mark == DEFER_MARK;
}

/* Whether a neighbour that is not the top may be merged with: free and not deferred. */
static inline bool is_binned_free(char *block) { return is_free(block) && !is_deferred(block); }

/* ---- Free blocks: making, coalescing, giving pages back ----------------------------------- */

/* A free block of at least MMAP_RELEASE_MIN bytes keeps, after its links, the release_stamp()
 * of when its pages last held data, or 0 once they are given back. */
static inline uint64_t *dirty_stamp_of(char *block) { return (uint64_t *)block + 3; }
/* Now, as the stamps of dirty free memory hold it (os_cycles): never 0. */
static inline uint64_t release_stamp(void) { return os_cycles() | 1; }

/* Release the whole pages inside a free block (its tag, links, stamp and footer stay). */
static void release_free_interior(char *block, size_t size)
{
  uintptr_t start = align_up_addr((uintptr_t)(dirty_stamp_of(block) + 1), os_page_size());
  uintptr_t end = align_down_addr((uintptr_t)block + size - 8, os_page_size());
  if (end > start)
    os_release((void *)start, end - start);
}

/* Write a free block's tag (keeping P) and footer and bin it, when the block after it has P set
 * already: the tail left when a free block is cut. (Not touching that block saves a miss that
 * stalled a third of bench fragmentation's refills: it lies past the hole they cut from.) */
static void make_free_tail(char *block, size_t size)
{
  *tag_of(block) = size | (*tag_of(block) & TAG_PREV_FREE);
  *footer_of(block, size) = size;
  if (size >= MMAP_RELEASE_MIN)
    *dirty_stamp_of(block) = release_stamp();
  bin_insert(block, size);
}

/* Write a free block's tag (keeping P) and footer, bin it and tell the next block. */
static void make_free(char *block, size_t size)
{
  make_free_tail(block, size);
  set_prev_free(block + size, true);
}

static void region_unmap(struct region *region)
{
  if (region->prev != NULL)
    region->prev->next = region->next;
  else
    regions = region->next;
  if (region->next != NULL)
    region->next->prev = region->prev;
  registry_remove(region_key(region));
  region_bit_set(region, false);
  if (!os_unmap(region, MMAP_REGION_SIZE)) {
    /* The kernel refused (mapping count): keep the region, empty, for later. */
    region->next = regions;
    region->prev = NULL;
    if (regions != NULL)
      regions->prev = region;
    regions = region;
    registry_add(region_key(region));
    region_bit_set(region, true);
    make_free(region_first_block(region), region_sentinel(region) - region_first_block(region));
    return;
  }
  counters.free_bytes -= (uint64_t)(region_sentinel(region) - region_first_block(region));
}

/* Give the top's dirty pages beyond pad bytes back to the OS, when there are at least
 * threshold bytes of them (the threshold keeps a steady workload from trimming and faulting
 * the same pages in a loop). */
static void trim_top(struct region *region, size_t pad, size_t threshold)
{
  char *top = region->top;
  uintptr_t start = align_up_addr((uintptr_t)top + 8 + pad, os_page_size());
  uintptr_t dirty_end = align_up_addr((uintptr_t)region->clean_from, os_page_size());
  uintptr_t end = align_down_addr((uintptr_t)region_sentinel(region), os_page_size());
  if (dirty_end > end)
    dirty_end = end;
  if (dirty_end > start && dirty_end - start >= threshold) {
    os_release((void *)start, dirty_end - start);
    region->clean_from = (char *)start;
  }
}

/* Free an in-use block of a region: coalesce with free neighbours (four cases) and with the
 * top, or bin it (a region left wholly free too: it waits, see "Giving pages back"). */
static void free_region_block(char *block)
{
  struct region *region = region_of(block);
  size_t size = size_of(block);
  counters.in_use_bytes -= size;
  counters.free_bytes += size;
  char *start = block;
  if (*tag_of(block) & TAG_PREV_FREE) {
    *tag_of(block) &= ~(TAG_IN_USE | TAG_CHECK_MASK); /* stale inside the merged block: must
                                                         not pass for an in-use tag */
    start = prev_block(block);
    bin_remove(start);
    size += size_of(start);
  }
  char *next = block + size_of(block);
  if (next == region->top) {
    *tag_of(start) = (size + size_of(next)) | (*tag_of(start) & TAG_PREV_FREE);
    region->top = start;
    if (region->top_dirty_since == 0)
      region->top_dirty_since = release_stamp();
    return;
  }
  if (is_binned_free(next)) {
    bin_remove(next);
    size += size_of(next);
  }
  *tag_of(start) &= ~TAG_IN_USE;
  if (is_whole_region_span(start, size, region))
    regions_kept_free = true;
  make_free(start, size); /* a region left wholly free waits too (release_idle_pages) */
}

/* ---- Deferred blocks: taking back and coalescing ---------------------------------------- */

static inline unsigned deferred_index(size_t size) { return (unsigned)(size >> 4) - 2; }
static inline size_t deferred_list_size(unsigned list) { return ((size_t)list + 2) << 4; }

static inline struct deferred_block *deferred_link(struct deferred_block *node,
                                                   struct deferred_block *link)
{
  return (struct deferred_block *)((uintptr_t)link ^ ((uintptr_t)&node->next >> 12));
}

/* Put an in-use block of size <= DEFER_MAX_BLOCK bytes (its tag checked) on its list; the
 * caller counts it (count_deferred) once for all the blocks of its batch. */
static inline void defer_block(char *block, size_t size)
{
  struct deferred_block *node = (struct deferred_block *)block;
  unsigned list = deferred_index(size);
  unsigned lane = defer_lane_to_fill[list]++ % DEFER_LANES;
  node->tag = size | (node->tag & TAG_PREV_FREE);
  node->next = deferred_link(node, deferred[list][lane]);
  node->mark = DEFER_MARK;
  deferred[list][lane] = node;
  deferred_lanes[list] |= (uint8_t)(1u << lane);
}

/* The first non-empty lane of a list from its turn to take on (the list is not empty),
 * moving the turn past it. */
static inline unsigned deferred_lane_to_take(unsigned list)
{
  unsigned turn = defer_lane_to_take[list] % DEFER_LANES;
  unsigned mask = deferred_lanes[list];
  unsigned rotated = (mask >> turn | mask << (DEFER_LANES - turn)) & ((1u << DEFER_LANES) - 1);
  unsigned lane = (turn + (unsigned)__builtin_ctz(rotated)) % DEFER_LANES;
  defer_lane_to_take[list] = (uint8_t)(lane + 1);
  return lane;
}

/* Count bytes of in-use blocks that defer_block put on their lists. */
static void count_deferred(size_t bytes)
{
  deferred_bytes += bytes;
  counters.in_use_bytes -= bytes;
  counters.free_bytes += bytes;
}

/* Take the most recently deferred block of exactly size bytes back, in use (unsealed); NULL
 * when there is none. A damaged block or link (a write after free) stops the process. */
static char *deferred_take(size_t size)
{
  unsigned list = deferred_index(size);
  if (deferred_lanes[list] == 0)
    return NULL;
  unsigned lane = deferred_lane_to_take(list);
  struct deferred_block *node = deferred[list][lane];
  struct deferred_block *next = deferred_link(node, node->next);
  if ((node->tag & ~TAG_PREV_FREE) != size || node->mark != DEFER_MARK ||
      (next != NULL && (((uintptr_t)next & 15) != 8 || !mmap_in_region(next))))
    report_misuse("heap corruption: a deferred free block is damaged (write after free?)",
                  payload_of((char *)node), "malloc");
  deferred[list][lane] = next;
  if (next != NULL)
    __builtin_prefetch(next); /* taken DEFER_LANES blocks from now, in a batch */
  else
    deferred_lanes[list] &= (uint8_t)~(1u << lane);
  node->mark = 0;
  node->tag = size | TAG_IN_USE | (node->tag & TAG_PREV_FREE);
  deferred_bytes -= size;
  counters.free_bytes -= size;
  counters.in_use_bytes += size;
  return (char *)node;
}

static bool check_neighbours(struct region *region, char *block, const char *fn);

/* Coalesce every deferred block as a free would: a deferred neighbour not reached yet looks in
 * use and merges when its own turn comes (glibc's malloc_consolidate). Each block costs the
 * cache misses of its neighbours and of their bin lists. */
static void deferred_coalesce_each(void)
{
  for (unsigned list = 0; list < DEFER_LIST_COUNT; list++)
    while (deferred_lanes[list] != 0) {
      char *block = deferred_take(deferred_list_size(list));
      if (check_neighbours(region_of(block), block, "malloc"))
        free_region_block(block);
    }
}

/* Make the free run [run, end) of region one binned free block (a run of one binned block
 * keeps its page-release stamp; a run that is all of its region waits as any). */
static void sweep_close_run(struct region *region, char *run, char *end, bool merged)
{
  size_t size = (size_t)(end - run);
  if (is_whole_region_span(run, size, region))
    regions_kept_free = true;
  *tag_of(run) = size;
  *footer_of(run, size) = size;
  /* A lone block keeps its stamp; only the others read the clock (rdtsc: tens of cycles). */
  if (size >= MMAP_RELEASE_MIN && merged)
    *dirty_stamp_of(run) = release_stamp();
  bin_insert(run, size);
  set_prev_free(end, true);
}

/* Walk a region in address order, joining every run of free blocks (binned or deferred; the
 * bins and the deferred lists were emptied by the caller) into one binned block, or into the
 * top when the run reaches it. Sequential: the hardware prefetches what it reads. */
static void region_sweep(struct region *region)
{
  char *sentinel = region_sentinel(region);
  char *run = NULL;
  bool merged = false;
  for (char *block = region_first_block(region); block < sentinel;) {
    uint64_t tag = *tag_of(block);
    size_t size = tag_size(tag);
    if (size < BACKEND_MIN_BLOCK || size > (size_t)(sentinel - block))
      report_misuse("heap corruption: a block tag is damaged", payload_of(block), "malloc");
    if (block == region->top) {
      if (run != NULL) {
        *tag_of(run) = (size_t)(block - run) + size;
        region->top = run;
        if (region->top_dirty_since == 0)
          region->top_dirty_since = release_stamp();
      }
      return;
    }
    if (tag & TAG_IN_USE) {
      if (run != NULL)
        sweep_close_run(region, run, block, merged);
      run = NULL;
    } else if (run == NULL) {
      run = block;
      merged = is_deferred(block);
    } else {
      merged = true;
    }
    if (!(tag & TAG_IN_USE) && is_deferred(block))
      ((struct deferred_block *)block)->mark = 0;
    block += size;
  }
  if (run != NULL)
    sweep_close_run(region, run, sentinel, merged);
}

/* Whether the deferred blocks are few enough to coalesce one by one (else: a sweep). */
static bool deferred_few(void)
{
  return deferred_bytes * 8 < counters.in_use_bytes + counters.free_bytes;
}

/* Coalesce every deferred block: block by block while they are few, else by sweeping every
 * region in address order and rebuilding the bins (cheaper than a miss per neighbour once a
 * good part of the heap is deferred: bench fragmentation). */
static void deferred_coalesce(void)
{
  if (deferred_few()) {
    deferred_coalesce_each();
    return;
  }
  memset(bins, 0, sizeof bins);
  memset(bin_bitmap, 0, sizeof bin_bitmap);
  memset(deferred, 0, sizeof deferred);
  memset(deferred_lanes, 0, sizeof deferred_lanes);
  deferred_bytes = 0;
  for (struct region *region = regions, *next; region != NULL; region = next) {
    next = region->next;
    region_sweep(region);
  }
}

/* ---- Regions and the top ----------------------------------------------------------------- */

/* Turn the current region's top into an ordinary free block before another region takes over. */
static void retire_top(struct region *region)
{
  char *top = region->top;
  if (top == NULL)
    return;
  region->top = NULL;
  make_free(top, size_of(top));
}

static struct region *region_create(void)
{
  struct region *region = os_map_aligned(MMAP_REGION_SIZE, MMAP_REGION_SIZE);
  if (region == NULL)
    return NULL;
  if (!registry_add(region_key(region))) {
    os_unmap(region, MMAP_REGION_SIZE);
    return NULL;
  }
  region->magic = REGION_MAGIC;
  region_bit_set(region, true);
  char *first = region_first_block(region);
  size_t top_size = (size_t)(region_sentinel(region) - first);
  *tag_of(first) = top_size;
  *tag_of(region_sentinel(region)) = TAG_IN_USE | TAG_PREV_FREE;
  region->top = first;
  region->clean_from = first + 8;
  region->prev = NULL;
  region->next = regions;
  if (regions != NULL)
    regions->prev = region;
  regions = region;
  counters.free_bytes += top_size;
  if (current_region != NULL)
    retire_top(current_region);
  current_region = region;
  return region;
}

/* Zero a block carved from the top, sparing what is known to be zero already. */
static void zero_carved(char *block, size_t size, char *clean_from)
{
  char *payload = payload_of(block);
  char *end = block + size;
  if (clean_from > payload)
    memset(payload, 0, (size_t)((clean_from < end ? clean_from : end) - payload));
}

/* Carve size bytes from the current region's top (the whole top when the rest would be too
 * small to be a block); NULL when the top is missing or too small. */
static char *top_carve(size_t size, unsigned flags)
{
  struct region *region = current_region;
  char *top = region ? region->top : NULL;
  if (top == NULL || size_of(top) < size)
    return NULL;
  size_t top_size = size_of(top);
  char *clean_from = region->clean_from;
  uint64_t prev_free = *tag_of(top) & TAG_PREV_FREE;
  if (top_size - size >= BACKEND_MIN_BLOCK) {
    char *rest = top + size;
    *tag_of(rest) = top_size - size;
    region->top = rest;
    if (region->clean_from < rest + 8)
      region->clean_from = rest + 8;
  } else {
    size = top_size;
    region->top = NULL;
    set_prev_free(top + size, false);
  }
  *tag_of(top) = size | TAG_IN_USE | prev_free;
  if (flags & BACKEND_ZERO)
    zero_carved(top, size, clean_from);
  counters.free_bytes -= size;
  counters.in_use_bytes += size;
  return top;
}

/* Split a block taken off the bins to size bytes, binning the rest, and mark it in use. */
static void place(char *block, size_t size, unsigned flags)
{
  size_t block_size = size_of(block);
  if (block_size - size >= BACKEND_MIN_BLOCK) {
    char *rest = block + size;
    *tag_of(rest) = 0;
    make_free_tail(rest, block_size - size);
  } else {
    size = block_size;
    set_prev_free(block + size, false);
  }
  *tag_of(block) = size | TAG_IN_USE | (*tag_of(block) & TAG_PREV_FREE);
  if (flags & BACKEND_ZERO)
    memset(payload_of(block), 0, size - 8);
  counters.free_bytes -= size;
  counters.in_use_bytes += size;
}

/* A free block of at least size bytes off the bins, coalescing the deferred blocks first when
 * no bin fits and they hold more than DEFER_SLACK bytes; NULL when none fits. */
static char *bins_take_coalescing(size_t size)
{
  char *block = bins_take(size);
  if (block == NULL && deferred_bytes > DEFER_SLACK) {
    deferred_coalesce();
    block = bins_take(size);
  }
  return block;
}

/* A new region's top, once every deferred block is coalesced and still none fits. */
static char *carve_from_new_region(size_t size, unsigned flags)
{
  if (deferred_bytes != 0) {
    deferred_coalesce();
    char *block = bins_take(size);
    if (block != NULL) {
      place(block, size, flags);
      return block;
    }
  }
  return region_create() != NULL ? top_carve(size, flags) : NULL;
}

static char *alloc_region_block(size_t size, unsigned flags)
{
  char *block = size <= DEFER_MAX_BLOCK ? deferred_take(size) : NULL;
  if (block != NULL && (flags & BACKEND_ZERO))
    memset(payload_of(block), 0, size - 8);
  if (block == NULL && (block = bins_take_coalescing(size)) != NULL)
    place(block, size, flags);
  if (block == NULL)
    block = top_carve(size, flags);
  if (block == NULL)
    block = carve_from_new_region(size, flags);
  if (block != NULL)
    block_seal(payload_of(block));
  return block;
}

/* ---- Blocks mapped on their own ---------------------------------------------------------- */

static inline struct mapped_header *mapped_header_of(void *payload)
{
  return (struct mapped_header *)payload - 1;
}

static void mapped_link(struct mapped_header *header)
{
  header->prev = NULL;
  header->next = mapped_blocks;
  if (mapped_blocks != NULL)
    mapped_blocks->prev = header;
  mapped_blocks = header;
}

static void mapped_unlink(struct mapped_header *header)
{
  if (header->prev != NULL)
    header->prev->next = header->next;
  else
    mapped_blocks = header->next;
  if (header->next != NULL)
    header->next->prev = header->prev;
}

/* ---- The mapping cache: freed mappings kept for reuse ------------------------------------- */

/* A page fault costs microseconds: a program that frees and allocates big blocks in a loop
 * would fault every page of every block in again. Freed mappings of up to a quarter of the
 * cache are kept (resident) and reused by the next big block they fit; a cached mapping not
 * reused within MAPPING_CACHE_MAX_AGE backend calls, or pushed out by newer ones, is unmapped,
 * and malloc_trim() empties the cache. */
#define MAPPING_CACHE_SLOTS 16
#define MAPPING_CACHE_MAX_BYTES ((size_t)64 << 20)
#define MAPPING_CACHE_MAX_AGE 4096
#define HOUSEKEEPING_EVERY 64 /* frees between two looks at idle pages and cache ages */
/* How long free pages stay resident before they go back: 2^28 time-stamp counter cycles, about
 * 100 ms at 2.7 GHz. Counted in frees (256 until session 10), a program that freed much at
 * once (the end of a phase) counted that time out within its own frees and gave back pages
 * it faulted in again at once (bench realloc_grow, large: 15% of their time). mimalloc 2.1
 * waits 10 ms by default (purge_delay), jemalloc decays over 10 s (dirty_decay_ms). */
#define PAGE_RELEASE_DELAY ((uint64_t)1 << 28)
#define MAPPING_CACHE_MAX_ENTRY (MAPPING_CACHE_MAX_BYTES / 4) /* the largest mapping kept */
#define MAPPING_GRANULE ((size_t)64 << 10) /* mapped block lengths are multiples of this, so
                                             pieces of cached mappings fit each other */
#define MAPPING_SPLIT_MIN ((size_t)64 << 10) /* a longer unused tail goes back to the cache */

struct cached_mapping {
  char *start;       /* NULL for an empty slot */
  size_t len;
  uint64_t freed_at; /* backend_clock when it was cached */
};

static struct cached_mapping mapping_cache[MAPPING_CACHE_SLOTS];
static size_t mapping_cache_bytes;

/* The slot of the smallest cached mapping of at least len bytes, or when none is that large
 * (and larger is false) the largest one; -1 when the cache is empty. heap_lock held. */
static int mapping_cache_find(size_t len, bool *larger)
{
  int best = -1, largest = -1;
  for (int i = 0; i < MAPPING_CACHE_SLOTS; i++) {
    if (mapping_cache[i].start == NULL)
      continue;
    if (mapping_cache[i].len >= len && (best < 0 || mapping_cache[i].len < mapping_cache[best].len))
      best = i;
    if (largest < 0 || mapping_cache[i].len > mapping_cache[largest].len)
      largest = i;
  }
  *larger = best >= 0;
  return best >= 0 ? best : largest;
}

static struct cached_mapping mapping_cache_remove(int slot)
{
  struct cached_mapping taken = mapping_cache[slot];
  mapping_cache[slot].start = NULL;
  mapping_cache_bytes -= taken.len;
  return taken;
}

static void mapping_cache_evict(int slot, struct cached_mapping *evicted, size_t *evicted_count)
{
  evicted[(*evicted_count)++] = mapping_cache[slot];
  mapping_cache_bytes -= mapping_cache[slot].len;
  mapping_cache[slot].start = NULL;
}

/* The slot of the oldest cached mapping (the cache is not empty). */
static int mapping_cache_oldest(void)
{
  int oldest = -1;
  for (int i = 0; i < MAPPING_CACHE_SLOTS; i++)
    if (mapping_cache[i].start != NULL &&
        (oldest < 0 || mapping_cache[i].freed_at < mapping_cache[oldest].freed_at))
      oldest = i;
  return oldest;
}

/* The slot to fill: an empty one, else the oldest (evicted into evicted[]). */
static int mapping_cache_slot(struct cached_mapping *evicted, size_t *evicted_count)
{
  for (int i = 0; i < MAPPING_CACHE_SLOTS; i++)
    if (mapping_cache[i].start == NULL)
      return i;
  int oldest = mapping_cache_oldest();
  mapping_cache_evict(oldest, evicted, evicted_count);
  return oldest;
}

/* Evict the mappings not reused for MAPPING_CACHE_MAX_AGE backend calls; heap_lock held. */
static void mapping_cache_age(struct cached_mapping *evicted, size_t *evicted_count)
{
  for (int i = 0; i < MAPPING_CACHE_SLOTS; i++)
    if (mapping_cache[i].start != NULL &&
        backend_clock - mapping_cache[i].freed_at > MAPPING_CACHE_MAX_AGE)
      mapping_cache_evict(i, evicted, evicted_count);
}

/* Join start..start+len with the cached mappings just before and after it (pieces of one
 * mapping split by mapping_get), up to the largest size the cache keeps. heap_lock held. */
static void mapping_cache_merge_neighbours(char **start, size_t *len)
{
  for (int i = 0; i < MAPPING_CACHE_SLOTS; i++) {
    struct cached_mapping *other = &mapping_cache[i];
    if (other->start == NULL || other->len + *len > MAPPING_CACHE_MAX_ENTRY)
      continue;
    if (other->start + other->len == *start || *start + *len == other->start) {
      struct cached_mapping joined = mapping_cache_remove(i);
      if (joined.start < *start)
        *start = joined.start;
      *len += joined.len;
      i = -1; /* look again: the joined piece may touch another one */
    }
  }
}

/* Cache a freed mapping, or hand it back in evicted[] with whatever it pushes out (aged or
 * over the byte budget); heap_lock held. Returns how many mappings the caller must unmap. */
static size_t mapping_cache_put(char *start, size_t len, struct cached_mapping *evicted)
{
  size_t evicted_count = 0;
  mapping_cache_age(evicted, &evicted_count);
  mapping_cache_merge_neighbours(&start, &len);
  if (len > MAPPING_CACHE_MAX_ENTRY) {
    evicted[evicted_count++] = (struct cached_mapping){ start, len, 0 };
    return evicted_count;
  }
  while (mapping_cache_bytes + len > MAPPING_CACHE_MAX_BYTES)
    mapping_cache_evict(mapping_cache_oldest(), evicted, &evicted_count);
  int slot = mapping_cache_slot(evicted, &evicted_count);
  mapping_cache[slot] = (struct cached_mapping){ start, len, backend_clock };
  mapping_cache_bytes += len;
  return evicted_count;
}

/* Unmap region if it is one binned free block and not the current region; whether it was.
 * heap_lock held. */
static bool unmap_if_wholly_free(struct region *region)
{
  char *first = region_first_block(region);
  if (!is_binned_free(first) || !is_whole_region_span(first, size_of(first), region))
    return false;
  bin_remove(first);
  region_unmap(region);
  return true;
}

/* Whether memory stamped dirty (release_stamp) has stayed free long enough to go back. */
static inline bool stayed_free(uint64_t stamp, uint64_t now_stamp)
{
  return stamp != 0 && now_stamp - stamp >= PAGE_RELEASE_DELAY; /* a clock gone back: at once */
}

/* Give back the pages of free blocks and of tops that have stayed free for
 * PAGE_RELEASE_DELAY: memory freed and soon reused is not faulted in again, memory left
 * free is returned at the first look after that. heap_lock held. */
static void release_idle_pages(void)
{
  uint64_t now_stamp = release_stamp();
  for (struct region *region = regions; region != NULL; region = region->next)
    if (region->top != NULL && stayed_free(region->top_dirty_since, now_stamp)) {
      trim_top(region, MMAP_TOP_PAD, os_page_size());
      region->top_dirty_since = 0;
    }
  for (unsigned bin = bin_index(MMAP_RELEASE_MIN); bin < MMAP_BIN_COUNT; bin++)
    for (struct free_block *node = bins[bin][0], *next; node != NULL; node = next) {
      next = node->next;
      uint64_t *stamp = dirty_stamp_of((char *)node);
      if (tag_size(node->tag) < MMAP_RELEASE_MIN || !stayed_free(*stamp, now_stamp))
        continue;
      if (!unmap_if_wholly_free(region_of(node))) {
        release_free_interior((char *)node, tag_size(node->tag));
        *stamp = 0;
      }
    }
}

/* Unmap the regions left wholly free and kept for reuse (heap_lock held): before palloc maps
 * memory of another kind (a block mapped on its own), which they cannot serve, so that they
 * and it are not resident together. */
static void unmap_kept_regions(void)
{
  if (!regions_kept_free)
    return;
  regions_kept_free = false;
  for (struct region *region = regions, *next; region != NULL; region = next) {
    next = region->next;
    unmap_if_wholly_free(region);
  }
}

/* Count a free; now and then, release idle pages and evict aged mappings (heap_lock held).
 * Returns how many mappings the caller must unmap once the lock is released. */
static size_t tick_and_age(struct cached_mapping *evicted)
{
  size_t evicted_count = 0;
  if (++backend_clock % HOUSEKEEPING_EVERY != 0)
    return 0;
  release_idle_pages();
  if (mapping_cache_bytes != 0)
    mapping_cache_age(evicted, &evicted_count);
  return evicted_count;
}

static void unmap_all(const struct cached_mapping *mappings, size_t count)
{
  for (size_t i = 0; i < count; i++)
    os_unmap(mappings[i].start, mappings[i].len);
}

/* ---- Mapped blocks: allocation and free -------------------------------------------------- */

/* Cached address space for len bytes, under heap_lock: the smallest cached mapping that is
 * large enough, its tail beyond len going back to the cache; else the largest one, which the
 * caller grows. NULL when the cache is empty. */
static struct cached_mapping mapping_cache_take(size_t len, bool *large_enough,
                                                struct cached_mapping *evicted,
                                                size_t *evicted_count)
{
  struct cached_mapping taken = { NULL, 0, 0 };
  int slot = mapping_cache_find(len, large_enough);
  if (slot < 0)
    return taken;
  taken = mapping_cache_remove(slot);
  if (*large_enough && taken.len - len >= MAPPING_SPLIT_MIN) {
    *evicted_count = mapping_cache_put(taken.start + len, taken.len - len, evicted);
    taken.len = len;
  }
  return taken;
}

/* Address space for a mapped block: cached memory when there is some (pages already faulted
 * in: a piece of a larger cached mapping, or a smaller one grown with mremap), else a new
 * mapping. Sets *reused when the memory is not fresh. */
static char *mapping_get(size_t len, size_t alignment, size_t *got_len, bool *reused)
{
  *reused = false;
  *got_len = len;
  lock_acquire(&heap_lock);
  unmap_kept_regions();
  if (alignment > 16 || len > MAPPING_CACHE_MAX_ENTRY) {
    lock_release(&heap_lock);
    return os_map(len);
  }
  struct cached_mapping evicted[MAPPING_CACHE_SLOTS + 1];
  size_t evicted_count = 0;
  bool large_enough;
  struct cached_mapping cached = mapping_cache_take(len, &large_enough, evicted, &evicted_count);
  lock_release(&heap_lock);
  unmap_all(evicted, evicted_count);
  if (cached.start != NULL && !large_enough) { /* its pages move, they do not fault in again */
    char *grown = os_remap(cached.start, cached.len, len);
    if (grown == NULL)
      os_unmap(cached.start, cached.len);
    cached = (struct cached_mapping){ grown, len, 0 };
  }
  if (cached.start == NULL)
    return os_map(len);
  *reused = true;
  *got_len = cached.len;
  return cached.start;
}

/* Map a block of at least size bytes whose payload is aligned to alignment; a big alignment's
 * slack pages at both ends are unmapped. */
static void *mapped_alloc(size_t alignment, size_t size, unsigned flags)
{
  size_t page = os_page_size();
  size_t needed = sizeof(struct mapped_header) + (alignment > 16 ? alignment : 0) + size;
  size_t map_len, raw_len;
  bool reused;
  if (needed < size || !align_up_checked(needed, MAPPING_GRANULE, &map_len))
    return NULL;
  char *raw = mapping_get(map_len, alignment, &raw_len, &reused);
  if (raw == NULL)
    return NULL;
  char *payload = (char *)align_up_addr((uintptr_t)raw + sizeof(struct mapped_header),
                                        alignment > 16 ? alignment : 16);
  char *map_start = (char *)align_down_addr((uintptr_t)(payload - sizeof(struct mapped_header)), page);
  char *map_end = (char *)align_up_addr((uintptr_t)payload + size, page);
  if (alignment <= 16) /* keep the whole granule (and a reused mapping's short tail) */
    map_end = raw + raw_len;
  if (map_start > raw)
    os_unmap(raw, (size_t)(map_start - raw));
  if (raw + raw_len > map_end)
    os_unmap(map_end, (size_t)(raw + raw_len - map_end));
  struct mapped_header *header = mapped_header_of(payload);
  header->map_len = (size_t)(map_end - map_start);
  header->magic = MAPPED_MAGIC;
  header->map_start = map_start;
  header->tag = tag_sealed(payload, (size_t)(map_end - payload) | TAG_MAPPED | TAG_IN_USE);
  if (reused && (flags & BACKEND_ZERO))
    memset(payload, 0, tag_size(header->tag) - 8);
  lock_acquire(&heap_lock);
  if (!registry_add((uintptr_t)payload)) {
    lock_release(&heap_lock);
    os_unmap(map_start, header->map_len);
    return NULL;
  }
  mapped_link(header);
  counters.mapped_block_bytes += tag_size(header->tag);
  lock_release(&heap_lock);
  return payload;
}

/* Retire a mapped block into the mapping cache; called with heap_lock held, releases it. */
static void mapped_free_and_unlock(void *payload)
{
  struct mapped_header *header = mapped_header_of(payload);
  if (header->magic != MAPPED_MAGIC || !tag_seal_ok(payload, header->tag)) {
    report_misuse_or_continue("heap corruption: damaged mapped block header", payload, "free");
    lock_release(&heap_lock); /* PALLOC_ON_MISUSE=continue: the block is leaked */
    return;
  }
  mapped_unlink(header);
  registry_remove((uintptr_t)payload);
  counters.mapped_block_bytes -= tag_size(header->tag);
  header->magic = 0;
  backend_clock++;
  struct cached_mapping evicted[MAPPING_CACHE_SLOTS + 1];
  size_t evicted_count = mapping_cache_put(header->map_start, header->map_len, evicted);
  lock_release(&heap_lock);
  unmap_all(evicted, evicted_count);
}

/* ---- The backend interface --------------------------------------------------------------- */

int backend_init(void)
{
  os_page_size();
  return 0;
}

void *backend_alloc(size_t block_size, unsigned flags)
{
  if (block_size >= MMAP_MAPPED_THRESHOLD)
    return mapped_alloc(16, block_size, flags);
  lock_acquire(&heap_lock);
  char *block = alloc_region_block(block_size, flags);
  lock_release(&heap_lock);
  return block ? payload_of(block) : NULL;
}

/* A batch (a thread cache's refill) starts a cache line: its first payload is BATCH_LINE-
 * aligned, so that one thread's blocks share no line with the blocks before them, which other
 * threads may hold (bench false_sharing: two threads' first 8-byte blocks were neighbours in
 * one line, and each thread's writes slowed the other's 3x). The bytes to skip at block for
 * that: 0, or at least a minimal block's worth, which stays free. */
#define BATCH_LINE 64
#define BATCH_LINE_MAX_BLOCK 512

static size_t line_gap(char *block)
{
  size_t gap = (size_t)(-(uintptr_t)payload_of(block) & (BATCH_LINE - 1));
  return gap != 0 && gap < BACKEND_MIN_BLOCK ? gap + BATCH_LINE : gap;
}

/* Cut a block taken off the bins into as many in-use blocks of size bytes as it holds, up to
 * count, storing their payloads: one bin removal and one insertion for the lot instead of one
 * each (the bin lists' neighbours are cache misses). With line_start, the first block starts
 * a cache line when the block has room for the gap, which goes back to the bins. The rest is
 * binned as place() does, or joins the last block when it is too small to be a block.
 * Returns how many were cut. */
static size_t carve_batch(char *block, size_t size, void **payloads, size_t count,
                          bool line_start)
{
  size_t gap = line_start ? line_gap(block) : 0;
  if (gap != 0 && size_of(block) >= gap + size) {
    size_t whole = size_of(block);
    make_free(block, gap);
    block += gap;
    *tag_of(block) = (whole - gap) | TAG_PREV_FREE;
  }
  size_t block_size = size_of(block);
  uint64_t prev_free = *tag_of(block) & TAG_PREV_FREE;
  size_t cut = block_size / size < count ? block_size / size : count;
  size_t rest = block_size - cut * size;
  if (rest >= BACKEND_MIN_BLOCK) {
    char *rest_block = block + cut * size;
    *tag_of(rest_block) = 0;
    make_free_tail(rest_block, rest);
  } else {
    set_prev_free(block + block_size, false);
  }
  for (size_t i = 0; i < cut; i++) {
    char *piece = block + i * size;
    size_t piece_size = i + 1 == cut && rest < BACKEND_MIN_BLOCK ? size + rest : size;
    *tag_of(piece) = piece_size | TAG_IN_USE | (i == 0 ? prev_free : 0);
    block_seal(payload_of(piece));
    payloads[i] = payload_of(piece);
  }
  size_t taken = rest < BACKEND_MIN_BLOCK ? block_size : cut * size;
  counters.free_bytes -= taken;
  counters.in_use_bytes += taken;
  return cut;
}

/* Cut up to count blocks of size bytes from the current region's top in one carve (the top
 * keeps at least a minimal block), the first starting a cache line with line_start (the gap
 * before it is freed); how many were cut. */
static size_t carve_batch_from_top(size_t size, void **payloads, size_t count, bool line_start)
{
  char *top = current_region ? current_region->top : NULL;
  if (top == NULL)
    return 0;
  size_t gap = line_start ? line_gap(top) : 0;
  if (size_of(top) < gap + size + BACKEND_MIN_BLOCK)
    return 0;
  char *gap_block = gap != 0 ? top_carve(gap, 0) : NULL;
  top = current_region->top;
  size_t fit = (size_of(top) - BACKEND_MIN_BLOCK) / size;
  size_t cut = fit < count ? fit : count;
  char *run = top_carve(cut * size, 0);
  uint64_t prev_free = *tag_of(run) & TAG_PREV_FREE;
  for (size_t i = 0; i < cut; i++) {
    char *piece = run + i * size;
    *tag_of(piece) = size | TAG_IN_USE | (i == 0 ? prev_free : 0);
    block_seal(payload_of(piece));
    payloads[i] = payload_of(piece);
  }
  if (gap_block != NULL)
    free_region_block(gap_block); /* its upper neighbour is the run: it stays below it */
  return cut;
}

size_t backend_alloc_batch(size_t block_size, void **payloads, size_t count)
{
  size_t got = 0;
  /* Only a thread's first refill of a small class asks for one block (the batches double
   * after): that block, the one two threads would write side by side, starts a line. Bigger
   * batches are not aligned: that would leave a gap and skip small free blocks at every
   * refill (churn's peak RSS 1.3 -> 2.8 MiB when every batch was); nor are the big classes
   * (batches of one at every refill; their blocks span many lines). */
  bool line_start = count == 1 && block_size <= BATCH_LINE_MAX_BLOCK;
  bool deferrable = block_size <= DEFER_MAX_BLOCK && !line_start;
  lock_acquire(&heap_lock);
  while (deferrable && got < count) {
    char *block = deferred_take(block_size);
    if (block == NULL)
      break;
    block_seal(payload_of(block));
    payloads[got++] = payload_of(block);
  }
  while (got < count) {
    char *block = bins_take_coalescing(block_size);
    if (block != NULL && line_start && size_of(block) < line_gap(block) + block_size) {
      make_free(block, size_of(block)); /* too small to start a line: back to its bin */
      block = NULL;
    }
    if (block != NULL) {
      got += carve_batch(block, block_size, payloads + got, count - got, line_start);
      continue;
    }
    size_t cut = carve_batch_from_top(block_size, payloads + got, count - got, line_start);
    if (cut != 0) {
      got += cut;
      continue;
    }
    block = alloc_region_block(block_size, 0);
    if (block == NULL)
      break;
    payloads[got++] = payload_of(block);
  }
  lock_release(&heap_lock);
  return got;
}

/* Give the first gap bytes of an in-use block back as a free block of their own. */
static char *cut_front(char *block, size_t gap)
{
  size_t size = size_of(block);
  char *aligned = block + gap;
  *tag_of(aligned) = (size - gap) | TAG_IN_USE;
  *tag_of(block) = gap | TAG_IN_USE | (*tag_of(block) & TAG_PREV_FREE);
  free_region_block(block);
  return aligned;
}

void *backend_alloc_aligned(size_t alignment, size_t block_size, unsigned flags)
{
  if (alignment > MAX_ALIGNMENT || block_size > SIZE_MAX - alignment - BACKEND_MIN_BLOCK)
    return NULL;
  size_t padded = block_size + alignment + BACKEND_MIN_BLOCK;
  if (padded >= MMAP_MAPPED_THRESHOLD)
    return mapped_alloc(alignment, block_size, flags);
  lock_acquire(&heap_lock);
  char *block = alloc_region_block(padded, flags);
  if (block != NULL) {
    uintptr_t aligned = align_up_addr((uintptr_t)payload_of(block), alignment);
    if (aligned != (uintptr_t)payload_of(block) && aligned - (uintptr_t)payload_of(block) < BACKEND_MIN_BLOCK)
      aligned += alignment;
    if (aligned != (uintptr_t)payload_of(block))
      block = cut_front(block, aligned - (uintptr_t)payload_of(block));
    block_seal(payload_of(block));
  }
  lock_release(&heap_lock);
  if (block == NULL)
    return NULL;
  backend_resize(payload_of(block), block_size);
  return payload_of(block);
}

/* Before a block is coalesced: the free neighbours it will be merged with must be what their
 * tags and footers say (an overflow out of this block, or into it, shows here). A free tag is
 * exactly size | P (no U, no check bits), its size stays inside the region and its footer
 * repeats the size (the top has no footer). An in-use neighbour's tag is verified when that
 * block is freed (its check bits); one that an overflow made look free fails here.
 * Each check aborts on damage, or with PALLOC_ON_MISUSE=continue reports it and answers false:
 * the block is then leaked, never reused. */
static bool damage_found(const char *problem, char *block, const char *fn)
{
  report_misuse_or_continue(problem, payload_of(block), fn);
  return false;
}

static inline bool check_next(struct region *region, char *block, const char *fn)
{
  char *next = next_block(block);
  uint64_t tag = *tag_of(next);
  if (tag & TAG_IN_USE)
    return true;
  size_t size = tag_size(tag);
  if ((tag & ~TAG_PREV_FREE) != size || size > (size_t)(region_sentinel(region) - next) ||
      (next != region->top && !is_deferred(next) && *footer_of(next, size) != size))
    return damage_found("heap corruption: the next block's tag is damaged (overflow?)", block,
                        fn);
  return true;
}

static inline bool check_neighbours(struct region *region, char *block, const char *fn)
{
  if (!check_next(region, block, fn))
    return false;
  if (!(*tag_of(block) & TAG_PREV_FREE))
    return true;
  uint64_t prev_size = *((uint64_t *)block - 1);
  if (prev_size > (size_t)(block - region_first_block(region)) || prev_size < BACKEND_MIN_BLOCK ||
      (*tag_of(block - prev_size) & ~TAG_PREV_FREE) != prev_size)
    return damage_found("heap corruption: the previous block's footer or tag is damaged", block,
                        fn);
  return true;
}

/* Whether tag is the sound tag of an in-use region block at block: in use, sealed, and
 * within its region. */
static inline bool own_tag_sound(char *block, uint64_t tag)
{
  size_t size = tag_size(tag);
  struct region *region = region_of(block);
  return (tag & (TAG_IN_USE | TAG_RESERVED)) == TAG_IN_USE && size >= BACKEND_MIN_BLOCK &&
         tag_seal_ok(payload_of(block), tag) && block + size <= region_sentinel(region) &&
         block >= region_first_block(region);
}

/* Report the unsound tag of a block handed back: a double free or a damaged tag. */
static __attribute__((noinline, cold)) bool own_tag_damage(char *block, uint64_t tag, const char *fn)
{
  if (!(tag & TAG_IN_USE))
    return damage_found("double free", block, fn);
  return damage_found("heap corruption: damaged block tag", block, fn);
}

/* Check the tag of an in-use region block handed back (inline: backend_free_batch checks
 * every block a thread cache flushes; the report is out of line). */
static inline bool check_own_tag(char *block, const char *fn)
{
  uint64_t tag = *tag_of(block);
  return likely(own_tag_sound(block, tag)) || own_tag_damage(block, tag, fn);
}

/* Check an in-use region block handed back, and the neighbours it will merge with. */
static bool check_freeable(char *block, const char *fn)
{
  return check_own_tag(block, fn) && check_neighbours(region_of(block), block, fn);
}

static void free_locked(void *payload)
{
  char *block = block_of(payload);
  if (check_freeable(block, "free"))
    free_region_block(block);
}

void backend_free(void *payload)
{
  struct cached_mapping evicted[MAPPING_CACHE_SLOTS];
  lock_acquire(&heap_lock);
  if (*block_tag(payload) & TAG_MAPPED) {
    mapped_free_and_unlock(payload);
    return;
  }
  free_locked(payload);
  size_t evicted_count = tick_and_age(evicted);
  lock_release(&heap_lock);
  unmap_all(evicted, evicted_count);
}

void backend_free_batch(void **payloads, size_t count)
{
  struct cached_mapping evicted[MAPPING_CACHE_SLOTS];
  size_t deferred_now = 0;
  lock_acquire(&heap_lock);
  for (size_t i = 0; i < count; i++) {
    char *block = block_of(payloads[i]);
    if (!check_own_tag(block, "free"))
      continue;
    size_t size = size_of(block);
    if (size <= DEFER_MAX_BLOCK) {
      defer_block(block, size);
      deferred_now += size;
    } else if (check_neighbours(region_of(block), block, "free")) {
      free_region_block(block);
    }
  }
  count_deferred(deferred_now);
  size_t evicted_count = tick_and_age(evicted);
  lock_release(&heap_lock);
  unmap_all(evicted, evicted_count);
}

/* Shrink an in-use region block to size bytes, freeing the tail (which may coalesce). */
static void shrink_region_block(char *block, size_t size)
{
  size_t old_size = size_of(block);
  if (old_size - size < BACKEND_MIN_BLOCK)
    return;
  char *tail = block + size;
  *tag_of(tail) = (old_size - size) | TAG_IN_USE;
  *tag_of(block) = size | (*tag_of(block) & (TAG_IN_USE | TAG_PREV_FREE));
  free_region_block(tail);
}

/* Grow an in-use region block to at least size bytes into the free block or top after it. */
static bool grow_region_block(char *block, size_t size)
{
  size_t old_size = size_of(block);
  char *next = block + old_size;
  struct region *region = region_of(block);
  /* A block that grows (realloc) must not be fenced in by deferred blocks: while they are
   * few, they are coalesced (one by one) and it grows into its neighbour; when they would
   * take a sweep of every region, it fails and realloc moves the block. perl-hash (values
   * grown next to deleted entries) swept its whole heap time and again: interleaved runs,
   * medians of 20 and 16, 0.577 -> 0.544 s and 0.650 -> 0.591 s; realloc_grow's peak RSS
   * unchanged (19.2-19.4 MB). */
  if (next != region->top && is_deferred(next)) {
    if (!deferred_few())
      return false;
    deferred_coalesce_each();
  }
  if (!(next == region->top || is_binned_free(next)) || old_size + size_of(next) < size)
    return false;
  if (next == region->top) {
    if (top_carve(size - old_size, 0) != next)
      return false;
  } else {
    bin_remove(next);
    *tag_of(next) |= TAG_IN_USE;
    counters.free_bytes -= size_of(next);
    counters.in_use_bytes += size_of(next);
    set_prev_free(next_block(next), false);
  }
  /* next is now an in-use block adjacent to block: merge the two, then cut the excess. */
  *tag_of(block) = (old_size + size_of(next)) | (*tag_of(block) & (TAG_IN_USE | TAG_PREV_FREE));
  shrink_region_block(block, size);
  return true;
}

static bool resize_mapped(void *payload, size_t size)
{
  struct mapped_header *header = mapped_header_of(payload);
  size_t old_size = tag_size(header->tag);
  if (size > old_size)
    return false;
  char *map_end = header->map_start + header->map_len;
  char *new_end = (char *)align_up_addr((uintptr_t)payload + size, os_page_size());
  if (new_end < map_end && os_unmap(new_end, (size_t)(map_end - new_end))) {
    header->map_len = (size_t)(new_end - header->map_start);
    header->tag = tag_sealed(payload, (size_t)(new_end - (char *)payload) | TAG_MAPPED | TAG_IN_USE);
    counters.mapped_block_bytes -= old_size - tag_size(header->tag);
  }
  return true;
}

bool backend_resize(void *payload, size_t new_block_size)
{
  bool done = true;
  lock_acquire(&heap_lock);
  char *block = block_of(payload);
  if (!(*tag_of(block) & TAG_MAPPED) && /* resizing merges with it, never with the previous */
      !check_next(region_of(block), block, "realloc")) {
    lock_release(&heap_lock);
    return false;
  }
  if (*tag_of(block) & TAG_MAPPED)
    done = resize_mapped(payload, new_block_size);
  else if (new_block_size <= size_of(block))
    shrink_region_block(block, new_block_size);
  else
    done = new_block_size < MMAP_MAPPED_THRESHOLD && grow_region_block(block, new_block_size);
  block_seal(payload);
  lock_release(&heap_lock);
  return done;
}

void *backend_remap(void *payload, size_t new_block_size)
{
  lock_acquire(&heap_lock);
  struct mapped_header *header = mapped_header_of(payload);
  size_t offset = (size_t)((char *)payload - header->map_start);
  size_t new_len;
  if (!align_up_checked(offset + new_block_size, os_page_size(), &new_len)) {
    lock_release(&heap_lock);
    return NULL;
  }
  size_t old_size = tag_size(header->tag);
  mapped_unlink(header);
  registry_remove((uintptr_t)payload);
  char *moved = os_remap(header->map_start, header->map_len, new_len);
  char *new_payload = moved ? moved + offset : (char *)payload;
  header = mapped_header_of(new_payload);
  if (moved != NULL) {
    header->map_start = moved;
    header->map_len = new_len;
    header->tag = tag_sealed(new_payload, (new_len - offset) | TAG_MAPPED | TAG_IN_USE);
    counters.mapped_block_bytes += tag_size(header->tag) - old_size;
  }
  mapped_link(header);
  registry_add((uintptr_t)new_payload);
  lock_release(&heap_lock);
  return moved ? new_payload : NULL;
}

/* A region's payloads are told by the region bits, without the lock (as the free fast path's
 * backend_tag_readable does: realloc validates every pointer here, 4% of bench realloc_grow's
 * instructions went to the lock); a mapped payload by the registry, under the lock. */
bool backend_owns(const void *payload)
{
  uintptr_t addr = (uintptr_t)payload;
  if (addr & 15)
    return false;
  struct region *region = region_of(payload);
  if (mmap_in_region(payload))
    return (char *)payload > region_first_block(region) &&
           (char *)payload < region_sentinel(region);
  lock_acquire(&heap_lock);
  bool owned = registry_has(addr);
  lock_release(&heap_lock);
  return owned;
}

void backend_get_stats(struct backend_stats *stats)
{
  lock_acquire(&heap_lock);
  stats->mapped_bytes = os_mapped_bytes();
  stats->peak_mapped_bytes = os_peak_mapped_bytes();
  stats->free_bytes = counters.free_bytes + mapping_cache_bytes;
  stats->in_use_bytes = counters.in_use_bytes;
  stats->mapped_block_bytes = counters.mapped_block_bytes;
  lock_release(&heap_lock);
}

/* Give back what the heap keeps without using it: wholly free regions and the mapping cache
 * (address space), and, with release_pages, the dirty pages of the regions' free tops beyond
 * pad and inside free blocks of two pages or more (a walk of those bins). Bytes released. */
static size_t give_back(size_t pad, bool release_pages)
{
  size_t released = 0;
  lock_acquire(&heap_lock);
  deferred_coalesce();
  struct region *region = regions;
  while (region != NULL) {
    struct region *next_region = region->next;
    if (unmap_if_wholly_free(region)) {
      released += MMAP_REGION_SIZE;
    } else if (release_pages && region->top != NULL) {
      char *clean_before = region->clean_from;
      trim_top(region, pad, os_page_size());
      released += (size_t)(clean_before - region->clean_from);
    }
    region = next_region;
  }
  if (release_pages)
    for (unsigned bin = bin_index(2 * os_page_size()); bin < MMAP_BIN_COUNT; bin++)
      for (struct free_block *node = bins[bin][0]; node != NULL; node = node->next) {
        release_free_interior((char *)node, tag_size(node->tag));
        released += tag_size(node->tag);
      }
  struct cached_mapping evicted[MAPPING_CACHE_SLOTS];
  size_t evicted_count = 0;
  for (int i = 0; i < MAPPING_CACHE_SLOTS; i++)
    if (mapping_cache[i].start != NULL) {
      released += mapping_cache[i].len;
      mapping_cache_evict(i, evicted, &evicted_count);
    }
  lock_release(&heap_lock);
  unmap_all(evicted, evicted_count);
  return released;
}

size_t backend_trim(size_t pad) { return give_back(pad, true); }

size_t backend_release_address_space(void) { return give_back(0, false); }

void backend_fork_prepare(void) { lock_acquire(&heap_lock); }
void backend_fork_parent(void) { lock_release(&heap_lock); }
void backend_fork_child(void) { lock_reset(&heap_lock); }

/* ---- The heap checker -------------------------------------------------------------------- */

struct walk_totals {
  uint64_t free_bytes, in_use_bytes, binned_blocks, deferred_blocks, deferred_bytes;
};

static int check_block(struct region *region, char *block, bool prev_free,
                       struct walk_totals *totals)
{
  uint64_t tag = *tag_of(block);
  size_t size = tag_size(tag);
  if (((uintptr_t)payload_of(block) & 15) != 0)
    return CHECK_FAIL(3, "payload not 16-aligned", block);
  if (size < BACKEND_MIN_BLOCK || block + size > region_sentinel(region) || (tag & (TAG_MAPPED | TAG_RESERVED)))
    return CHECK_FAIL(2, "block size or flags break the tiling", block);
  if (((tag & TAG_PREV_FREE) != 0) != prev_free)
    return CHECK_FAIL(4, "P bit disagrees with the previous block", block);
  bool free_now = !(tag & TAG_IN_USE);
  bool deferred_now = free_now && block != region->top && is_deferred(block);
  if (free_now && !deferred_now && prev_free)
    return CHECK_FAIL(5, "two adjacent free blocks", block);
  if (free_now ? (tag & TAG_CHECK_MASK) != 0 : !tag_seal_ok(payload_of(block), tag))
    return CHECK_FAIL(10, "block tag's check bits are wrong", block);
  if (deferred_now) {
    if (size > DEFER_MAX_BLOCK)
      return CHECK_FAIL(11, "deferred block too large", block);
    totals->free_bytes += size;
    totals->deferred_bytes += size;
    totals->deferred_blocks++;
  } else if (free_now && block == region->top) {
    totals->free_bytes += size;
  } else if (free_now) {
    if (*footer_of(block, size) != size)
      return CHECK_FAIL(4, "free block footer differs from its size", block);
    totals->free_bytes += size;
    totals->binned_blocks++;
  } else {
    totals->in_use_bytes += size;
  }
  return 0;
}

static int check_top(struct region *region)
{
  char *top = region->top;
  if (top == NULL)
    return 0;
  if (region != current_region)
    return CHECK_FAIL(2, "a region other than the current one has a top", region);
  if (top + size_of(top) != region_sentinel(region))
    return CHECK_FAIL(2, "top is not the last block", top);
  if (region->clean_from < top + 8 || region->clean_from > region_sentinel(region))
    return CHECK_FAIL(8, "clean_from outside the top", region->clean_from);
  const uint64_t *word = (const uint64_t *)align_up_addr((uintptr_t)region->clean_from, 8);
  for (int i = 0; i < 4 && (char *)(word + i) < region_sentinel(region); i++)
    if (word[i] != 0)
      return CHECK_FAIL(8, "memory above clean_from is not zero", word + i);
  return 0;
}

static int check_region(struct region *region, struct walk_totals *totals)
{
  if (region->magic != REGION_MAGIC || ((uintptr_t)region & (MMAP_REGION_SIZE - 1)) != 0 ||
      !registry_has(region_key(region)))
    return CHECK_FAIL(1, "region header damaged or region unregistered", region);
  uint64_t sentinel = *tag_of(region_sentinel(region));
  if (tag_size(sentinel) != 0 || !(sentinel & TAG_IN_USE))
    return CHECK_FAIL(1, "sentinel tag damaged", region_sentinel(region));
  bool prev_free = false;
  char *block = region_first_block(region);
  while (block < region_sentinel(region)) {
    int broken = check_block(region, block, prev_free, totals);
    if (broken)
      return broken;
    prev_free = is_free(block) && (block == region->top || !is_deferred(block));
    block = next_block(block);
  }
  if (block != region_sentinel(region))
    return CHECK_FAIL(2, "blocks overrun the sentinel", block);
  if (((sentinel & TAG_PREV_FREE) != 0) != prev_free)
    return CHECK_FAIL(4, "sentinel P bit disagrees with the last block", block);
  return check_top(region);
}

static int check_lane(unsigned bin, unsigned lane, uint64_t *listed_blocks)
{
  struct free_block *prev = lane_mark(lane);
  for (struct free_block *node = bins[bin][lane]; node != NULL; prev = node, node = node->next) {
    if (node->prev != prev)
      return CHECK_FAIL(6, "bin list back link broken", node);
    if ((node->tag & TAG_IN_USE) || bin_index(tag_size(node->tag)) != bin ||
        !registry_has(region_key(region_of(node))))
      return CHECK_FAIL(6, "listed block is in use, in the wrong bin or not ours", node);
    if (++*listed_blocks > (uint64_t)1 << 40)
      return CHECK_FAIL(6, "bin list cycles", node);
  }
  return 0;
}

static int check_bins(uint64_t *listed_blocks)
{
  for (unsigned bin = 0; bin < MMAP_BIN_COUNT; bin++) {
    if (bin_marked(bin) == bin_is_empty(bin))
      return CHECK_FAIL(6, "bin bitmap disagrees with the bin list", &bins[bin]);
    for (unsigned lane = 0; lane < BIN_LANES; lane++) {
      if (bin >= FINE_BIN_COUNT && lane != 0 && bins[bin][lane] != NULL)
        return CHECK_FAIL(6, "a bin of several sizes uses a lane other than 0", &bins[bin][lane]);
      int broken = check_lane(bin, lane, listed_blocks);
      if (broken)
        return broken;
    }
  }
  return 0;
}

static int check_deferred_lane(unsigned list, unsigned lane, uint64_t *listed_blocks,
                               uint64_t *listed_bytes)
{
  struct deferred_block *node = deferred[list][lane];
  if ((node != NULL) != ((deferred_lanes[list] >> lane) & 1))
    return CHECK_FAIL(11, "a deferred lane's bit does not say whether it holds blocks", node);
  for (; node != NULL; node = deferred_link(node, node->next)) {
    if (((uintptr_t)node & 15) != 8 || !registry_has(region_key(region_of(node))))
      return CHECK_FAIL(11, "deferred list leads outside the regions", node);
    if (node->tag & (TAG_IN_USE | TAG_MAPPED | TAG_RESERVED | TAG_CHECK_MASK) ||
        tag_size(node->tag) != deferred_list_size(list) || node->mark != DEFER_MARK)
      return CHECK_FAIL(11, "deferred block with a wrong tag, size or mark", node);
    *listed_bytes += tag_size(node->tag);
    if (++*listed_blocks > (uint64_t)1 << 40)
      return CHECK_FAIL(11, "deferred list cycles", node);
  }
  return 0;
}

static int check_deferred(uint64_t *listed_blocks, uint64_t *listed_bytes)
{
  for (unsigned list = 0; list < DEFER_LIST_COUNT; list++) {
    if (deferred_lanes[list] >> DEFER_LANES != 0)
      return CHECK_FAIL(11, "a deferred list marks a lane it does not have", NULL);
    for (unsigned lane = 0; lane < DEFER_LANES; lane++) {
      int broken = check_deferred_lane(list, lane, listed_blocks, listed_bytes);
      if (broken)
        return broken;
    }
  }
  return 0;
}

static int check_mapped(uint64_t *mapped_bytes)
{
  struct mapped_header *prev = NULL;
  for (struct mapped_header *header = mapped_blocks; header != NULL;
       prev = header, header = header->next) {
    char *payload = (char *)(header + 1);
    uint64_t tag = header->tag;
    if (header->prev != prev || header->magic != MAPPED_MAGIC || !registry_has((uintptr_t)payload))
      return CHECK_FAIL(9, "mapped block list, magic or registration broken", payload);
    if ((tag & (TAG_MAPPED | TAG_IN_USE)) != (TAG_MAPPED | TAG_IN_USE) ||
        ((uintptr_t)header->map_start & (os_page_size() - 1)) != 0 ||
        header->map_start > (char *)header ||
        payload + tag_size(tag) != header->map_start + header->map_len)
      return CHECK_FAIL(9, "mapped block tag or extent inconsistent", payload);
    if (!tag_seal_ok(payload, tag))
      return CHECK_FAIL(10, "mapped block tag's check bits are wrong", payload);
    *mapped_bytes += tag_size(tag);
  }
  return 0;
}

static int check_counters(const struct walk_totals *totals, uint64_t listed_blocks,
                          uint64_t deferred_listed, uint64_t deferred_listed_bytes,
                          uint64_t mapped_bytes)
{
  size_t cached_bytes = 0;
  for (int i = 0; i < MAPPING_CACHE_SLOTS; i++)
    if (mapping_cache[i].start != NULL)
      cached_bytes += mapping_cache[i].len;
  if (cached_bytes != mapping_cache_bytes || cached_bytes > MAPPING_CACHE_MAX_BYTES)
    return CHECK_FAIL(7, "mapping cache bytes differ from its slots", mapping_cache);
  if (listed_blocks != totals->binned_blocks)
    return CHECK_FAIL(6, "free blocks in the walk and on the bins differ in number", bins);
  if (deferred_listed != totals->deferred_blocks || deferred_listed_bytes != deferred_bytes ||
      deferred_bytes != totals->deferred_bytes)
    return CHECK_FAIL(11, "deferred blocks in the walk and on the lists differ", deferred);
  if (totals->free_bytes != counters.free_bytes || totals->in_use_bytes != counters.in_use_bytes ||
      mapped_bytes != counters.mapped_block_bytes)
    return CHECK_FAIL(7, "byte counters differ from the walk", &counters);
  return 0;
}

int backend_check_heap(void)
{
  struct walk_totals totals = { 0, 0, 0, 0, 0 };
  uint64_t listed_blocks = 0, mapped_bytes = 0, deferred_listed = 0, deferred_listed_bytes = 0;
  int broken = 0;
  lock_acquire(&heap_lock);
  for (struct region *region = regions; region != NULL && !broken; region = region->next)
    broken = check_region(region, &totals);
  if (!broken)
    broken = check_bins(&listed_blocks);
  if (!broken)
    broken = check_deferred(&deferred_listed, &deferred_listed_bytes);
  if (!broken)
    broken = check_mapped(&mapped_bytes);
  if (!broken)
    broken = check_counters(&totals, listed_blocks, deferred_listed, deferred_listed_bytes,
                            mapped_bytes);
  lock_release(&heap_lock);
  return broken;
}
