/* sbrk_backend.c: the classic heap, grown with sbrk, with boundary tags and an implicit list.
 *
 * Owns the heap: its regions, every block in them, placement (first, next or best fit over
 * the implicit list), splitting, coalescing, resizing in place, lowering the break when the
 * heap's top is free, living with other code that moves the break, and backend.h's functions.
 * Blocks of SBRK_MAP_THRESHOLD bytes or more are mapped on their own (sbrk_mapped.c); the
 * heap checker, one check per invariant below, is sbrk_check.c; the state they share and the
 * block helpers are in sbrk_heap.h.
 *
 * The heap is one region grown with sbrk. When sbrk fails, or something else in the process
 * moved the break since our last call, the heap continues in a new region: from sbrk at the
 * new break if it can, else from mmap. Only the region that ends at the break we last set
 * (the top region) grows, and only it is trimmed with a negative sbrk.
 *
 * A region (each box is one 8-byte word; addresses grow to the right):
 *
 *   start                                               block start = 8 (mod 16)
 *   |     prologue          block (in use)                   |  block (free)       epilogue
 *   v     (16 bytes)                                          v                      |    end
 *   +----+------+------+------+---------------------+------+------+--------+------+------+
 *   |pad | 16|U | 16|U | S|U  | payload (16-aligned)| S|U  | F|0  |  ...   | F|0  | 0|U  |
 *   +----+------+------+------+---------------------+------+------+--------+------+------+
 *          header footer header ^payload             footer header           footer header
 *                              first
 *
 *   pad: 8 to 23 bytes that put the prologue's header at 8 mod 16.
 *   Every block: header and footer tag = size | flags (backend.h's tag word, U = in use),
 *   size a multiple of 16 >= BACKEND_MIN_BLOCK; usable bytes = size - 16.
 *   The prologue (an in-use 16-byte block) and the epilogue (an in-use header of size 0) are
 *   sentinels: coalescing and walking never need to test for the region's ends.
 *
 * Invariants (backend_check_heap() in sbrk_check.c checks each and returns its number):
 *   I1  every region opens with the prologue (header and footer 16|U) and closes with the
 *       epilogue (0|U) in its last word.
 *   I2  the blocks tile each region exactly: from the first block, adding sizes reaches the
 *       epilogue; every size is a multiple of 16 and >= BACKEND_MIN_BLOCK.
 *   I3  every block's header equals its footer.
 *   I4  no two adjacent blocks are free (coalescing is immediate).
 *   I5  every payload is 16-aligned.
 *   I6  a heap block has only the U flag or none: M, P and bit 3 are clear.
 *   I7  the top region ends at the break we last set, and the process's break is not below
 *       the end of any sbrk region.
 *   I8  the counters match the walk: free and in-use bytes and block counts, region bytes;
 *       and the bytes we hold are no more than os.c accounts.
 *   I9  mapped-alone blocks are consistent (sbrk_mapped.c).
 *   I10 the search hints are right: the next-fit rover is NULL or the start of a block; each
 *       region's first_free is a block start (or its epilogue) at or below its lowest free
 *       block;
 *       its search floors rise with their index, and each floor[i] is a block start (or the
 *       epilogue) with no free block of floor_size(i) bytes or more below it; and the bytes
 *       from its clean_from on are zero but for the tags of their block.
 *
 * The search floors keep first fit exact while sparing it the walk over the holes too small
 * for a request: one floor per block size up to 4 KiB, then eight per doubling (sbrk_heap.h,
 * floor_index); a search for asize bytes starts at floor[floor_index(asize)], and leaves it at
 * the first free block of at least floor_size() bytes it saw; a free block that appears or
 * grows lowers the floors of every size it is big enough for.
 *
 * One lock (sbrk_lock) serialises everything; the front end's thread caches take the common
 * traffic. This backend never writes the tag of an in-use block except inside backend_resize
 * and backend_alloc_aligned on that block: a neighbour's state is read from its footer, so the
 * P bit is never used.
 */
