/* sbrk_check.c: the sbrk backend's heap checker, backend_check_heap().
 *
 * Walks every region block by block (the physical view) and compares what it sees with the
 * counters and hints the allocator keeps (the logical view); one check per invariant I1-I12
 * drawn at the top of sbrk_backend.c, each failure reported with CHECK_FAIL (number, what,
 * address, file:line) without allocating. Mapped-alone blocks are checked by mapped_check (I9).
 */
#include "config.h"
#include "sbrk/sbrk_heap.h"

#include "os.h"
#include "util/report.h"

struct walk_totals {
  uint64_t free_bytes, free_count, used_bytes, used_count, region_bytes;
  bool rover_seen;
};

/* I11: P in block's header (a block or the epilogue) says whether the block before is free. */
static int check_prev_free_bit(char *block, bool prev_free)
{
  if (is_prev_free(block) != prev_free)
    return CHECK_FAIL(11, "P bit disagrees with the block before", block);
  return 0;
}

static int check_sentinels(struct region *r)
{
  char *prologue = r->first - PROLOGUE_SIZE;
  if (header(prologue) != (PROLOGUE_SIZE | TAG_IN_USE) ||
      *(uint64_t *)(prologue + WORD) != (PROLOGUE_SIZE | TAG_IN_USE))
    return CHECK_FAIL(1, "damaged prologue", prologue);
  if ((header(epilogue_of(r)) & ~TAG_PREV_FREE) != TAG_IN_USE)
    return CHECK_FAIL(1, "damaged epilogue", epilogue_of(r));
  return 0;
}

/* One block of the walk; prev_free: whether the block before it is free. */
static int check_block(struct region *r, char *block, bool prev_free)
{
  uint64_t tag = header(block);
  size_t size = tag_size(tag);
  if (((uintptr_t)payload_of(block) & 15) != 0)
    return CHECK_FAIL(5, "payload not 16-aligned", payload_of(block));
  if (size < BACKEND_MIN_BLOCK || size > (size_t)(epilogue_of(r) - block))
    return CHECK_FAIL(2, "block size breaks the tiling", block);
  if (!(tag & TAG_IN_USE) && *footer(block) != tag)
    return CHECK_FAIL(3, "free block's header differs from its footer", block);
  if (tag & (TAG_MAPPED | SBRK_TAG_BIT3))
    return CHECK_FAIL(6, "heap block with a flag other than U and P", block);
  if (prev_free && !(tag & TAG_IN_USE))
    return CHECK_FAIL(4, "two adjacent free blocks", block);
  if ((tag & TAG_IN_USE) && !tag_seal_ok(payload_of(block), tag))
    return CHECK_FAIL(13, "in-use block tag's check bits are wrong", block);
  return check_prev_free_bit(block, prev_free);
}

static int check_clean_area(struct region *r)
{
  if (r->clean_from < r->first || r->clean_from > epilogue_of(r))
    return CHECK_FAIL(10, "clean_from outside its region", r->clean_from);
  char *holder = r->first;
  while (!is_epilogue(holder) && next_block(holder) <= r->clean_from)
    holder = next_block(holder);
  char *limit = r->clean_from + CLEAN_CHECK_BYTES < epilogue_of(r) ?
                r->clean_from + CLEAN_CHECK_BYTES : epilogue_of(r);
  for (char *w = (char *)align_up_addr((uintptr_t)r->clean_from, WORD); w < limit; w += WORD)
    if (*(uint64_t *)w != 0 && w != holder && w != (char *)footer(holder))
      return CHECK_FAIL(10, "non-zero byte in the clean area", w);
  return 0;
}

/* I10 for the floors, in one walk: they rise with their index, each is a block start or the
 * epilogue, and every free block lies at or above the floor of its size (hence of any less). */
