/* sbrk_backend.c: the classic heap, grown with sbrk, with boundary tags and an implicit list.
 *
 * The sbrk backend in five files, one concept each:
 *   sbrk_backend.c  the layout and invariants (below), backend.h's functions, freeing and
 *                   resizing in place, the checks on pointers handed back;
 *   sbrk_region.c   regions: obtaining them (sbrk, or mmap when sbrk fails or something else
 *                   moved the break), growing the top one, lowering the break, giving
 *                   back the pages inside big free blocks, the counters;
 *   sbrk_place.c    where blocks go: the search hints, first/next/best fit over the implicit
 *                   list, splitting, carving, coalescing (the four cases);
 *   sbrk_index.c    the segment index that lets a first-fit walk skip what cannot fit (I12);
 *   sbrk_check.c    the heap checker, one check per invariant below;
 *   sbrk_mapped.c   blocks of SBRK_MAP_THRESHOLD bytes or more, each mapped on its own (I9).
 * The state they share and the block helpers are in sbrk_heap.h; tunables in sbrk_backend.h.
 *
 * The heap is one region grown with sbrk. When sbrk fails, or something else in the process
 * moved the break since our last call, the heap continues in a new region: from sbrk at the
 * new break if it can, else from mmap. Only the region that ends at the break we last set
 * (the top region) grows, and only it is trimmed with a negative sbrk.
 *
 * A region (each box is one 8-byte word; addresses grow to the right):
 *
 *   start                                         block start = 8 (mod 16)
 *   |     prologue        block (in use)            |  block (free)                epilogue
 *   v     (16 bytes)                                v                                |   end
 *   +----+------+------+------+-------------------+------+--------------+------+------+
 *   |pad | 16|U | 16|U | S|U  | payload (16-aligned, | F|0  |     ...      | F|0  | 0|P|U|
 *   |    |      |      |      |  S - 8 bytes)      |      |              |      |      |
 *   +----+------+------+------+-------------------+------+--------------+------+------+
 *          header footer header ^payload            header                footer header
 *                              first
 *
 *   pad: 8 to 23 bytes that put the prologue's header at 8 mod 16.
 *   Header = size | flags (backend.h's tag word): U = in use, P = the block before is free.
 *   A free block also has a footer (its size) in its last word; an in-use block has none: its
 *   payload runs to its end (usable bytes = size - 8, BACKEND_BLOCK_OVERHEAD), and the next
 *   header's P bit says whether the block before it is free, so that prev_block() (through
 *   the footer) is only ever asked of a free block. This is CS:APP's footer elision (the
 *   boundary tags of Knuth, with the footer kept only where coalescing needs it).
 *   Sizes are multiples of 16 >= BACKEND_MIN_BLOCK (32: a free block's header, footer and
 *   16 bytes). The prologue (an in-use 16-byte block with a footer) and the epilogue (an in-use
 *   header of size 0) are sentinels: coalescing and walking never test for the region's ends.
 *
 * Invariants (backend_check_heap() in sbrk_check.c checks each and returns its number):
 *   I1  every region opens with the prologue (header and footer 16|U) and closes with the
 *       epilogue (0|U, and P when the last block is free) in its last word.
 *   I2  the blocks tile each region exactly: from the first block, adding sizes reaches the
 *       epilogue; every size is a multiple of 16 and >= BACKEND_MIN_BLOCK.
 *   I3  every free block's footer equals its header.
 *   I4  no two adjacent blocks are free (coalescing is immediate).
 *   I5  every payload is 16-aligned.
 *   I6  a heap block has no flag but U and P: M and bit 3 are clear.
 *   I7  the top region ends at the break we last set, and the process's break is not below
 *       the end of any sbrk region.
 *   I8  the counters match the walk: free and in-use bytes and block counts, region bytes;
 *       and the bytes we hold are no more than os.c accounts.
 *   I9  mapped-alone blocks are consistent (sbrk_mapped.c).
 *   I10 the search hints are right: the next-fit rover is NULL or the start of a block; each
 *       region's first_free is a block start (or its epilogue) at or below its lowest free
 *       block; its search floors rise with their index, and each floor[i] is a block start (or
 *       the epilogue) with no free block of floor_size(i) bytes or more below it; and the bytes
 *       from its clean_from on are zero but for the tags of their block.
 *   I11 the P bit of every header (the epilogue's too) is set exactly when the block before is
 *       free.
 *   I12 the segment index is right (sbrk_index.c): no free block is bigger than its segment's
 *       bound or lies below its segment's hint, and every hint is a block start of its segment.
 *   I13 every in-use block's tag (mapped ones: I9) carries its check bits (backend.h).
 *
 * The search floors keep first fit exact while sparing it the walk over the holes too small
 * for a request: one floor per block size up to 4 KiB, then eight per doubling (sbrk_heap.h,
 * floor_index); a search for asize bytes starts at floor[floor_index(asize)], and leaves it at
 * the first free block of at least floor_size() bytes it saw; a free block that appears or
 * grows lowers the floors of every size it is big enough for. From there the walk skips the
 * 64 KiB segments whose bound is below floor_size() (sbrk_index.c), so that a heap of 400,000
 * blocks is not walked block by block.
 *
 * Two placement rules outside the fits (sbrk_place.c): a block that backend_resize could not
 * grow leaves its size in sbrk_heap.moving_size, and the next request of that size (the front
 * end's allocate-copy-free) is taken by first fit from the low end of a free block, so that it
 * can grow in place there; and a batch of one block (backend_alloc_batch: a thread's first
 * refill of a class, the batches double from there) starts a cache line, so that two threads'
 * first blocks never share one.
 *
 * One lock (sbrk_lock) serialises everything; the front end's thread caches take the common
 * traffic. The tag of an in-use block changes only inside backend_resize and
 * backend_alloc_aligned on that block, and in its P bit when the block before it is freed or
 * taken (backend.h's B7 allows it: the front end only reads tags).
 */