#include "config.h"
#include "sbrk/sbrk_heap.h"

#include "os.h"
#include "util/bits.h"
#include "util/lock.h"
#include "util/report.h"

#include <stdlib.h>
#include <string.h>

#ifdef HAVE_VALGRIND_MEMCHECK_H
#  include <valgrind/memcheck.h>
/* Memory from sbrk reads zero (I10), which memcheck does not know. */
#  define NOTE_ZERO_MEMORY(addr, len) VALGRIND_MAKE_MEM_DEFINED((addr), (len))
#else
#  define NOTE_ZERO_MEMORY(addr, len) ((void)0)
#endif

palloc_lock sbrk_lock = PALLOC_LOCK_INIT;
struct sbrk_heap sbrk_heap;
uintptr_t sbrk_readable_low, sbrk_readable_high;

/* Publish the payloads of the top region, up to end, for backend_tag_readable(). */
static void publish_readable(struct region *r, char *end)
{
  __atomic_store_n(&sbrk_readable_high, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&sbrk_readable_low, (uintptr_t)payload_of(r->first), __ATOMIC_RELEASE);
  __atomic_store_n(&sbrk_readable_high, (uintptr_t)(end - WORD), __ATOMIC_RELEASE);
}

/* ---- Accounting -------------------------------------------------------------------------- */

static void count_free(size_t size, int blocks)
{
  sbrk_heap.free_bytes += size;
  sbrk_heap.free_count += (uint64_t)(int64_t)blocks;
}

static void uncount_free(size_t size, int blocks)
{
  sbrk_heap.free_bytes -= size;
  sbrk_heap.free_count -= (uint64_t)(int64_t)blocks;
}

uint64_t sbrk_held_bytes(void) { return sbrk_heap.region_bytes + mapped_total_len(); }

static void note_peak(void)
{
  if (sbrk_held_bytes() > sbrk_heap.peak_mapped_bytes)
    sbrk_heap.peak_mapped_bytes = sbrk_held_bytes();
}

/* ---- Regions ----------------------------------------------------------------------------- */

static struct region *region_containing(const void *addr)
{
  for (struct region *r = sbrk_heap.regions; r < sbrk_heap.regions + MAX_REGIONS; r++)
    if (r->start != NULL && (const char *)addr >= r->first && (const char *)addr < r->end)
      return r;
  return NULL;
}

static struct region *unused_region_slot(void)
{
  for (struct region *r = sbrk_heap.regions; r < sbrk_heap.regions + MAX_REGIONS; r++)
    if (r->start == NULL)
      return r;
  return NULL;
}

/* Memory from the OS reads zero from the first page boundary on; the bytes before it in the
 * same page may be left over from a lowered break, so they are cleared by hand. */
static void zero_partial_page(char *from)
{
  char *boundary = (char *)align_up_addr((uintptr_t)from, os_page_size());
  memset(from, 0, (size_t)(boundary - from));
}

/* Lay out a new region over [start, start + len): prologue, one free block, epilogue; NULL
 * (the slot unused) when its index cannot be mapped. */
static char *init_region(struct region *r, char *start, size_t len, bool is_mapped)
{
  NOTE_ZERO_MEMORY(start, len);
  if (!is_mapped)
    zero_partial_page(start);
  char *prologue = (char *)align_up_addr((uintptr_t)start + WORD, 16) - WORD;
  *(uint64_t *)prologue = PROLOGUE_SIZE | TAG_IN_USE;
  *(uint64_t *)(prologue + WORD) = PROLOGUE_SIZE | TAG_IN_USE;
  *r = (struct region){ .start = start, .first = prologue + PROLOGUE_SIZE,
                        .end = (char *)align_down_addr((uintptr_t)(start + len), 16),
                        .len = len, .is_mapped = is_mapped };
  if (!index_init(r)) {
    r->start = NULL;
    return NULL;
  }
  r->clean_from = r->first;
  r->first_free = r->first;
  for (unsigned i = 0; i < FLOOR_COUNT; i++)
    r->floor[i] = r->first;
  r->floor_top = floor_index(len);
  size_t size = (size_t)(epilogue_of(r) - r->first);
  write_epilogue(r->end, false);
  write_free(r->first, size);
  index_note_free(r, r->first);
  count_free(size, 1);
  sbrk_heap.region_bytes += len;
  note_peak();
  return r->first;
}

