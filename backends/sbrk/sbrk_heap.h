/* sbrk_heap.h: the sbrk backend's heap as its files see it (sbrk_backend.c, sbrk_region.c,
 * sbrk_place.c and sbrk_index.c change it, sbrk_check.c verifies it): regions, the heap's
 * state, the boundary-tag block helpers, and the functions the files share.
 * The block layout and the invariants are drawn and numbered at the top of sbrk_backend.c.
 * Everything here is used with sbrk_lock held.
 */
#ifndef PALLOC_SBRK_HEAP_H
#define PALLOC_SBRK_HEAP_H

#include "sbrk/sbrk_backend.h"
#include "util/bits.h"
#include "util/lock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WORD 8
#define MAX_REGIONS 128
#define PROLOGUE_SIZE 16
#define REGION_OVERHEAD (24 + PROLOGUE_SIZE + WORD) /* the largest pad, prologue, epilogue */
#define CLEAN_CHECK_BYTES 4096                      /* how far I10 reads past clean_from */
#define FLOOR_EXACT_MAX 4096                        /* one search floor per size up to this */
#define FLOOR_EXACT_COUNT (FLOOR_EXACT_MAX / 16 - 1) /* sizes 32, 48, ..., 4096 */
#define FLOOR_STEPS 8                               /* then floors per doubling of the size */
#define FLOOR_COUNT (FLOOR_EXACT_COUNT + 36 * FLOOR_STEPS) /* up to 2^48 */
#define SEG_SHIFT 16                                /* segments of the index: 64 KiB */
#define SEG_INITIAL 1024                            /* segments a region's index starts with */

/* One segment of a region's index (sbrk_index.c); the two words side by side, so that a small
 * heap's index touches one page. */
struct segment {
  uint32_t max;  /* no free block of the segment is bigger than this */
  uint32_t hint; /* 0: no free block; else 1 + (b - first) / 16 for a block start b at or
                    below the segment's lowest free block */
};

struct region {
  char *start;      /* the first byte obtained from the OS; NULL for an unused slot */
  char *first;      /* the first block, just after the prologue */
  char *end;        /* one past the epilogue */
  char *clean_from; /* bytes from here to end read zero but for their block's tags */
  char *first_free; /* a block at or below the lowest free one: where searches start */
  uint32_t floor[FLOOR_COUNT]; /* no free block of floor_size(i) bytes or more lies below
                                  floor_at(r, i); the floors rise with i (offsets: floor_at) */
  unsigned floor_top;       /* the floor of the region's size: no block is bigger */
  size_t len;       /* bytes obtained from the OS: end - start for an sbrk region */
  struct segment *segs; /* the segment index (sbrk_index.c): a bound and a hint per segment */
  size_t seg_capacity;   /* segments the index has room for */
  bool is_mapped;   /* obtained from mmap (else from sbrk) */
};

/* A block start (or the epilogue) as its offset from the region's first block in units of 16
 * bytes, and back: the search floors and the index's hints keep blocks so, in 32 bits (the
 * floors of a region fit in a page, where pointers took two). Offsets compare as the
 * addresses they stand for. */
static inline uint32_t block_units(const struct region *r, const char *block)
{
  return (uint32_t)((size_t)(block - r->first) >> 4);
}

static inline char *block_at_units(const struct region *r, uint32_t units)
{
  return r->first + ((size_t)units << 4);
}

/* The segment of r's index that holds addr (sbrk_index.c). */
static inline size_t segment_of(const struct region *r, const char *addr)
{
  return (size_t)(addr - r->first) >> SEG_SHIFT;
}

static inline char *floor_at(const struct region *r, unsigned i)
{
  return block_at_units(r, r->floor[i]);
}

static inline uint32_t floor_value(const struct region *r, const char *block)
{
  return block_units(r, block);
}

static inline void set_floor(struct region *r, unsigned i, const char *block)
{
  r->floor[i] = floor_value(r, block);
}

extern palloc_lock sbrk_lock; /* the one lock around everything below */