#include "config.h"
#include "sbrk/sbrk_heap.h"

#include "os.h"
#include "util/bits.h"
#include "util/lock.h"
#include "util/report.h"

#include <stdlib.h>
#include <string.h>

palloc_lock sbrk_lock = PALLOC_LOCK_INIT;
struct sbrk_heap sbrk_heap;
uintptr_t sbrk_readable_low, sbrk_readable_high;

/* ---- Freeing and resizing heap blocks ---------------------------------------------------- */

static void free_heap_block(struct region *r, char *block)
{
  size_t size = block_size(block);
  sbrk_heap.used_bytes -= size;
  sbrk_heap.used_count--;
  bool prev_free = is_prev_free(block);
  /* the free neighbours' own interiors were given back already when they are big enough */
  char *from = prev_free && block_size(prev_block(block)) >= SBRK_RELEASE_MIN ? block : NULL;
  char *next = next_block(block);
  char *to = !is_in_use(next) && block_size(next) >= SBRK_RELEASE_MIN ? next : NULL;
  write_free(block, size);
  set_prev_free(block, prev_free);
  count_free(size, 1);
  char *merged = coalesce(r, block);
  if (!trim_top_if_worth_it(r, merged))
    release_freed_pages(merged, from, to);
}

/* Shrink an in-use block to new_size, returning the tail to the free list. */
static void shrink_in_place(struct region *r, char *block, size_t new_size)
{
  size_t size = block_size(block);
  if (size - new_size < BACKEND_MIN_BLOCK)
    return;
  split_block(r, block, new_size);
  char *tail = coalesce(r, next_block(block));
  trim_top_if_worth_it(r, tail);
}