/* ---- The lowest free block of a region (searches start there; I10) ---------------------- */

/* A free block appeared or grew at block: no hint may stay above it. */
static void note_free_block(struct region *r, char *block)
{
  if (block < r->first_free)
    r->first_free = block;
  for (unsigned i = floor_index(block_size(block)) + 1; i-- > 0 && r->floor[i] > block;)
    r->floor[i] = block; /* the floors rise with i: the lower ones are below block already */
  index_note_free(r, block);
}

/* The block starting at gone merged into the block at by (below it, its header written
 * already): hints move there. */
static void forget_block_start(struct region *r, char *gone, char *by)
{
  if (sbrk_heap.rover == gone)
    sbrk_heap.rover = by;
  if (r->first_free == gone)
    r->first_free = by;
  unsigned low = 0, high = r->floor_top + 1; /* the floors rise: find the run equal to gone */
  while (low < high) {
    unsigned middle = (low + high) / 2;
    if (r->floor[middle] < gone)
      low = middle + 1;
    else
      high = middle;
  }
  for (unsigned i = low; i <= r->floor_top && r->floor[i] == gone; i++)
    r->floor[i] = by;
  index_forget(r, gone, by);
}

/* A search showed that no free block of floor_size(index) bytes or more lies below to: raise
 * that floor, and the higher ones with it. */
static void raise_floor(struct region *r, unsigned index, char *to)
{
  for (unsigned i = index; i <= r->floor_top && r->floor[i] < to; i++)
    r->floor[i] = to;
}

/* The block at first_free was taken: first_free moves one block on (a lower bound). */
static void advance_first_free(struct region *r, char *taken)
{
  if (r->first_free == taken)
    r->first_free = next_block(taken); /* still at or below the lowest free block */
  index_taken(r, taken);
}

/* ---- Coalescing -------------------------------------------------------------------------- */

/* Words that stop being tags inside the zero area are cleared, so that it stays zero (I10). */
static void forget_tag(struct region *r, char *word)
{
  if (word >= r->clean_from)
    *(uint64_t *)word = 0;
}

/* Join the free block right to the free block left, its lower neighbour. */
static void merge_blocks(struct region *r, char *left, char *right)
{
  size_t size = block_size(left) + block_size(right);
  forget_tag(r, right - WORD);
  forget_tag(r, right);
  write_free(left, size);
  forget_block_start(r, right, left);
  uncount_free(0, 1);
}

/* The four cases: neither neighbour free, the next one, the previous one, both. */
static char *coalesce(struct region *r, char *block)
{
  bool prev_free = is_prev_free(block);
  bool next_free = !is_in_use(next_block(block));
  if (next_free)
    merge_blocks(r, block, next_block(block));
  if (prev_free) {
    char *prev = prev_block(block);
    merge_blocks(r, prev, block);
    block = prev;
  }
  note_free_block(r, block);
  return block;
}

/* ---- Growing and trimming the heap ------------------------------------------------------- */

/* Someone lowered the break into the heap: its top is gone, and going on would fault or
 * corrupt. Checked before every walk and free (sbrk(0) is only a load in the C library). */
static void refuse_break_below_heap(void)
{
  char *current_break = sbrk_heap.top != NULL ? os_sbrk(0) : NULL;
  if (current_break != NULL && current_break < sbrk_heap.top->end)
    report_misuse("heap corruption: break adjusted below the heap", current_break, "sbrk");
}

