/* sbrk_region.c: the sbrk backend's regions: where the heap's memory comes from and goes.
 *
 * Owns the regions (sbrk_heap.regions): laying one out (prologue, one free block, epilogue,
 * I1), growing the top region with sbrk, starting a new region when the break is not ours to
 * move (sbrk failed, or something else moved it: from sbrk at the new break, else mmap),
 * lowering the break when the top's free block passes SBRK_TRIM_THRESHOLD, giving back the
 * pages inside free blocks of SBRK_RELEASE_MIN bytes or more, unmapping empty mapped regions,
 * publishing the top region's range for backend_tag_readable(), and the heap's byte and block
 * counters (I8). Every function runs with sbrk_lock held.
 */
#include "config.h"
#include "sbrk/sbrk_heap.h"

#include "os.h"
#include "util/bits.h"
#include "util/report.h"

#include <string.h>

#if defined(HAVE_VALGRIND_MEMCHECK_H) && !defined(PALLOC_VALGRIND)
#  include <valgrind/memcheck.h>
/* Memory from sbrk reads zero (I10), which memcheck does not know. (With PALLOC_VALGRIND,
 * os.c makes it NOACCESS instead and palloc's own reads of it count as defined: util/vg.h.) */
#  define NOTE_ZERO_MEMORY(addr, len) VALGRIND_MAKE_MEM_DEFINED((addr), (len))
#else
#  define NOTE_ZERO_MEMORY(addr, len) ((void)0)
#endif

/* Publish the payloads of the top region, up to end, for backend_tag_readable(). */
static void publish_readable(struct region *r, char *end)
{
  __atomic_store_n(&sbrk_readable_high, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&sbrk_readable_low, (uintptr_t)payload_of(r->first), __ATOMIC_RELEASE);
  __atomic_store_n(&sbrk_readable_high, (uintptr_t)(end - WORD), __ATOMIC_RELEASE);
}

/* ---- Accounting -------------------------------------------------------------------------- */

void count_free(size_t size, int blocks)
{
  sbrk_heap.free_bytes += size;
  sbrk_heap.free_count += (uint64_t)(int64_t)blocks;
}

void uncount_free(size_t size, int blocks)
{
  sbrk_heap.free_bytes -= size;
  sbrk_heap.free_count -= (uint64_t)(int64_t)blocks;
}

uint64_t sbrk_held_bytes(void) { return sbrk_heap.region_bytes + mapped_total_len(); }

void note_peak(void)
{
  if (sbrk_held_bytes() > sbrk_heap.peak_mapped_bytes)
    sbrk_heap.peak_mapped_bytes = sbrk_held_bytes();
}

void sbrk_make_room(size_t bytes)
{
  uint64_t after = sbrk_held_bytes() + bytes;
  if (after > sbrk_heap.peak_mapped_bytes)
    mapped_cache_evict((size_t)(after - sbrk_heap.peak_mapped_bytes));
}

/* ---- Regions ----------------------------------------------------------------------------- */

struct region *region_containing(const void *addr)
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
    set_floor(r, i, r->first);
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

/* ---- Growing and trimming the heap ------------------------------------------------------- */

/* Someone lowered the break into the heap: its top is gone, and going on would fault or
 * corrupt. Checked before every walk and free (sbrk(0) is only a load in the C library). */
void refuse_break_below_heap(void)
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

bool can_grow_top(void) { return !sbrk_heap.sbrk_refused && break_is_ours(); }

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
    sbrk_make_room(len);
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
  sbrk_make_room(len);
  char *start = os_map(len);
  char *block = start ? init_region(r, start, len, true) : NULL;
  if (start != NULL && block == NULL)
    os_unmap(start, len);
  return block;
}

/* Grow the top region with sbrk so that its last block, free, holds asize bytes. */
char *extend_top(size_t asize)
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
  sbrk_make_room(incr);
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
char *extend_heap(size_t asize, struct region **region)
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
size_t trim_top(size_t pad)
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
  uint32_t last_value = floor_value(r, last);
  for (unsigned i = 0; i <= r->floor_top; i++)
    if (r->floor[i] > last_value)
      r->floor[i] = last_value;
  return release;
}

bool trim_top_if_worth_it(struct region *r, char *free_block)
{
  if (r != sbrk_heap.top || !is_epilogue(next_block(free_block)))
    return false;
  if (block_size(free_block) >= SBRK_TRIM_THRESHOLD + SBRK_TOP_PAD)
    trim_top(SBRK_TOP_PAD);
  return true;
}

/* Unmap a mapped region whose only block is free. */
size_t unmap_if_empty(struct region *r)
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

/* The whole pages inside a free block: after its header and before its footer. */
static char *interior_start(char *block)
{
  return (char *)align_up_addr((uintptr_t)block + 2 * WORD, os_page_size());
}
static char *interior_end(char *block)
{
  return (char *)align_down_addr((uintptr_t)(next_block(block) - WORD), os_page_size());
}

/* A block was freed and merged into the free block merged (not the top's last block, which
 * trim_top() looks after): when merged has SBRK_RELEASE_MIN bytes or more, give back the whole
 * pages of its interior that may hold data: all of them, or, past from (the freed block, when
 * the block before it was big enough to have been released itself) and below to (the block
 * after it, the same), only the freed block's pages and the tags' pages between them. */
void release_freed_pages(char *merged, char *from, char *to)
{
  if (block_size(merged) < SBRK_RELEASE_MIN)
    return;
  char *low = interior_start(merged), *high = interior_end(merged);
  if (from != NULL && (char *)align_down_addr((uintptr_t)(from - WORD), os_page_size()) > low)
    low = (char *)align_down_addr((uintptr_t)(from - WORD), os_page_size());
  if (to != NULL && interior_start(to) < high)
    high = interior_start(to);
  if (low < high)
    os_release(low, (size_t)(high - low));
}

/* Let the kernel drop the whole pages inside a free block (they read zero afterwards). */
size_t release_free_pages(char *block)
{
  char *from = interior_start(block), *to = interior_end(block);
  if (to <= from)
    return 0;
  os_release(from, (size_t)(to - from));
  return (size_t)(to - from);
}