/* Grow an in-use block over its free next neighbour (which must suffice). */
static void absorb_next(struct region *r, char *block, size_t new_size)
{
  char *next = next_block(block);
  size_t size = block_size(block) + block_size(next);
  uncount_free(block_size(next), 1);
  sbrk_heap.used_bytes += block_size(next);
  forget_tag(r, (char *)footer(next)); /* payload now: the zero area stays zero */
  forget_tag(r, next);
  write_in_use(block, size);
  forget_block_start(r, next, block);
  split_block(r, block, new_size);
  advance_first_free(r, block);
  mark_dirty_up_to(r, next_block(block));
}

static bool grow_in_place(struct region *r, char *block, size_t new_size)
{
  char *next = next_block(block);
  size_t have = block_size(block) + (is_in_use(next) ? 0 : block_size(next));
  if (have < new_size) {
    bool next_is_top = is_epilogue(next) || (!is_in_use(next) && is_epilogue(next_block(next)));
    bool can_extend = r == sbrk_heap.top && next_is_top && can_grow_top();
    if (!can_extend || extend_top(new_size - block_size(block)) == NULL)
      return false;
  }
  absorb_next(r, block, new_size);
  return true;
}

/* ---- Validation of pointers handed back ------------------------------------------------- */

/* Whether the block after block, which freeing block merges with or marks, is sound: the
 * epilogue where it belongs, an in-use block with its check bits, or a free block whose tag
 * is exactly its size (P clear), inside the region, repeated by its footer. */
static bool next_sound(struct region *r, char *block)
{
  char *next = next_block(block);
  uint64_t tag = header(next);
  size_t size = tag_size(tag);
  if (size == 0)
    return next == epilogue_of(r);
  if (size < BACKEND_MIN_BLOCK || size > (size_t)(epilogue_of(r) - next))
    return false;
  if (tag & TAG_IN_USE)
    return tag_seal_ok(payload_of(next), tag);
  return tag == size && *footer(next) == size;
}

/* Misuse or damage found on a block handed back: abort, or with PALLOC_ON_MISUSE=continue
 * report it and answer false (the block is then leaked, never reused). */
static bool refused(const char *problem, void *payload, const char *function)
{
  report_misuse_or_continue(problem, payload, function);
  return false;
}

static bool check_freeable(struct region *r, char *payload, const char *function)
{
  char *block = block_of(payload);
  uint64_t tag = header(block);
  if (((uintptr_t)payload & 15) != 0 || payload < r->first + WORD)
    return refused("invalid pointer", payload, function);
  size_t size = tag_size(tag);
  if (size < BACKEND_MIN_BLOCK || size > (size_t)(epilogue_of(r) - block))
    return refused("heap corruption: block size out of the heap", payload, function);
  if (!(tag & TAG_IN_USE))
    return refused("double free", payload, function);
  if ((tag & (SBRK_TAG_BIT3 | TAG_MAPPED)) || !tag_seal_ok(payload, tag))
    return refused("heap corruption: damaged block tag", payload, function);
  if (is_prev_free(next_block(block)) || !next_sound(r, block))
    return refused("heap corruption: next block's tag damaged", payload, function);
  return true;
}

static bool check_mapped_freeable(void *payload, const char *function)
{
  uint64_t tag = *block_tag(payload);
  if ((tag & (TAG_IN_USE | TAG_MAPPED | SBRK_TAG_BIT3)) != (TAG_IN_USE | TAG_MAPPED) ||
      !tag_seal_ok(payload, tag))
    return refused("heap corruption: damaged block tag", payload, function);
  return true;
}

/* Free one block, lock held, the break checked (refuse_break_below_heap) by the caller. */
static void free_checked_break(void *payload, const char *function)
{
  struct region *r = region_containing(payload);
  if (r != NULL) {
    if (check_freeable(r, payload, function))
      free_heap_block(r, block_of(payload));
  } else if (mapped_owns(payload)) {
    if (check_mapped_freeable(payload, function))
      mapped_free(payload);
  } else {
    refused("invalid pointer", payload, function);
  }
}