/* Whether the top region still ends at the break: nobody moved it since our last call. */
static bool break_is_ours(void)
{
  return sbrk_heap.top != NULL && os_sbrk(0) == sbrk_heap.our_break;
}

static bool can_grow_top(void) { return !sbrk_heap.sbrk_refused && break_is_ours(); }

/* Add incr bytes, just obtained above r's end, to r as a free block; returns it coalesced. */
static char *grow_region(struct region *r, size_t incr)
{
  char *block = epilogue_of(r); /* the old epilogue becomes the new block's header */
  NOTE_ZERO_MEMORY(r->end, incr);
  for (; r->floor_top < floor_index(r->len + incr); r->floor_top++)
    r->floor[r->floor_top + 1] = r->floor[r->floor_top]; /* floors not kept so far */
  zero_partial_page(r->end);
  r->end += incr;
  r->len += incr;
  sbrk_heap.region_bytes += incr;
  bool prev_free = is_prev_free(block);
  write_epilogue(r->end, false);
  write_free(block, incr);
  set_prev_free(block, prev_free);
  count_free(incr, 1);
  note_peak();
  return coalesce(r, block);
}


/* A new region able to hold a block of asize bytes: from sbrk at the current break, else
 * from mmap. Returns its free block, or NULL. */
static char *new_region(size_t asize, struct region **region)
{
  struct region *r = unused_region_slot();
  size_t need = asize + REGION_OVERHEAD, page = os_page_size();
  if (r == NULL || asize > SIZE_MAX / 2)
    return NULL;
  *region = r;
  if (!sbrk_heap.sbrk_refused) {
    char *current = os_sbrk(0);
    size_t len = (size_t)(align_up_addr((uintptr_t)current + need, page) - (uintptr_t)current);
    if (len < SBRK_GROW_MIN)
      len += align_up_addr(SBRK_GROW_MIN - len, page);
    char *start = current ? os_sbrk((intptr_t)len) : NULL;
    char *block = start ? init_region(r, start, len, false) : NULL;
    if (block != NULL) {
      sbrk_heap.our_break = start + len;
      sbrk_heap.top = r;
      publish_readable(r, r->end);
      return block;
    }
    if (start != NULL) { /* no index: give the memory back */
      os_sbrk(-(intptr_t)len);
      return NULL;
    }
    sbrk_heap.sbrk_refused = true;
  }
  size_t len = align_up_addr(need > SBRK_MAP_REGION_MIN ? need : SBRK_MAP_REGION_MIN, page);
  char *start = os_map(len);
  char *block = start ? init_region(r, start, len, true) : NULL;
  if (start != NULL && block == NULL)
    os_unmap(start, len);
  return block;
}

/* Grow the top region with sbrk so that its last block, free, holds asize bytes. */
static char *extend_top(size_t asize)
{
  struct region *r = sbrk_heap.top;
  char *last = free_last_block(r);
  size_t have = last != NULL ? block_size(last) : 0;
  if (asize > (size_t)PTRDIFF_MAX / 2)
    return NULL;
  size_t incr = align_up_addr((asize - have) > SBRK_GROW_MIN ? asize - have : SBRK_GROW_MIN,
                              os_page_size());
  if (!index_grow(r, r->len + incr))
    return NULL;
  char *start = os_sbrk((intptr_t)incr);
  if (start == r->end) {
    sbrk_heap.our_break = start + incr;
    char *block = grow_region(r, incr);
    publish_readable(r, r->end);
    return block;
  }
  if (start != NULL) /* someone moved the break in between: give it back, start anew */
    os_sbrk(-(intptr_t)incr);
  else
    sbrk_heap.sbrk_refused = true;
  return NULL;
}

/* extend_heap: a free block of at least asize bytes from new memory, coalesced. */
static char *extend_heap(size_t asize, struct region **region)
{
  if (asize > SIZE_MAX / 2)
    return NULL;
  if (can_grow_top()) {
    char *block = extend_top(asize);
    if (block != NULL) {
      *region = sbrk_heap.top;
      return block;
    }
  }
  return new_region(asize, region);
}