struct sbrk_heap {
  struct region regions[MAX_REGIONS];
  struct region *top;    /* the sbrk region that ends at the break we last set, or NULL */
  char *our_break;       /* the break as we last set it */
  bool sbrk_refused;     /* sbrk failed once: continue from mmap from then on */
  bool initialised;
  enum sbrk_fit fit;
  char *rover;           /* next fit: the block the next search starts at, or NULL */
  size_t high_place_min; /* 0, or what replaces SBRK_HIGH_PLACE_MIN (a test hook) */
  size_t moving_size;    /* 0, or the size a block that failed to grow in place asked for:
                            the next request of that size is its move (take_block) */
  uint64_t free_bytes, free_count;  /* free heap blocks, tags included */
  uint64_t used_bytes, used_count;  /* in-use heap blocks, tags included */
  uint64_t region_bytes;            /* sum of the regions' len */
  uint64_t peak_mapped_bytes;
};
extern struct sbrk_heap sbrk_heap;

/* ---- Blocks: tags, neighbours (CS:APP's vocabulary; a block is its header's address) ----
 * A free block has a header and a footer; an in-use block has only its header, and the next
 * block's header says with P (TAG_PREV_FREE) whether the block before it is free, so that
 * prev_block() is only ever asked of a block whose P is set. */

static inline uint64_t header(const char *block) { return *(const uint64_t *)block; }
static inline size_t block_size(const char *block) { return tag_size(header(block)); }
static inline bool is_in_use(const char *block) { return header(block) & TAG_IN_USE; }
static inline bool is_prev_free(const char *block) { return header(block) & TAG_PREV_FREE; }
static inline char *payload_of(char *block) { return block + WORD; }
static inline char *block_of(void *payload) { return (char *)payload - WORD; }
static inline uint64_t *footer(char *block)
{
  return (uint64_t *)(block + block_size(block) - WORD);
}
static inline char *next_block(char *block) { return block + block_size(block); }
/* The block before block, which must be free (P set): its footer is the word before block. */
static inline char *prev_block(char *block)
{
  return block - tag_size(*(uint64_t *)(block - WORD));
}
static inline bool is_epilogue(const char *block) { return block_size(block) == 0; }

/* Set or clear P in the header of block (an in-use, free or epilogue block). */
static inline void set_prev_free(char *block, bool prev_free)
{
  uint64_t *tag = (uint64_t *)block;
  *tag = prev_free ? *tag | TAG_PREV_FREE : *tag & ~TAG_PREV_FREE;
}

/* A free block of size bytes at block: header and footer, and P in the next block's header.
 * A free block's P is clear (I4: the block before it is in use). */
static inline void write_free(char *block, size_t size)
{
  *(uint64_t *)block = (uint64_t)size;
  *(uint64_t *)(block + size - WORD) = (uint64_t)size;
  set_prev_free(block + size, true);
}

/* An in-use block of size bytes at block: its header only (P kept as it was, check bits of
 * backend.h added), and P cleared in the next block's header. */
static inline void write_in_use(char *block, size_t size)
{
  *(uint64_t *)block =
    tag_sealed(block + WORD, (uint64_t)size | TAG_IN_USE | (header(block) & TAG_PREV_FREE));
  set_prev_free(block + size, false);
}

/* The epilogue: an in-use header of size 0, with P when the last block is free. */
static inline void write_epilogue(char *end, bool prev_free)
{
  *(uint64_t *)(end - WORD) = TAG_IN_USE | (prev_free ? TAG_PREV_FREE : 0);
}
static inline char *epilogue_of(struct region *r) { return r->end - WORD; }
/* The region's last block when it is free, else NULL. */
static inline char *free_last_block(struct region *r)
{
  char *epilogue = epilogue_of(r);
  return is_prev_free(epilogue) ? prev_block(epilogue) : NULL;
}

/* The floor that a search for size bytes (a multiple of 16, >= 32) uses: one per size up to
 * FLOOR_EXACT_MAX, then one per eighth of a doubling. */
