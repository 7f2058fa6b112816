/* sbrk_place.c: where the sbrk backend's blocks go.
 *
 * Owns placement over the implicit list: the search hints (each region's first_free and
 * search floors, the next-fit rover: I10), the three fits (first, next, best), splitting a
 * free block and carving a block from its low or high end, and coalescing a freed block with
 * its neighbours (the four cases). The segment index it keeps up to date is sbrk_index.c.
 * Every function runs with sbrk_lock held.
 */
#include "config.h"
#include "sbrk/sbrk_heap.h"

/* ---- The lowest free block of a region (searches start there; I10) ---------------------- */

/* A free block appeared or grew at block: no hint may stay above it. */
static void note_free_block(struct region *r, char *block)
{
  if (block < r->first_free)
    r->first_free = block;
  uint32_t value = floor_value(r, block);
  for (unsigned i = floor_index(block_size(block)) + 1; i-- > 0 && r->floor[i] > value;)
    r->floor[i] = value; /* the floors rise with i: the lower ones are below block already */
  index_note_free(r, block);
}

/* The block starting at gone merged into the block at by (below it, its header written
 * already): hints move there. */
void forget_block_start(struct region *r, char *gone, char *by)
{
  if (sbrk_heap.rover == gone)
    sbrk_heap.rover = by;
  if (r->first_free == gone)
    r->first_free = by;
  uint32_t gone_value = floor_value(r, gone), by_value = floor_value(r, by);
  unsigned low = 0, high = r->floor_top + 1; /* the floors rise: find the run equal to gone */
  while (low < high) {
    unsigned middle = (low + high) / 2;
    if (r->floor[middle] < gone_value)
      low = middle + 1;
    else
      high = middle;
  }
  for (unsigned i = low; i <= r->floor_top && r->floor[i] == gone_value; i++)
    r->floor[i] = by_value;
  index_forget(r, gone, by);
}

/* A search showed that no free block of floor_size(index) bytes or more lies below to: raise
 * that floor, and the higher ones with it. */
static void raise_floor(struct region *r, unsigned index, char *to)
{
  uint32_t value = floor_value(r, to);
  for (unsigned i = index; i <= r->floor_top && r->floor[i] < value; i++)
    r->floor[i] = value;
}

/* The block at first_free was taken: first_free moves one block on (a lower bound). */
void advance_first_free(struct region *r, char *taken)
{
  if (r->first_free == taken)
    r->first_free = next_block(taken); /* still at or below the lowest free block */
  index_taken(r, taken);
}

/* ---- Coalescing -------------------------------------------------------------------------- */

/* Words that stop being tags inside the zero area are cleared, so that it stays zero (I10). */
void forget_tag(struct region *r, char *word)
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
char *coalesce(struct region *r, char *block)
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

/* ---- Placement: finding a fit, placing a block ------------------------------------------ */

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
  char *floor = floor_at(r, floor_index(asize));
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
void split_block(struct region *r, char *block, size_t asize)
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

void mark_dirty_up_to(struct region *r, char *end)
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
 * trace: utilization 0.53 without; 0.78 with a slack of 16 KiB and the heap grown 64 KiB at a
 * time; 0.91 with a slack of one minimum block and the heap grown a page at a time, which also
 * took bench/'s working_set from 1.45x to 1.26x glibc's peak RSS). Returns the block; *dirty =
 * how many of its payload bytes may be non-zero (those below clean_from). */
char *place(struct region *r, char *block, size_t asize, bool may_carve_high, size_t *dirty)
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

/* A block that realloc moves because it could not grow in place: first fit, carved from the
 * low end of the free block it finds (never the high end), so that it can go on growing in
 * place into the rest (bench/replay's string_builders: utilization 0.726 -> 0.770). */
static char *take_moving_block(size_t asize, struct region **region, size_t *dirty)
{
  sbrk_heap.moving_size = 0;
  char *block = first_fit(asize, region);
  if (block == NULL)
    block = top_fit(asize, region);
  if (block == NULL)
    block = extend_heap(asize, region);
  return block ? place(*region, block, asize, false, dirty) : NULL;
}

/* An in-use block of at least asize bytes, *dirty = the payload bytes to clear for a zeroed
 * block; NULL when the OS refuses memory. Only a block that a
 * search found may be carved from its high end: the top taken after a search gave up is carved
 * from its low end, so that what remains of it stays next to the break and merges with the
 * heap's next extension (else each extension would strand a remnant below the big blocks:
 * working_set's heap grew 3x). */
static char *take_block_as(size_t asize, struct region **region, size_t *dirty, bool may_go_high)
{
  refuse_break_below_heap();
  if (asize == sbrk_heap.moving_size) /* realloc moving a block that could not grow */
    return take_moving_block(asize, region, dirty);
  char *block = find_fit(asize, region);
  bool searched = block != NULL;
  if (block == NULL)
    block = top_fit(asize, region); /* a search that gave up, or no fit: the top, grown */
  if (block == NULL)
    block = extend_heap(asize, region);
  if (block == NULL)
    return NULL;
  return place(*region, block, asize, searched && may_go_high, dirty);
}

char *take_block(size_t asize, struct region **region, size_t *dirty)
{
  return take_block_as(asize, region, dirty, true);
}

char *take_block_low(size_t asize, struct region **region, size_t *dirty)
{
  return take_block_as(asize, region, dirty, false);
}