/* Lower the break so that the top region's free last block keeps about pad bytes. */
static size_t trim_top(size_t pad)
{
  if (!break_is_ours())
    return 0;
  struct region *r = sbrk_heap.top;
  char *last = free_last_block(r);
  if (last == NULL || pad > SIZE_MAX / 4)
    return 0;
  char *new_end = (char *)align_up_addr((uintptr_t)last + 2 * WORD + BACKEND_MIN_BLOCK + pad,
                                        os_page_size());
  if (new_end >= r->end)
    return 0;
  size_t release = (size_t)(r->end - new_end);
  char *old_end = r->end;
  publish_readable(r, new_end); /* before the memory goes */
  if (os_sbrk(-(intptr_t)release) == NULL) {
    publish_readable(r, r->end);
    return 0;
  }
  sbrk_heap.our_break = new_end;
  r->end = new_end;
  r->len -= release;
  sbrk_heap.region_bytes -= release;
  uncount_free(release, 0);
  write_epilogue(r->end, false);
  write_free(last, (size_t)(epilogue_of(r) - last));
  index_trimmed(r, last, old_end);
  if (r->clean_from > epilogue_of(r))
    r->clean_from = epilogue_of(r);
  for (unsigned i = 0; i <= r->floor_top; i++)
    if (r->floor[i] > last)
      r->floor[i] = last;
  return release;
}

static void trim_top_if_worth_it(struct region *r, char *free_block)
{
  if (r == sbrk_heap.top && is_epilogue(next_block(free_block)) &&
      block_size(free_block) >= SBRK_TRIM_THRESHOLD + SBRK_TOP_PAD)
    trim_top(SBRK_TOP_PAD);
}

/* ---- Placement: finding a fit, placing a block ------------------------------------------ */

static inline bool fits(char *block, size_t asize)
{
  return !is_in_use(block) && block_size(block) >= asize;
}

/* The first fitting block from block from up to (not including) until. */
static char *first_fit_in(char *from, char *until, size_t asize)
{
  for (char *b = from; b != until && !is_epilogue(b); b = next_block(b))
    if (fits(b, asize))
      return b;
  return NULL;
}

/* The search for asize bytes starts at the higher of first_free and its floor. */
static char *search_start(struct region *r, size_t asize)
{
  if (floor_index(asize) > r->floor_top)
    return epilogue_of(r); /* no block of the region is that big */
  char *floor = r->floor[floor_index(asize)];
  return floor > r->first_free ? floor : r->first_free;
}

/* First fit in one region, from its search start, skipping the segments that the index says
 * cannot hold floor_size() bytes; leaves the floor at the first free block of floor_size()
 * bytes or more seen (the fit itself at the latest), or where it gave up after
 * SBRK_SEARCH_BUDGET blocks (the next search goes on from there). */
static char *first_fit_in_region(struct region *r, size_t asize)
{
  unsigned index = floor_index(asize);
  if (index > r->floor_top)
    return NULL;
  size_t least = floor_size(index), seen = 0;
  char *start = search_start(r, asize), *first_big = NULL;
  char *b = index_skip(r, start, least), *segment = b;
  bool whole = b != start; /* the walk saw every block of segment's segment */
  for (size_t budget = SBRK_SEARCH_BUDGET; !is_epilogue(b); ) {
    if (budget-- == 0) {
      raise_floor(r, index, first_big ? first_big : b);
      return NULL;
    }
    if (!is_in_use(b)) {
      seen = block_size(b) > seen ? block_size(b) : seen;
      if (first_big == NULL && block_size(b) >= least)
        first_big = b;
      if (block_size(b) >= asize)
        break;
    }
    char *next = next_block(b);
    if (is_epilogue(next) || !index_same_segment(r, next, segment)) {
      if (whole)
        index_walked(r, segment, seen);
      next = segment = index_skip(r, next, least);
      whole = true;
      seen = 0;
    }
    b = next;
  }
  raise_floor(r, index, first_big ? first_big : b);
  return is_epilogue(b) ? NULL : b;
}