/* Free one block, lock held. */
static void free_locked(void *payload, const char *function)
{
  refuse_break_below_heap();
  free_checked_break(payload, function);
}

/* ---- The contract (backend.h) ------------------------------------------------------------ */

/* The block size to serve: a multiple of 16, at least the minimum; SIZE_MAX when absurd
 * (every path refuses sizes above SIZE_MAX / 2). */
static size_t adjusted_size(size_t block_size)
{
  if (block_size > SIZE_MAX / 2)
    return SIZE_MAX;
  size_t size = (block_size + 15) & ~(size_t)15;
  return size < BACKEND_MIN_BLOCK ? BACKEND_MIN_BLOCK : size;
}

static enum sbrk_fit fit_from_environment(void)
{
  const char *text = secure_getenv("PALLOC_SBRK_FIT");
  if (text == NULL || strcmp(text, "first") == 0)
    return SBRK_FIT_FIRST;
  if (strcmp(text, "next") == 0)
    return SBRK_FIT_NEXT;
  if (strcmp(text, "best") == 0)
    return SBRK_FIT_BEST;
  report_warning("PALLOC_SBRK_FIT is not first, next or best; using first");
  return SBRK_FIT_FIRST;
}

int backend_init(void)
{
  lock_acquire(&sbrk_lock);
  if (!sbrk_heap.initialised) {
    sbrk_heap.fit = fit_from_environment();
    sbrk_heap.initialised = true;
  }
  lock_release(&sbrk_lock);
  return 0;
}

enum sbrk_fit sbrk_fit_policy(void) { return sbrk_heap.fit; }

void *sbrk_clean_from(const void *addr)
{
  lock_acquire(&sbrk_lock);
  struct region *r = region_containing(addr);
  void *clean_from = r ? r->clean_from : NULL;
  lock_release(&sbrk_lock);
  return clean_from;
}

void sbrk_set_fit_policy(enum sbrk_fit fit)
{
  lock_acquire(&sbrk_lock);
  sbrk_heap.fit = fit;
  sbrk_heap.initialised = true;
  lock_release(&sbrk_lock);
}

void sbrk_set_high_place_min(size_t bytes)
{
  lock_acquire(&sbrk_lock);
  sbrk_heap.high_place_min = bytes;
  lock_release(&sbrk_lock);
}

const char *sbrk_fit_name(enum sbrk_fit fit)
{
  return fit == SBRK_FIT_NEXT ? "next" : fit == SBRK_FIT_BEST ? "best" : "first";
}

void *backend_alloc(size_t block_size, unsigned flags)
{
  size_t asize = adjusted_size(block_size), dirty = 0;
  struct region *r;
  void *payload = NULL;
  lock_acquire(&sbrk_lock);
  if (asize >= SBRK_MAP_THRESHOLD) {
    payload = mapped_alloc(asize, 16, &dirty);
    note_peak();
  } else {
    char *block = take_block(asize, &r, &dirty);
    payload = block ? payload_of(block) : NULL;
  }
  lock_release(&sbrk_lock);
  if (payload != NULL && (flags & BACKEND_ZERO))
    memset(payload, 0, dirty);
  return payload;
}

/* Cut the gap before the first payload aligned to alignment off an in-use block, as a free
 * block of at least BACKEND_MIN_BLOCK bytes; returns the aligned block. */
static char *cut_front_gap(struct region *r, char *block, size_t alignment)
{
  char *payload = payload_of(block);
  char *aligned = (char *)align_up_addr((uintptr_t)payload, alignment);
  if (aligned != payload && aligned - payload < BACKEND_MIN_BLOCK)
    aligned += alignment;
  size_t gap = (size_t)(aligned - payload), size = block_size(block);
  if (gap == 0)
    return block;
  bool prev_free = is_prev_free(block); /* set when block was carved from a free one's end */
  *(uint64_t *)(block + gap) = TAG_IN_USE; /* a header to write_in_use(), below */
  write_in_use(block + gap, size - gap);
  write_free(block, gap);
  set_prev_free(block, prev_free);
  sbrk_heap.used_bytes -= gap;
  count_free(gap, 1);
  coalesce(r, block);
  return block + gap;
}

