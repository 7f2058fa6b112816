/* sbrk_index.c: the segment index that lets a first-fit walk skip what cannot hold a request.
 *
 * Owns each region's segment index. A region is cut into segments of SEG_SIZE bytes counted
 * from its first block; a block belongs to the segment that holds its header. For each segment
 * the index keeps two 32-bit words, side by side in segs[s] (invariant I12, checked by
 * sbrk_check.c):
 *
 *   segs[s].max   no free block of segment s is bigger than this (an upper bound, made exact
 *                 again whenever a search walks the whole segment);
 *   segs[s].hint  0 when segment s holds no free block; else 1 + (b - first) / 16 for a block
 *                 start b in segment s at or below its lowest free block.
 *
 * (Two arrays, one of bounds and one of hints, touched two pages in every process; side by
 * side, a heap of up to 32 MiB touches one.)
 *
 * The walk stays the implicit list's walk (block after block, in address order, so first fit
 * stays exact); when it enters a segment whose bound is below what it looks for, it jumps to
 * the hint of the next segment that may hold it. The index grows with its region and
 * costs 8 bytes per 64 KiB of heap; its memory comes from os_map and is not heap memory.
 * Every function runs with sbrk_lock held.
 */
#include "config.h"
#include "sbrk/sbrk_heap.h"

#include "os.h"
#include "util/report.h"

#include <string.h>

/* ---- Segments ---------------------------------------------------------------------------- */

static inline char *hint_block(const struct region *r, size_t s)
{
  return r->segs[s].hint ? block_at_units(r, r->segs[s].hint - 1) : NULL;
}

static inline void set_hint(struct region *r, size_t s, char *block)
{
  r->segs[s].hint = block ? block_units(r, block) + 1 : 0;
  if (block == NULL)
    r->segs[s].max = 0;
}

static size_t index_bytes(size_t segs)
{
  return align_up_addr(segs * sizeof(struct segment), os_page_size());
}

/* Segments needed for a region of len bytes. */
static size_t segs_for(size_t len) { return (len >> SEG_SHIFT) + 1; }

bool index_init(struct region *r)
{
  size_t segs = segs_for(r->len) < SEG_INITIAL ? SEG_INITIAL : segs_for(r->len);
  struct segment *memory = os_map(index_bytes(segs));
  if (memory == NULL)
    return false;
  r->segs = memory;
  r->seg_capacity = segs;
  return true;
}

/* Make room for a region of len bytes; false when the OS refuses (the region then stays). */
bool index_grow(struct region *r, size_t len)
{
  size_t old = r->seg_capacity;
  if (segs_for(len) <= old)
    return true;
  if (len > (size_t)UINT32_MAX << 4)
    return false; /* hints are 32-bit offsets in units of 16 bytes */
  size_t segs = old * 2 > segs_for(len) ? old * 2 : segs_for(len);
  struct segment *memory = os_map(index_bytes(segs));
  if (memory == NULL)
    return false;
  memcpy(memory, r->segs, old * sizeof *memory);
  os_unmap(r->segs, index_bytes(old));
  r->segs = memory;
  r->seg_capacity = segs;
  return true;
}

void index_free(struct region *r)
{
  if (r->segs != NULL)
    os_unmap(r->segs, index_bytes(r->seg_capacity));
  r->segs = NULL;
}

/* ---- Keeping it right -------------------------------------------------------------------- */

/* A free block appeared or grew at block. */
void index_note_free(struct region *r, char *block)
{
  size_t s = segment_of(r, block), size = block_size(block);
  char *hint = hint_block(r, s);
  if (hint == NULL || hint > block)
    set_hint(r, s, block);
  if (r->segs[s].max < size)
    r->segs[s].max = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
}

/* The block start gone disappeared inside the block at by (already written, free or in use). */
void index_forget(struct region *r, char *gone, char *by)
{
  size_t s = segment_of(r, gone);
  if (hint_block(r, s) != gone)
    return;
  char *next = next_block(by);
  if (segment_of(r, by) == s)
    set_hint(r, s, by);
  else
    set_hint(r, s, !is_epilogue(next) && segment_of(r, next) == s ? next : NULL);
}

/* The block at taken is in use now: the hint of its segment moves one block on. */
void index_taken(struct region *r, char *taken)
{
  size_t s = segment_of(r, taken);
  if (hint_block(r, s) != taken)
    return;
  char *next = next_block(taken);
  set_hint(r, s, !is_epilogue(next) && segment_of(r, next) == s ? next : NULL);
}

/* The region was cut back to end at its free block last (it ended at old_end): the segments
 * past last's hold nothing. */
void index_trimmed(struct region *r, char *last, char *old_end)
{
  size_t end = segment_of(r, old_end);
  for (size_t s = segment_of(r, last) + 1; s <= end && s < r->seg_capacity; s++)
    set_hint(r, s, NULL);
}

/* ---- Searching --------------------------------------------------------------------------- */

/* The first block at or after block that the walk must look at for a free block of at least
 * least_size bytes: block itself when its segment may hold one, else the hint of the next
 * segment that may, else the epilogue. block starts its segment's walk. */
char *index_skip(struct region *r, char *block, size_t least_size)
{
  if (is_epilogue(block))
    return block;
  size_t s = segment_of(r, block), end = segment_of(r, epilogue_of(r));
  if (r->segs[s].hint && r->segs[s].max >= least_size)
    return block;
  for (s++; s <= end; s++)
    if (r->segs[s].hint && r->segs[s].max >= least_size)
      return hint_block(r, s);
  return epilogue_of(r);
}

/* A search walked every block of the segment of block and saw no free block above max_seen. */
void index_walked(struct region *r, char *block, size_t max_seen)
{
  size_t s = segment_of(r, block);
  if (max_seen == 0)
    set_hint(r, s, NULL);
  else if (max_seen < r->segs[s].max)
    r->segs[s].max = (uint32_t)max_seen;
}

/* ---- Checking (I12) ---------------------------------------------------------------------- */

/* Every free block lies at or above its segment's hint and within its bound; every hint is a
 * block start in its own segment; segments past the region's end hold nothing. */
int index_check(struct region *r)
{
  size_t hints_seen = 0, hints = 0, last = segment_of(r, epilogue_of(r));
  if (r->seg_capacity <= last)
    return CHECK_FAIL(12, "segment index smaller than its region", r->first);
  for (size_t s = 0; s < r->seg_capacity; s++)
    hints += r->segs[s].hint != 0;
  for (char *b = r->first; !is_epilogue(b); b = next_block(b)) {
    size_t s = segment_of(r, b);
    hints_seen += hint_block(r, s) == b;
    if (is_in_use(b))
      continue;
    if (hint_block(r, s) == NULL || hint_block(r, s) > b)
      return CHECK_FAIL(12, "free block below its segment's hint", b);
    if (r->segs[s].max < block_size(b))
      return CHECK_FAIL(12, "free block bigger than its segment's bound", b);
  }
  if (hints_seen != hints)
    return CHECK_FAIL(12, "segment hint not at a block start of its segment", r->first);
  return 0;
}