static char *first_fit(size_t asize, struct region **region)
{
  for (struct region *r = sbrk_heap.regions; r < sbrk_heap.regions + MAX_REGIONS; r++) {
    char *b = r->start ? first_fit_in_region(r, asize) : NULL;
    if (b != NULL) {
      *region = r;
      return b;
    }
  }
  return NULL;
}

/* Next fit: from the rover to the end of every region, then round to the rover. */
static char *next_fit(size_t asize, struct region **region)
{
  struct region *home = sbrk_heap.rover ? region_containing(sbrk_heap.rover) : NULL;
  if (home == NULL)
    return first_fit(asize, region);
  struct region *r = home;
  char *b = first_fit_in(sbrk_heap.rover, NULL, asize);
  for (size_t i = 1; b == NULL && i <= MAX_REGIONS; i++) {
    r = &sbrk_heap.regions[(size_t)(home - sbrk_heap.regions + i) % MAX_REGIONS];
    if (r->start != NULL)
      b = first_fit_in(r->first_free, r == home ? sbrk_heap.rover : NULL, asize);
  }
  *region = r;
  return b;
}

/* Best fit: the smallest fitting block of the whole heap (the first such on ties). */
static char *best_fit(size_t asize, struct region **region)
{
  char *best = NULL;
  for (struct region *r = sbrk_heap.regions; r < sbrk_heap.regions + MAX_REGIONS; r++) {
    for (char *b = r->start ? search_start(r, asize) : NULL; b && !is_epilogue(b);
         b = next_block(b)) {
      if (fits(b, asize) && (best == NULL || block_size(b) < block_size(best))) {
        best = b;
        *region = r;
        if (block_size(b) == asize)
          return best;
      }
    }
  }
  return best;
}

static char *find_fit(size_t asize, struct region **region)
{
  switch (sbrk_heap.fit) {
  case SBRK_FIT_NEXT: return next_fit(asize, region);
  case SBRK_FIT_BEST: return best_fit(asize, region);
  default: return first_fit(asize, region);
  }
}

/* Split block (in use, of size >= asize) when the remainder can hold a minimum block; the
 * remainder becomes free. Does not coalesce: callers know the remainder's next neighbour. */
static void split_block(struct region *r, char *block, size_t asize)
{
  size_t size = block_size(block);
  if (size - asize < BACKEND_MIN_BLOCK)
    return;
  write_in_use(block, asize);
  write_free(block + asize, size - asize);
  sbrk_heap.used_bytes -= size - asize;
  count_free(size - asize, 1);
  note_free_block(r, block + asize);
}

static void mark_dirty_up_to(struct region *r, char *end)
{
  if (r->clean_from < end)
    r->clean_from = end;
}

/* Carve an in-use block of asize bytes off the high end of the free block, which stays free
 * (smaller, at the same address: the search hints stay right). Returns the in-use block. */
static char *carve_high(char *block, size_t asize)
{
  size_t size = block_size(block);
  char *high = block + size - asize;
  write_free(block, size - asize); /* sets P in high's header */
  write_in_use(high, asize);
  sbrk_heap.used_bytes += asize;
  sbrk_heap.used_count++;
  uncount_free(asize, 0);
  return high;
}

/* Take the whole free block, then split off the tail when worth it. */
static char *carve_low(struct region *r, char *block, size_t asize)
{
  size_t size = block_size(block);
  uncount_free(size, 1);
  sbrk_heap.used_bytes += size;
  sbrk_heap.used_count++;
  write_in_use(block, size);
  split_block(r, block, asize);
  advance_first_free(r, block);
  return block;
}