/* A batch of one block (a thread cache's first refill of a class): its payload starts a cache
 * line, so that it shares no line with the blocks before it, handed to other threads
 * (false_sharing in bench/: two threads' 8-byte blocks were neighbours in one line); the gap
 * before it, at least BACKEND_MIN_BLOCK bytes when there is one, stays free. Only the first
 * refill pays for the gap (as the mmap backend does): cutting one before every batch cost
 * fragmentation in bench/ 11 MB of its 196 MB peak RSS, perl-hash 3.7 MB of 56 MB.
 * Blocks of SBRK_HIGH_PLACE_MIN bytes or more come as take_block() places them (from the high
 * end of a big free block, the batch downwards: the line above is the batch's own). */
static char *take_line_aligned(size_t asize, struct region **r)
{
  size_t dirty;
  size_t high_min = sbrk_heap.high_place_min ? sbrk_heap.high_place_min : SBRK_HIGH_PLACE_MIN;
  if (asize >= high_min)
    return take_block(asize, r, &dirty);
  /* the gap is 0 or 32 to SBRK_BATCH_ALIGN + 16 bytes: what is left after asize can always be
   * split off, so that the block is exactly asize bytes (its size class) */
  char *block = take_block_low(asize + SBRK_BATCH_ALIGN + 2 * BACKEND_MIN_BLOCK, r, &dirty);
  if (block == NULL)
    return NULL;
  block = cut_front_gap(*r, block, SBRK_BATCH_ALIGN);
  shrink_in_place(*r, block, asize);
  return block;
}

size_t backend_alloc_batch(size_t block_size, void **payloads, size_t count)
{
  size_t asize = adjusted_size(block_size), dirty, done = 0;
  if (asize >= SBRK_MAP_THRESHOLD) {
    while (done < count && (payloads[done] = backend_alloc(asize, 0)) != NULL)
      done++;
    return done;
  }
  struct region *r = NULL;
  char *block = NULL;
  lock_acquire(&sbrk_lock);
  for (; done < count; done++) {
    char *next = block ? next_block(block) : NULL;
    if (next != NULL && fits(next, asize)) /* carve on from the split remainder */
      block = place(r, next, asize, false, &dirty);
    else if ((block = count == 1 ? take_line_aligned(asize, &r) : take_block(asize, &r, &dirty))
             == NULL)
      break;
    payloads[done] = payload_of(block);
  }
  lock_release(&sbrk_lock);
  return done;
}

void *backend_alloc_aligned(size_t alignment, size_t block_size, unsigned flags)
{
  if (alignment <= 16)
    return backend_alloc(block_size, flags);
  size_t asize = adjusted_size(block_size), dirty;
  if (asize > SIZE_MAX / 4 || alignment > SIZE_MAX / 4)
    return NULL;
  size_t padded = asize + alignment + BACKEND_MIN_BLOCK;
  struct region *r;
  void *payload = NULL;
  lock_acquire(&sbrk_lock);
  if (padded >= SBRK_MAP_THRESHOLD) {
    payload = mapped_alloc(asize, alignment, &dirty);
    note_peak();
  } else {
    char *block = take_block(padded, &r, &dirty);
    if (block != NULL) {
      block = cut_front_gap(r, block, alignment);
      shrink_in_place(r, block, asize);
      payload = payload_of(block);
    }
  }
  lock_release(&sbrk_lock);
  if (payload != NULL && (flags & BACKEND_ZERO))
    memset(payload, 0, block_usable_size(payload));
  return payload;
}

void backend_free(void *payload)
{
  lock_acquire(&sbrk_lock);
  free_locked(payload, "free");
  lock_release(&sbrk_lock);
}