static int check_floors(struct region *r)
{
  unsigned next = 0; /* the lowest floor not yet matched with a block start */
  for (unsigned i = 1; i <= r->floor_top; i++)
    if (r->floor[i] < r->floor[i - 1])
      return CHECK_FAIL(10, "search floors do not rise", floor_at(r, i));
  for (char *b = r->first;; b = next_block(b)) {
    while (next <= r->floor_top && floor_at(r, next) == b)
      next++;
    if (next <= r->floor_top && floor_at(r, next) < b)
      return CHECK_FAIL(10, "search floor not at a block start", floor_at(r, next));
    if (is_epilogue(b))
      break;
    if (!is_in_use(b) && floor_at(r, floor_index(block_size(b))) > b)
      return CHECK_FAIL(10, "search floor above a big enough free block", b);
  }
  return next <= r->floor_top ? CHECK_FAIL(10, "search floor past the epilogue", NULL) : 0;
}

static int check_region(struct region *r, struct walk_totals *totals)
{
  int broken = check_sentinels(r);
  bool prev_free = false;
  char *b = r->first;
  bool first_free_seen = false, free_seen = false;
  for (; !broken && b < epilogue_of(r); b = next_block(b)) {
    if ((broken = check_block(r, b, prev_free)) != 0)
      break;
    prev_free = !is_in_use(b);
    first_free_seen |= b == r->first_free;
    if (prev_free && !free_seen && !first_free_seen)
      broken = CHECK_FAIL(10, "first_free above the lowest free block", r->first_free);
    free_seen |= prev_free;
    if (prev_free) {
      totals->free_bytes += block_size(b);
      totals->free_count++;
    } else {
      totals->used_bytes += block_size(b);
      totals->used_count++;
    }
    totals->rover_seen |= b == sbrk_heap.rover;
  }
  if (!broken && b != epilogue_of(r))
    broken = CHECK_FAIL(2, "blocks overrun the epilogue", b);
  if (!broken)
    broken = check_prev_free_bit(epilogue_of(r), prev_free);
  if (!broken && !first_free_seen && r->first_free != epilogue_of(r))
    broken = CHECK_FAIL(10, "first_free not at a block start", r->first_free);
  if (!broken)
    broken = check_floors(r);
  totals->region_bytes += r->len;
  if (!broken)
    broken = index_check(r);
  return broken ? broken : check_clean_area(r);
}

static int check_break(void)
{
  char *current = os_sbrk(0);
  for (struct region *r = sbrk_heap.regions; r < sbrk_heap.regions + MAX_REGIONS; r++)
    if (r->start != NULL && !r->is_mapped && current < r->end)
      return CHECK_FAIL(7, "break below the end of an sbrk region", current);
  if (sbrk_heap.top != NULL && sbrk_heap.top->end != sbrk_heap.our_break)
    return CHECK_FAIL(7, "top region does not end at our break", sbrk_heap.top->end);
  return 0;
}

static int check_counters(const struct walk_totals *t)
{
  if (t->free_bytes != sbrk_heap.free_bytes || t->free_count != sbrk_heap.free_count)
    return CHECK_FAIL(8, "free blocks differ from the counters", NULL);
  if (t->used_bytes != sbrk_heap.used_bytes || t->used_count != sbrk_heap.used_count)
    return CHECK_FAIL(8, "in-use blocks differ from the counters", NULL);
  if (t->region_bytes != sbrk_heap.region_bytes || sbrk_held_bytes() > os_mapped_bytes() ||
      sbrk_held_bytes() > sbrk_heap.peak_mapped_bytes)
    return CHECK_FAIL(8, "region bytes differ from the counters", NULL);
  if (sbrk_heap.rover != NULL && !t->rover_seen)
    return CHECK_FAIL(10, "rover not at a block", sbrk_heap.rover);
  return 0;
}

int backend_check_heap(void)
{
  struct walk_totals totals = { 0 };
  int broken = 0;
  lock_acquire(&sbrk_lock);
  broken = check_break(); /* first: a lowered break would make the walk fault */
  for (struct region *r = sbrk_heap.regions; !broken && r < sbrk_heap.regions + MAX_REGIONS; r++)
    if (r->start != NULL)
      broken = check_region(r, &totals);
  if (!broken)
    broken = check_counters(&totals);
  if (!broken)
    broken = mapped_check();
  lock_release(&sbrk_lock);
  return broken;
}