/* place: an in-use block of at least asize bytes from the free block: from its low end; or,
 * for a request of SBRK_HIGH_PLACE_MIN bytes or more from a free block that keeps at least
 * SBRK_HIGH_PLACE_SLACK bytes (the heap's top, mostly), from its high end. Small and big blocks
 * carved from one free block then do not interleave, so that big blocks freed together leave
 * one big hole instead of many that only small requests can use (bench/replay's fragmenting
 * trace: utilization 0.53 without, 0.90 with). Returns the block; *dirty = how many of its
 * payload bytes may be non-zero (those below clean_from). */
static char *place(struct region *r, char *block, size_t asize, bool may_carve_high, size_t *dirty)
{
  char *clean = r->clean_from;
  forget_tag(r, (char *)footer(block)); /* payload now, in the zero area if it was there */
  size_t high_min = sbrk_heap.high_place_min ? sbrk_heap.high_place_min : SBRK_HIGH_PLACE_MIN;
  if (may_carve_high && asize >= high_min && block_size(block) - asize >= SBRK_HIGH_PLACE_SLACK)
    block = carve_high(block, asize);
  else
    block = carve_low(r, block, asize);
  sbrk_heap.rover = block;
  char *payload = payload_of(block), *payload_end = next_block(block);
  mark_dirty_up_to(r, payload_end);
  *dirty = clean <= payload ? 0 : (size_t)((clean < payload_end ? clean : payload_end) - payload);
  return block;
}

/* The top region's last block, when it is free and holds asize bytes. */
static char *top_fit(size_t asize, struct region **region)
{
  char *last = sbrk_heap.top ? free_last_block(sbrk_heap.top) : NULL;
  if (last == NULL || !fits(last, asize))
    return NULL;
  *region = sbrk_heap.top;
  return last;
}

/* An in-use block of at least asize bytes, *dirty = the payload bytes to clear for a zeroed
 * block; NULL when the OS refuses memory. Only a block that a
 * search found may be carved from its high end: the top taken after a search gave up is carved
 * from its low end, so that what remains of it stays next to the break and merges with the
 * heap's next extension (else each extension would strand a remnant below the big blocks:
 * working_set's heap grew 3x). */
static char *take_block(size_t asize, struct region **region, size_t *dirty)
{
  refuse_break_below_heap();
  char *block = find_fit(asize, region);
  bool searched = block != NULL;
  if (block == NULL)
    block = top_fit(asize, region); /* a search that gave up, or no fit: the top, grown */
  if (block == NULL)
    block = extend_heap(asize, region);
  if (block == NULL)
    return NULL;
  return place(*region, block, asize, searched, dirty);
}

/* ---- Freeing and resizing heap blocks ---------------------------------------------------- */