/* The break is checked once for the batch (each check is a call into the C library). */
void backend_free_batch(void **payloads, size_t count)
{
  lock_acquire(&sbrk_lock);
  refuse_break_below_heap();
  for (size_t i = 0; i < count; i++)
    free_checked_break(payloads[i], "free");
  lock_release(&sbrk_lock);
}

bool backend_resize(void *payload, size_t new_block_size)
{
  size_t asize = adjusted_size(new_block_size);
  bool done;
  lock_acquire(&sbrk_lock);
  struct region *r = region_containing(payload);
  if (r == NULL) {
    done = mapped_owns(payload) && mapped_resize(payload, asize);
  } else {
    refuse_break_below_heap();
    char *block = block_of(payload);
    done = check_freeable(r, payload, "realloc");
    if (done && asize <= block_size(block))
      shrink_in_place(r, block, asize);
    else if (done && !(done = grow_in_place(r, block, asize)))
      sbrk_heap.moving_size = asize;
  }
  note_peak();
  lock_release(&sbrk_lock);
  return done;
}

void *backend_remap(void *payload, size_t new_block_size)
{
  void *moved = NULL;
  lock_acquire(&sbrk_lock);
  if (mapped_owns(payload)) {
    moved = mapped_remap(payload, adjusted_size(new_block_size));
    note_peak();
  }
  lock_release(&sbrk_lock);
  return moved;
}

/* A heap address whose tag may be read: 16-aligned, inside a region past its prologue; or the
 * payload of a mapped block. The tag itself is the front end's to judge (its check bits cover
 * the size), so that a damaged tag is reported as such rather than as a foreign pointer. */
bool backend_owns(const void *payload)
{
  if (((uintptr_t)payload & 15) != 0)
    return false;
  bool owned;
  lock_acquire(&sbrk_lock);
  struct region *r = region_containing(payload);
  if (r != NULL) {
    owned = block_of((void *)payload) >= r->first;
  } else {
    owned = mapped_owns(payload);
  }
  lock_release(&sbrk_lock);
  return owned;
}

void backend_get_stats(struct backend_stats *stats)
{
  lock_acquire(&sbrk_lock);
  stats->mapped_bytes = sbrk_held_bytes();
  stats->peak_mapped_bytes = sbrk_heap.peak_mapped_bytes;
  stats->free_bytes = sbrk_heap.free_bytes;
  stats->in_use_bytes = sbrk_heap.used_bytes + mapped_block_bytes();
  stats->mapped_block_bytes = mapped_block_bytes();
  lock_release(&sbrk_lock);
}

/* Give back what the heap keeps without using it: the free top beyond pad (the break
 * lowered), cached mappings and empty mapped regions (address space), and, with
 * release_pages, the whole pages inside every other free block (a walk of the heap).
 * Bytes released. */
static size_t give_back(size_t pad, bool release_pages)
{
  lock_acquire(&sbrk_lock);
  size_t released = trim_top(pad) + mapped_trim();
  for (struct region *r = sbrk_heap.regions; r < sbrk_heap.regions + MAX_REGIONS; r++) {
    if (r->start != NULL)
      released += unmap_if_empty(r);
    if (r->start == NULL || !release_pages)
      continue;
    for (char *b = r->first; !is_epilogue(b); b = next_block(b))
      if (!is_in_use(b) && !(r == sbrk_heap.top && is_epilogue(next_block(b))))
        released += release_free_pages(b);
  }
  lock_release(&sbrk_lock);
  return released;
}

size_t backend_trim(size_t pad) { return give_back(pad, true); }

size_t backend_release_address_space(void) { return give_back(0, false); }

void backend_fork_prepare(void) { lock_acquire(&sbrk_lock); }
void backend_fork_parent(void) { lock_release(&sbrk_lock); }
void backend_fork_child(void) { lock_reset(&sbrk_lock); }