static inline unsigned floor_index(size_t size)
{
  if (size <= FLOOR_EXACT_MAX)
    return (unsigned)(size >> 4) - 2;
  unsigned k = highest_bit(size);
  if (k >= 48)
    return FLOOR_COUNT - 1;
  return FLOOR_EXACT_COUNT + (k - 12) * FLOOR_STEPS +
         (unsigned)((size >> (k - 3)) & (FLOOR_STEPS - 1));
}

/* The least size whose floor is index: floor_size(floor_index(s)) <= s. */
static inline size_t floor_size(unsigned index)
{
  if (index < FLOOR_EXACT_COUNT)
    return ((size_t)index + 2) << 4;
  unsigned step = index - FLOOR_EXACT_COUNT, k = step / FLOOR_STEPS + 12;
  return (size_t)(FLOOR_STEPS + step % FLOOR_STEPS) << (k - 3);
}

static inline bool fits(char *block, size_t asize)
{
  return !is_in_use(block) && block_size(block) >= asize;
}

/* ---- sbrk_region.c: regions, growing and trimming, counters ------------------------------ */

void count_free(size_t size, int blocks);
void uncount_free(size_t size, int blocks);
void note_peak(void);
struct region *region_containing(const void *addr);
/* Stop the process when someone lowered the break into the heap (going on would corrupt). */
void refuse_break_below_heap(void);
bool can_grow_top(void);
/* Grow the top region so that its free last block holds asize bytes; that block, or NULL. */
char *extend_top(size_t asize);
/* A free block of at least asize bytes from new memory (the top grown, or a new region). */
char *extend_heap(size_t asize, struct region **region);
/* Lower the break so that the top region's free last block keeps about pad bytes. */
size_t trim_top(size_t pad);
/* Trim when free_block is the top region's last block and big enough; whether it is that block. */
bool trim_top_if_worth_it(struct region *r, char *free_block);
void release_freed_pages(char *merged, char *from, char *to);
size_t unmap_if_empty(struct region *r);
size_t release_free_pages(char *block);

/* ---- sbrk_place.c: hints, fits, splitting, coalescing ------------------------------------- */

void forget_block_start(struct region *r, char *gone, char *by);
void advance_first_free(struct region *r, char *taken);
void forget_tag(struct region *r, char *word);
/* Merge the free block with its free neighbours (the four cases); returns the merged block. */
char *coalesce(struct region *r, char *block);
void split_block(struct region *r, char *block, size_t asize);
void mark_dirty_up_to(struct region *r, char *end);
char *place(struct region *r, char *block, size_t asize, bool may_carve_high, size_t *dirty);
/* An in-use block of at least asize bytes, found or made; NULL when the OS refuses memory. */
char *take_block(size_t asize, struct region **region, size_t *dirty);
/* The same, never carved from the high end of the free block it comes from: for a request
 * padded to be cut (backend_alloc_batch's one-block batch), whose size says nothing of the block. */
char *take_block_low(size_t asize, struct region **region, size_t *dirty);

/* ---- sbrk_index.c: the segment index (I12) ------------------------------------------------ */

bool index_init(struct region *r);
bool index_grow(struct region *r, size_t len);
void index_free(struct region *r);
void index_note_free(struct region *r, char *block);
void index_forget(struct region *r, char *gone, char *by);
void index_taken(struct region *r, char *taken);
void index_trimmed(struct region *r, char *last, char *old_end);
char *index_skip(struct region *r, char *block, size_t least_size);
void index_walked(struct region *r, char *block, size_t max_seen);
/* Whether a and b lie in one segment of r's index (inline: the first-fit walk asks it of
 * every block it passes). */
static inline bool index_same_segment(const struct region *r, const char *a, const char *b)
{
  return segment_of(r, a) == segment_of(r, b);
}
int index_check(struct region *r); /* 0 or 12 */

/* Bytes of all regions and mapped blocks: what the heap holds from the OS. */
uint64_t sbrk_held_bytes(void);

#endif /* PALLOC_SBRK_HEAP_H */