static void free_heap_block(struct region *r, char *block)
{
  size_t size = block_size(block);
  sbrk_heap.used_bytes -= size;
  sbrk_heap.used_count--;
  bool prev_free = is_prev_free(block);
  write_free(block, size);
  set_prev_free(block, prev_free);
  count_free(size, 1);
  block = coalesce(r, block);
  trim_top_if_worth_it(r, block);
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

static void check_freeable(struct region *r, char *payload, const char *function)
{
  char *block = block_of(payload);
  uint64_t tag = header(block);
  if (((uintptr_t)payload & 15) != 0 || payload < r->first + WORD)
    report_misuse("invalid pointer", payload, function);
  size_t size = tag_size(tag);
  if (size < BACKEND_MIN_BLOCK || size > (size_t)(epilogue_of(r) - block))
    report_misuse("heap corruption: block size out of the heap", payload, function);
  if (!(tag & TAG_IN_USE))
    report_misuse("double free", payload, function);
  if (tag & (SBRK_TAG_BIT3 | TAG_MAPPED))
    report_misuse("heap corruption: damaged block tag", payload, function);
  if (is_prev_free(next_block(block)))
    report_misuse("heap corruption: next block's tag damaged", payload, function);
}

static void check_mapped_freeable(void *payload, const char *function)
{
  uint64_t tag = *block_tag(payload);
  if ((tag & (TAG_IN_USE | TAG_MAPPED | SBRK_TAG_BIT3)) != (TAG_IN_USE | TAG_MAPPED))
    report_misuse("heap corruption: damaged block tag", payload, function);
}

/* Free one block, lock held. */
static void free_locked(void *payload, const char *function)
{
  refuse_break_below_heap();
  struct region *r = region_containing(payload);
  if (r != NULL) {
    check_freeable(r, payload, function);
    free_heap_block(r, block_of(payload));
  } else if (mapped_owns(payload)) {
    check_mapped_freeable(payload, function);
    mapped_free(payload);
  } else {
    report_misuse("invalid pointer", payload, function);
  }
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
    payload = mapped_alloc(asize, 16);
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
    else if ((block = take_block(asize, &r, &dirty)) == NULL)
      break;
    payloads[done] = payload_of(block);
  }
  lock_release(&sbrk_lock);
  return done;
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
    payload = mapped_alloc(asize, alignment);
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

void backend_free_batch(void **payloads, size_t count)
{
  lock_acquire(&sbrk_lock);
  for (size_t i = 0; i < count; i++)
    free_locked(payloads[i], "free");
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
    check_freeable(r, payload, "realloc");
    char *block = block_of(payload);
    done = true;
    if (asize <= block_size(block))
      shrink_in_place(r, block, asize);
    else
      done = grow_in_place(r, block, asize);
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

/* A heap address whose tag may be read: 16-aligned, inside a region, with a size that stays
 * inside it; or the payload of a mapped block. */
bool backend_owns(const void *payload)
{
  if (((uintptr_t)payload & 15) != 0)
    return false;
  bool owned;
  lock_acquire(&sbrk_lock);
  struct region *r = region_containing(payload);
  if (r != NULL) {
    char *block = block_of((void *)payload);
    size_t size = block_size(block);
    owned = block >= r->first && size >= BACKEND_MIN_BLOCK &&
            size <= (size_t)(epilogue_of(r) - block);
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

/* Unmap a mapped region whose only block is free. */
static size_t unmap_if_empty(struct region *r)
{
  char *block = r->first;
  if (!r->is_mapped || is_in_use(block) || !is_epilogue(next_block(block)))
    return 0;
  size_t len = r->len, size = block_size(block);
  if (!os_unmap(r->start, len))
    return 0;
  uncount_free(size, 1);
  sbrk_heap.region_bytes -= len;
  if (sbrk_heap.rover != NULL && sbrk_heap.rover >= r->first && sbrk_heap.rover < r->end)
    sbrk_heap.rover = NULL;
  r->start = NULL;
  index_free(r);
  return len;
}

/* Let the kernel drop the whole pages inside a free block (they read zero afterwards). */
static size_t release_free_pages(char *block)
{
  size_t page = os_page_size();
  char *from = (char *)align_up_addr((uintptr_t)block + 2 * WORD, page);
  char *to = (char *)align_down_addr((uintptr_t)(next_block(block) - WORD), page);
  if (to <= from)
    return 0;
  os_release(from, (size_t)(to - from));
  return (size_t)(to - from);
}

size_t backend_trim(size_t pad)
{
  lock_acquire(&sbrk_lock);
  size_t released = trim_top(pad);
  for (struct region *r = sbrk_heap.regions; r < sbrk_heap.regions + MAX_REGIONS; r++) {
    if (r->start != NULL)
      released += unmap_if_empty(r);
    if (r->start == NULL)
      continue;
    for (char *b = r->first; !is_epilogue(b); b = next_block(b))
      if (!is_in_use(b) && !(r == sbrk_heap.top && is_epilogue(next_block(b))))
        released += release_free_pages(b);
  }
  lock_release(&sbrk_lock);
  return released;
}

void backend_fork_prepare(void) { lock_acquire(&sbrk_lock); }
void backend_fork_parent(void) { lock_release(&sbrk_lock); }
void backend_fork_child(void) { lock_reset(&sbrk_lock); }
