/* test_sbrk_backend.c: unit tests of the sbrk backend, linked without the front end (TAP).
 *
 * Calls backend_* directly and runs backend_check_heap() after every step. Every test frees
 * what it allocates, so that the next one starts from a heap whose only free block is its top
 * (which makes placement predictable). The tests that take the break away from the backend
 * (foreign sbrk, sbrk refused) run last, and death tests run in forked children.
 */
#include "config.h"
#include "sbrk/sbrk_backend.h"
#include "sbrk/sbrk_heap.h" /* the corruption tests reach into the hints */

#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- A tiny TAP harness ------------------------------------------------------------------ */

static int failures_in_test;

static void fail_at(const char *file, int line, const char *what)
{
  printf("# %s:%d: failed: %s\n", file, line, what);
  failures_in_test++;
}

#define EXPECT(cond) ((cond) ? (void)0 : fail_at(__FILE__, __LINE__, #cond))
/* The heap must be consistent after every step. */
#define CHECK_HEAP() EXPECT(backend_check_heap() == 0)

static size_t tag_of(void *p) { return tag_size(*block_tag(p)); }
static bool in_use(void *p) { return *block_tag(p) & TAG_IN_USE; }
static char *next_payload(void *p) { return (char *)p + tag_of(p); }

static void fill(void *p, size_t n, unsigned seed)
{
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    b[i] = (unsigned char)(seed + i * 7);
}

static bool verify(const void *p, size_t n, unsigned seed)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != (unsigned char)(seed + i * 7))
      return false;
  return true;
}

static void *alloc_filled(size_t block_size, unsigned seed)
{
  void *p = backend_alloc(block_size, 0);
  EXPECT(p != NULL);
  if (p != NULL)
    fill(p, block_usable_size(p), seed);
  CHECK_HEAP();
  return p;
}

static void free_checked(void *p)
{
  backend_free(p);
  CHECK_HEAP();
}

static uint64_t free_bytes(void)
{
  struct backend_stats s;
  backend_get_stats(&s);
  return s.free_bytes;
}

static uint64_t held_bytes(void)
{
  struct backend_stats s;
  backend_get_stats(&s);
  return s.mapped_bytes;
}

/* Three adjacent blocks (carved one after the other from the top of the heap). */
static void alloc_adjacent(void **blocks, size_t count, size_t block_size)
{
  for (size_t i = 0; i < count; i++)
    blocks[i] = alloc_filled(block_size, (unsigned)i);
  for (size_t i = 1; i < count; i++)
    EXPECT(blocks[i] == next_payload(blocks[i - 1]));
}

/* ---- Coalescing: the four cases --------------------------------------------------------- */

static void test_coalesce_neither(void)
{
  void *b[3];
  alloc_adjacent(b, 3, 96);
  uint64_t before = free_bytes();
  free_checked(b[1]);
  EXPECT(!in_use(b[1]) && tag_of(b[1]) == 96);
  EXPECT(free_bytes() == before + 96);
  EXPECT(verify(b[0], 80, 0) && verify(b[2], 80, 2));
  free_checked(b[0]);
  free_checked(b[2]);
}

static void test_coalesce_next(void)
{
  void *b[4];
  alloc_adjacent(b, 4, 64);
  free_checked(b[2]);
  free_checked(b[1]); /* next (b[2]) free */
  EXPECT(!in_use(b[1]) && tag_of(b[1]) == 128);
  EXPECT(verify(b[0], 48, 0) && verify(b[3], 48, 3));
  free_checked(b[0]);
  free_checked(b[3]);
}

static void test_coalesce_prev(void)
{
  void *b[4];
  alloc_adjacent(b, 4, 64);
  free_checked(b[1]);
  free_checked(b[2]); /* previous (b[1]) free */
  EXPECT(!in_use(b[1]) && tag_of(b[1]) == 128);
  EXPECT(verify(b[0], 48, 0) && verify(b[3], 48, 3));
  free_checked(b[0]);
  free_checked(b[3]);
}

static void test_coalesce_both(void)
{
  void *b[5];
  alloc_adjacent(b, 5, 48);
  free_checked(b[1]);
  free_checked(b[3]);
  uint64_t before = free_bytes();
  free_checked(b[2]); /* both neighbours free */
  EXPECT(!in_use(b[1]) && tag_of(b[1]) == 3 * 48);
  EXPECT(free_bytes() == before + 48);
  EXPECT(verify(b[0], 32, 0) && verify(b[4], 32, 4));
  free_checked(b[0]);
  free_checked(b[4]);
}

/* ---- Splitting --------------------------------------------------------------------------- */

/* A free hole of hole_size bytes between two in-use blocks; returns its payload. */
static void *make_hole(size_t hole_size, void **guards)
{
  void *b[3];
  b[0] = alloc_filled(64, 1);
  b[1] = alloc_filled(hole_size, 2);
  b[2] = alloc_filled(64, 3);
  EXPECT(b[1] == next_payload(b[0]) && b[2] == next_payload(b[1]));
  free_checked(b[1]);
  guards[0] = b[0];
  guards[1] = b[2];
  return b[1];
}

static void test_split_thresholds(void)
{
  void *guards[2];
  void *hole = make_hole(512, guards);
  void *p = alloc_filled(512 - 16, 4); /* remainder 16 < minimum block: no split */
  EXPECT(p == hole && tag_of(p) == 512);
  free_checked(p);
  p = alloc_filled(512 - BACKEND_MIN_BLOCK, 5); /* remainder = minimum block: split */
  EXPECT(p == hole && tag_of(p) == 512 - BACKEND_MIN_BLOCK);
  char *rest = next_payload(p);
  EXPECT(!in_use(rest) && tag_of(rest) == BACKEND_MIN_BLOCK);
  void *q = alloc_filled(BACKEND_MIN_BLOCK, 6); /* the remainder is a usable block */
  EXPECT(q == rest);
  EXPECT(verify(p, 512 - BACKEND_MIN_BLOCK - 16, 5));
  free_checked(q);
  free_checked(p);
  EXPECT(tag_of(hole) == 512 && !in_use(hole));
  free_checked(guards[0]);
  free_checked(guards[1]);
}

/* ---- In-place realloc --------------------------------------------------------------------- */

static void test_resize_grow_into_next(void)
{
  void *b[3];
  alloc_adjacent(b, 3, 256);
  free_checked(b[1]);
  EXPECT(backend_resize(b[0], 400)); /* 256 + 144: the rest of b[1] stays free */
  CHECK_HEAP();
  EXPECT(tag_of(b[0]) == 400 && verify(b[0], 240, 0));
  EXPECT(!in_use(next_payload(b[0])) && tag_of(next_payload(b[0])) == 112);
  EXPECT(backend_resize(b[0], 512 - 16)); /* leaves 16: absorbed whole */
  CHECK_HEAP();
  EXPECT(tag_of(b[0]) == 512 && next_payload(b[0]) == b[2]);
  EXPECT(!backend_resize(b[0], 1024)); /* next in use: untouched */
  EXPECT(tag_of(b[0]) == 512);
  CHECK_HEAP();
  free_checked(b[0]);
  free_checked(b[2]);
}

static void test_resize_grow_at_heap_end(void)
{
  void *p = alloc_filled(4096, 9);
  char *old_break = sbrk(0);
  EXPECT(backend_resize(p, 200 * 1024)); /* beyond the free top: the break moves up */
  CHECK_HEAP();
  EXPECT(tag_of(p) >= 200 * 1024 && (char *)sbrk(0) > old_break);
  EXPECT(verify(p, 4096 - 16, 9));
  fill(p, block_usable_size(p), 10);
  free_checked(p);
}

static void test_resize_shrink(void)
{
  void *b[2];
  alloc_adjacent(b, 2, 1024);
  EXPECT(backend_resize(b[0], 1024 - 16)); /* tail too small to split: unchanged */
  EXPECT(tag_of(b[0]) == 1024);
  EXPECT(backend_resize(b[0], 256));
  CHECK_HEAP();
  EXPECT(tag_of(b[0]) == 256 && verify(b[0], 240, 0));
  char *tail = next_payload(b[0]);
  EXPECT(!in_use(tail) && tag_of(tail) == 768 && next_payload(tail) == b[1]);
  free_checked(b[1]); /* the tail coalesces with the next block */
  EXPECT(tag_of(tail) > 768);
  free_checked(b[0]);
}

/* A block that could not grow in place is moved (the front end allocates, copies, frees) to
 * the low end of the first free block that holds it, not its high end, so that it can go on
 * growing in place; a plain request of the same size is carved from the high end. */
static void test_resize_moving_block(void)
{
  enum { HOLE = 64 * 1024, MOVE = 1024 };
  void *hole = alloc_filled(HOLE, 1), *guard = alloc_filled(64, 2);
  void *b[2];
  alloc_adjacent(b, 2, 256);
  sbrk_set_high_place_min(0);
  free_checked(hole);
  char *plain = alloc_filled(MOVE, 3); /* not a move: from the hole's high end */
  EXPECT(plain == (char *)hole + HOLE - MOVE);
  free_checked(plain);
  EXPECT(!backend_resize(b[0], MOVE)); /* b[1] is in the way */
  CHECK_HEAP();
  char *moved = alloc_filled(MOVE, 4); /* the move: from the hole's low end */
  EXPECT(moved == hole);
  memcpy(moved, b[0], 256 - 8);
  free_checked(b[0]);
  EXPECT(backend_resize(moved, 4 * MOVE)); /* and it grows in place there */
  CHECK_HEAP();
  EXPECT(tag_of(moved) == 4 * MOVE && verify(moved, 256 - 8, 0));
  char *after = alloc_filled(MOVE, 5); /* the hint was used up: the high end again */
  EXPECT(after == (char *)hole + HOLE - MOVE);
  free_checked(after);
  free_checked(moved);
  free_checked(b[1]);
  free_checked(guard);
  sbrk_set_high_place_min(SIZE_MAX);
}

/* ---- Placement policies ------------------------------------------------------------------- */

/* Holes of 256, 128 and 256 bytes between guards; returns the placement of a 128-byte block. */
static char *place_in_holes(enum sbrk_fit fit, char **holes)
{
  void *x[3], *g[3];
  for (int i = 0; i < 3; i++) {
    x[i] = alloc_filled(i == 1 ? 128 : 256, 20);
    g[i] = alloc_filled(64, 21);
  }
  for (int i = 0; i < 3; i++) {
    free_checked(x[i]);
    holes[i] = x[i];
  }
  sbrk_set_fit_policy(fit);
  char *p = alloc_filled(128, 22);
  sbrk_set_fit_policy(SBRK_FIT_FIRST);
  free_checked(p);
  for (int i = 0; i < 3; i++)
    free_checked(g[i]);
  return p;
}

static void test_fit_policies(void)
{
  char *holes[3];
  EXPECT(place_in_holes(SBRK_FIT_FIRST, holes) == holes[0]);
  EXPECT(place_in_holes(SBRK_FIT_BEST, holes) == holes[1]);
  /* The rover sits at the last guard placed: next fit goes on from there, past the holes. */
  EXPECT(place_in_holes(SBRK_FIT_NEXT, holes) > holes[2]);
  EXPECT(strcmp(sbrk_fit_name(SBRK_FIT_NEXT), "next") == 0);
}

/* Big blocks are carved from the high end of a big free block, small ones from its low end,
 * so that they do not interleave: freeing the big ones leaves one hole that a bigger request
 * fits in (malloc-lab's fragmenting pattern). */
static void test_high_placement(void)
{
  enum { PAIRS = 8 };
  void *small[PAIRS], *big[PAIRS];
  sbrk_set_high_place_min(0);
  for (int i = 0; i < PAIRS; i++) {
    small[i] = alloc_filled(80, (unsigned)i);
    big[i] = alloc_filled(SBRK_HIGH_PLACE_MIN, (unsigned)i + 100);
  }
  for (int i = 1; i < PAIRS; i++) {
    EXPECT(small[i] == next_payload(small[i - 1]));    /* small ones upwards */
    EXPECT(next_payload(big[i]) == big[i - 1]);        /* big ones downwards, above them */
  }
  EXPECT((char *)big[PAIRS - 1] > (char *)small[PAIRS - 1] + SBRK_HIGH_PLACE_SLACK);
  for (int i = 0; i < PAIRS; i++)
    free_checked(big[i]);
  void *bigger = alloc_filled(2 * SBRK_HIGH_PLACE_MIN, 7); /* fits where two big ones were */
  EXPECT((char *)bigger >= (char *)big[PAIRS - 1] && (char *)bigger < (char *)big[0]);
  for (int i = 0; i < PAIRS; i++) {
    EXPECT(verify(small[i], 80 - 8, (unsigned)i));
    free_checked(small[i]);
  }
  free_checked(bigger);
  sbrk_set_high_place_min(SIZE_MAX);
}

/* A search gives up after SBRK_SEARCH_BUDGET blocks (served from the top), and the next one
 * goes on from where it stopped. The segment index would skip segments without free blocks,
 * so the blocks on the way are made to look worth a walk: 96-byte holes taken again leave
 * their segment's bound at 96 until a walk finds it stale. */
static void test_search_budget(void)
{
  enum { COUNT = 3 * SBRK_SEARCH_BUDGET, FAR = 2 * SBRK_SEARCH_BUDGET, STALE_END = 6000,
         STALE_STEP = 256, STALE = (STALE_END - 24) / STALE_STEP + 1 };
  static void *p[COUNT], *stale[STALE];
  EXPECT(backend_alloc_batch(48, p, COUNT) == COUNT);
  CHECK_HEAP();
  for (int k = 0; k < STALE; k++) {
    free_checked(p[24 + k * STALE_STEP]);
    free_checked(p[25 + k * STALE_STEP]);
  }
  for (int k = 0; k < STALE; k++) {
    stale[k] = alloc_filled(96, 4);
    EXPECT(stale[k] == p[24 + k * STALE_STEP]);
  }
  void *holes[] = { p[10], p[20], p[21], p[FAR], p[FAR + 1] };
  for (size_t i = 0; i < sizeof holes / sizeof *holes; i++)
    free_checked(holes[i]); /* 48 bytes at 10 (too small), 96 at 20 (near), 96 at FAR */
  void *first = alloc_filled(64, 1);  /* the near hole, found at once */
  void *second = alloc_filled(64, 2); /* the far one is out of reach: from the top */
  void *third = alloc_filled(64, 3);  /* goes on from where the last search stopped */
  EXPECT(first == p[20] && second != p[FAR] && third == p[FAR]);
  free_checked(first);
  free_checked(second);
  free_checked(third);
  for (int k = 0; k < STALE; k++) {
    free_checked(stale[k]);
    p[24 + k * STALE_STEP] = p[25 + k * STALE_STEP] = NULL;
  }
  for (int i = 0; i < COUNT; i++)
    if (i != 10 && i != 20 && i != 21 && i != FAR && i != FAR + 1 && p[i] != NULL)
      backend_free(p[i]);
  CHECK_HEAP();
}

static unsigned rng_state = 12345;
static unsigned rng(void)
{
  rng_state = rng_state * 1103515245u + 12345u;
  return rng_state >> 8;
}

static size_t random_block_size(void)
{
  unsigned r = rng() % 100;
  size_t size = r < 70 ? 32 + rng() % 512 : r < 95 ? 512 + rng() % 16384 : 16384 + rng() % 400000;
  return (size + 15) & ~(size_t)15;
}

/* Random allocations, frees and resizes, contents verified, the heap checked every step. */
static void stress(enum sbrk_fit fit, int steps)
{
  enum { SLOTS = 64 };
  void *slot[SLOTS] = { 0 };
  sbrk_set_fit_policy(fit);
  for (int step = 0; step < steps && failures_in_test == 0; step++) {
    unsigned i = rng() % SLOTS;
    if (slot[i] != NULL) {
      EXPECT(verify(slot[i], block_usable_size(slot[i]), i));
      if (rng() % 3 == 0 && backend_resize(slot[i], random_block_size())) {
        fill(slot[i], block_usable_size(slot[i]), i);
      } else {
        backend_free(slot[i]);
        slot[i] = NULL;
      }
    } else {
      slot[i] = alloc_filled(random_block_size(), i);
    }
    CHECK_HEAP();
  }
  for (unsigned i = 0; i < SLOTS; i++)
    if (slot[i] != NULL)
      free_checked(slot[i]);
  sbrk_set_fit_policy(SBRK_FIT_FIRST);
}

static void test_stress_first(void) { stress(SBRK_FIT_FIRST, 3000); }
static void test_stress_next(void) { stress(SBRK_FIT_NEXT, 3000); }
static void test_stress_best(void) { stress(SBRK_FIT_BEST, 3000); }

/* ---- Batches, zeroing, alignment, mapped blocks, ownership ------------------------------- */

static void test_batch(void)
{
  void *p[40];
  size_t n = backend_alloc_batch(80, p, 40);
  CHECK_HEAP();
  EXPECT(n == 40);
  for (size_t i = 0; i < n; i++) {
    EXPECT(in_use(p[i]) && tag_of(p[i]) >= 80 && ((uintptr_t)p[i] & 15) == 0);
    fill(p[i], 64, (unsigned)i);
  }
  for (size_t i = 0; i < n; i++)
    EXPECT(verify(p[i], 64, (unsigned)i));
  backend_free_batch(p, n);
  CHECK_HEAP();
}

/* Whether the bytes [a, a + a_len) and [b, b + b_len) lie in different cache lines. */
static bool no_line_shared(void *a, size_t a_len, void *b, size_t b_len)
{
  uintptr_t line = SBRK_BATCH_ALIGN, a_first = (uintptr_t)a / line, b_first = (uintptr_t)b / line;
  uintptr_t a_last = ((uintptr_t)a + a_len - 1) / line, b_last = ((uintptr_t)b + b_len - 1) / line;
  return a_last < b_first || b_last < a_first;
}

/* Each batch (a thread cache's refill) starts a cache line of its own: its blocks share no
 * line with the blocks handed out before it (two threads' blocks would fight over the line),
 * and every block is exactly the size asked (its size class in the front end). */
/* A batch of one block (a thread's first refill of a class) starts a cache line of its own;
 * bigger batches (the refills after it) are cut side by side where first fit puts them (here
 * the top, the heap's only free block), without a gap. */
static void test_batch_own_line(void)
{
  void *before = alloc_filled(32, 1), *p[1], *q[4];
  EXPECT(backend_alloc_batch(48, q, 4) == 4);
  CHECK_HEAP();
  for (int i = 0; i < 4; i++) {
    EXPECT(tag_of(q[i]) == 48);
    EXPECT(q[i] == next_payload(i == 0 ? before : q[i - 1])); /* no gap before a batch of 4 */
    fill(q[i], 40, 20u + (unsigned)i);
  }
  EXPECT(backend_alloc_batch(32, p, 1) == 1);
  CHECK_HEAP();
  EXPECT((uintptr_t)p[0] % SBRK_BATCH_ALIGN == 0 && tag_of(p[0]) == 32);
  fill(p[0], 24, 10);
  EXPECT(no_line_shared(q[3], 40, p[0], 24));
  EXPECT(verify(p[0], 24, 10) && verify(before, 24, 1));
  for (int i = 0; i < 4; i++)
    EXPECT(verify(q[i], 40, 20u + (unsigned)i));
  backend_free_batch(p, 1);
  CHECK_HEAP();
  backend_free_batch(q, 4);
  CHECK_HEAP();
  free_checked(before);
}

static bool all_zero(const void *p, size_t n)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != 0)
      return false;
  return true;
}

static void test_zeroing(void)
{
  void *p = alloc_filled(20000, 0xff);
  free_checked(p);
  void *q = backend_alloc(20000, BACKEND_ZERO); /* reuses dirty memory */
  CHECK_HEAP();
  EXPECT(q != NULL && all_zero(q, block_usable_size(q)));
  void *r = backend_alloc(150000, BACKEND_ZERO); /* partly fresh from the OS */
  CHECK_HEAP();
  EXPECT(r != NULL && all_zero(r, block_usable_size(r)));
  void *m = backend_alloc(1 << 20, BACKEND_ZERO); /* mapped on its own */
  EXPECT(m != NULL && all_zero(m, block_usable_size(m)));
  fill(q, block_usable_size(q), 1);
  fill(r, block_usable_size(r), 2);
  free_checked(q);
  free_checked(r);
  free_checked(m);
}

static void test_aligned(void)
{
  static const size_t sizes[] = { 32, 80, 4096, 100000 };
  for (size_t align = 32; align <= ((size_t)1 << 30); align <<= 1) {
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
      if (align > (1u << 22) && i > 1)
        continue; /* the largest alignments: small blocks only, to keep the test quick */
      void *p = backend_alloc_aligned(align, sizes[i], 0);
      CHECK_HEAP();
      EXPECT(p != NULL && ((uintptr_t)p & (align - 1)) == 0 && tag_of(p) >= sizes[i]);
      if (p == NULL)
        continue;
      fill(p, block_usable_size(p), (unsigned)i);
      EXPECT(verify(p, block_usable_size(p), (unsigned)i));
      free_checked(p);
    }
  }
}

static void test_mapped(void)
{
  void *p = backend_alloc(SBRK_MAP_THRESHOLD + 4096, 0);
  EXPECT(p != NULL && (*block_tag(p) & TAG_MAPPED) && tag_of(p) >= SBRK_MAP_THRESHOLD);
  fill(p, block_usable_size(p), 3);
  CHECK_HEAP();
  void *q = backend_remap(p, 4u << 20);
  CHECK_HEAP();
  EXPECT(q != NULL && tag_of(q) >= (4u << 20) && verify(q, SBRK_MAP_THRESHOLD, 3));
  EXPECT(backend_resize(q, SBRK_MAP_THRESHOLD)); /* shrink: tail pages unmapped */
  CHECK_HEAP();
  EXPECT(tag_of(q) < (4u << 20) && verify(q, SBRK_MAP_THRESHOLD - 16, 3));
  EXPECT(!backend_resize(q, 8u << 20));
  EXPECT(backend_owns(q));
  free_checked(q);
  EXPECT(!backend_owns(q));
}

/* A freed mapping is kept and reused (its tail cut, its contents cleared for a zeroed block);
 * backend_trim gives it back. */
static void test_mapping_cache(void)
{
  size_t big = 4 * SBRK_MAP_THRESHOLD, smaller = SBRK_MAP_THRESHOLD + 8192;
  void *p = alloc_filled(big, 4);
  uint64_t held = held_bytes();
  free_checked(p);
  EXPECT(held_bytes() == held); /* kept */
  void *q = backend_alloc(smaller, BACKEND_ZERO);
  CHECK_HEAP();
  EXPECT(q == p && (*block_tag(q) & TAG_MAPPED) && tag_of(q) >= smaller && tag_of(q) < big);
  EXPECT(q != NULL && all_zero(q, block_usable_size(q)));
  EXPECT(held_bytes() < held); /* the tail went back */
  fill(q, block_usable_size(q), 5);
  free_checked(q);
  uint64_t before_trim = held_bytes();
  EXPECT(backend_trim(0) >= smaller);
  CHECK_HEAP();
  EXPECT(held_bytes() + smaller <= before_trim);
  void *r = alloc_filled(big, 6); /* a fresh mapping again */
  free_checked(r);
  backend_trim(0);
}

/* When the heap takes more memory from the OS and would hold more than at its peak, the cache
 * of freed mappings gives back at least the excess first; below the peak it keeps them. */
static void test_mapping_cache_evicted(void)
{
  enum { T = SBRK_MAP_THRESHOLD };
  backend_trim(0); /* a small free top, an empty cache */
  uint64_t saved_peak = sbrk_heap.peak_mapped_bytes;
  void *mapped = alloc_filled(4 * T, 1);
  sbrk_heap.peak_mapped_bytes = held_bytes(); /* the peak is now */
  uint64_t peak = held_bytes();
  free_checked(mapped);
  EXPECT(held_bytes() == peak); /* kept in the cache */
  void *heap = alloc_filled(T / 2, 2); /* the break goes up past the peak: the cache goes */
  EXPECT(!(*block_tag(heap) & TAG_MAPPED) && held_bytes() <= peak);
  EXPECT(mapped_cache_evict(SIZE_MAX) == 0);
  void *again = alloc_filled(2 * T, 3);
  free_checked(again); /* cached */
  void *below = alloc_filled(T / 2, 4); /* the break goes up, below the peak: the cache stays */
  EXPECT(held_bytes() <= peak && mapped_cache_evict(SIZE_MAX) >= 2 * T);
  EXPECT(verify(heap, T / 2 - 8, 2) && verify(below, T / 2 - 8, 4));
  free_checked(below);
  free_checked(heap);
  backend_trim(0);
  if (sbrk_heap.peak_mapped_bytes < saved_peak)
    sbrk_heap.peak_mapped_bytes = saved_peak;
}

static int global_word[4];

static void test_owns(void)
{
  int local[8];
  void *p = alloc_filled(64, 1);
  EXPECT(backend_owns(p));
  EXPECT(!backend_owns((char *)p + 8));
  EXPECT(!backend_owns((void *)16) && !backend_owns(local) && !backend_owns(global_word));
  EXPECT(!backend_owns((void *)(uintptr_t)0x1000));
  EXPECT(backend_tag_readable(p)); /* the free fast path's check: heap blocks only */
  EXPECT(!backend_tag_readable(local) && !backend_tag_readable(global_word));
  EXPECT(!backend_tag_readable((void *)16) && !backend_tag_readable(sbrk(0)));
  void *m = backend_alloc(1 << 20, 0);
  EXPECT(!backend_tag_readable(m));
  free_checked(m);
  free_checked(p);
}

static void test_errno_preserved(void)
{
  errno = 4321;
  void *p = backend_alloc(64, 0);
  void *q = backend_alloc(1 << 20, 0);
  backend_resize(p, 4096);
  backend_free(p);
  backend_free(q);
  backend_trim(0);
  EXPECT(errno == 4321);
  CHECK_HEAP();
}

/* ---- Giving memory back ------------------------------------------------------------------- */

static void test_trim_on_free(void)
{
  void *p[64];
  char *low = sbrk(0);
  for (int i = 0; i < 64; i++)
    p[i] = alloc_filled(16384, (unsigned)i);
  char *high = sbrk(0);
  EXPECT(high >= low + 64 * 16384);
  for (int i = 0; i < 64; i++)
    free_checked(p[i]);
  char *after = sbrk(0); /* the free top passed the threshold: the break came down */
  EXPECT(!backend_tag_readable(p[63]) && !backend_tag_readable(after)); /* gone with it */
  EXPECT(after < high && after <= low + SBRK_TRIM_THRESHOLD + SBRK_TOP_PAD + 2 * 4096);
  struct backend_stats s;
  backend_get_stats(&s);
  EXPECT(s.peak_mapped_bytes >= s.mapped_bytes + 64 * 16384 - SBRK_TRIM_THRESHOLD - SBRK_TOP_PAD);
}

static void test_trim_call(void)
{
  enum { COUNT = 3000 };
  static void *p[COUNT];
  for (int i = 0; i < COUNT; i++)
    p[i] = alloc_filled(32 + (rng() % 1024) * 16, (unsigned)i);
  for (int i = 0; i < COUNT; i++)
    if (i % 13 != 0) {
      backend_free(p[i]);
      p[i] = NULL;
    }
  CHECK_HEAP();
  EXPECT(backend_trim(0) > 0); /* pages inside the holes, at least */
  CHECK_HEAP();
  for (int i = 0; i < COUNT; i++)
    if (p[i] != NULL) {
      EXPECT(verify(p[i], 16, (unsigned)i));
      free_checked(p[i]);
    }
  backend_trim(0);
  CHECK_HEAP();
}

/* Resident pages among the whole pages inside the free block at payload p (its interior). */
static size_t resident_interior_pages(void *p)
{
  size_t page = os_page_size();
  uintptr_t from = align_up_addr((uintptr_t)p + WORD, page);
  uintptr_t to = align_down_addr((uintptr_t)p + tag_of(p) - 2 * WORD, page);
  if (to <= from)
    return 0;
  unsigned char vec[64];
  size_t pages = (to - from) / page, resident = 0;
  EXPECT(pages <= sizeof vec && mincore((void *)from, to - from, vec) == 0);
  for (size_t i = 0; i < pages && i < sizeof vec; i++)
    resident += vec[i] & 1;
  return resident;
}

/* A freed block that leaves a free block of SBRK_RELEASE_MIN bytes or more (not the top) has
 * the pages inside it given back at once: the freed block's own, those of the tags it merged
 * away, and those of a smaller free neighbour; smaller free blocks keep their pages. */
static void test_release_on_free(void)
{
  enum { BIG = 40 * 1024 };
  _Static_assert(BIG >= SBRK_RELEASE_MIN && 3 * BIG + 96 < SBRK_MAP_THRESHOLD, "sizes");
  void *b[7];
  b[0] = alloc_filled(64, 0);
  b[1] = alloc_filled(BIG, 1);
  b[2] = alloc_filled(96, 2);  /* a small block between two big ones */
  b[3] = alloc_filled(BIG, 3);
  b[4] = alloc_filled(BIG, 4);
  b[5] = alloc_filled(8192, 5); /* below SBRK_RELEASE_MIN */
  b[6] = alloc_filled(64, 6);
  for (int i = 1; i < 7; i++)
    EXPECT(b[i] == next_payload(b[i - 1]));
  free_checked(b[1]);
  EXPECT(!in_use(b[1]) && resident_interior_pages(b[1]) == 0);
  free_checked(b[3]); /* its own pages */
  EXPECT(resident_interior_pages(b[3]) == 0);
  free_checked(b[5]); /* too small to be worth a system call: its pages stay */
  EXPECT(!in_use(b[5]) && resident_interior_pages(b[5]) > 0);
  free_checked(b[2]); /* merges b[1], b[2], b[3]: the pages of b[2] and of the tags go */
  EXPECT(!in_use(b[1]) && tag_of(b[1]) == 2 * BIG + 96 && resident_interior_pages(b[1]) == 0);
  free_checked(b[4]); /* merges all from b[1] to b[5], b[5]'s pages too */
  EXPECT(tag_of(b[1]) == 3 * BIG + 96 + 8192 && resident_interior_pages(b[1]) == 0);
  EXPECT(verify(b[0], 48, 0) && verify(b[6], 48, 6));
  void *again = alloc_filled(BIG, 7); /* released pages come back as zero, then as written */
  EXPECT(again == b[1] && verify(again, BIG - 8, 7));
  free_checked(again);
  free_checked(b[0]);
  free_checked(b[6]);
}

/* ---- Corruption: flip one bit, expect the invariant's number ---------------------------- */

/* Flip bits in one or two words (second may be NULL), expect the checker to name invariant,
 * then flip them back and expect a consistent heap again. */
static void expect_broken(uint64_t *word, uint64_t *second, uint64_t flip, int invariant)
{
  *word ^= flip;
  if (second != NULL)
    *second ^= flip;
  printf("# expecting I%d below\n", invariant);
  EXPECT(backend_check_heap() == invariant);
  *word ^= flip;
  if (second != NULL)
    *second ^= flip;
  CHECK_HEAP();
}

/* Set count words to new values, expect the checker to name invariant, then restore them and
 * expect a consistent heap again (for corruptions that take more than one flipped bit). */
static void expect_broken_words(uint64_t **words, const uint64_t *values, int count, int invariant)
{
  uint64_t saved[4];
  for (int i = 0; i < count; i++) {
    saved[i] = *words[i];
    *words[i] = values[i];
  }
  printf("# expecting I%d below\n", invariant);
  EXPECT(backend_check_heap() == invariant);
  for (int i = count; i-- > 0;)
    *words[i] = saved[i];
  CHECK_HEAP();
}

/* Make the in-use block at p look free: header and footer without U, P in the next header. */
static void expect_broken_as_free(void *p, int invariant)
{
  uint64_t *words[3] = { block_tag(p), (uint64_t *)((char *)p + tag_of(p) - 16),
                         block_tag(next_payload(p)) };
  uint64_t values[3] = { *words[0] & ~TAG_IN_USE, *words[0] & ~TAG_IN_USE,
                         *words[2] | TAG_PREV_FREE };
  expect_broken_words(words, values, 3, invariant);
}

static struct region *region_of(void *p)
{
  struct region *r = sbrk_heap.regions;
  while (!(r->start != NULL && (char *)p >= r->first && (char *)p < r->end))
    r++;
  return r;
}

static void test_corruption(void)
{
  void *b[4];
  alloc_adjacent(b, 4, 128);
  uint64_t *head = block_tag(b[1]);
  uint64_t *foot = (uint64_t *)((char *)b[1] + 128 - 16); /* b[1]'s footer once it is free */
  expect_broken(head, NULL, (uint64_t)1 << 40, 2);    /* the size runs past the region */
  expect_broken(head, NULL, SBRK_TAG_BIT3, 6);        /* an in-use block with bit 3 */
  expect_broken(head, NULL, TAG_MAPPED, 6);
  expect_broken(head, NULL, TAG_PREV_FREE, 11);       /* P set, but b[0] is in use */
  expect_broken(head, NULL, TAG_IN_USE, 3);           /* looks free, has no footer */
  expect_broken_as_free(b[1], 10);                    /* a free block below first_free */
  free_checked(b[1]);
  expect_broken(head, NULL, 16, 3);                   /* header says 144, footer 128 */
  expect_broken(foot, NULL, SBRK_TAG_BIT3, 3);        /* header != footer */
  expect_broken(head, foot, SBRK_TAG_BIT3, 6);        /* both carry bit 3 */
  expect_broken(head, foot, TAG_MAPPED, 6);
  expect_broken(block_tag(b[2]), NULL, TAG_PREV_FREE, 11); /* b[2] does not say b[1] is free */
  expect_broken_as_free(b[2], 4);                     /* two adjacent free blocks */
  b[1] = alloc_filled(128, 1);                        /* back into its hole */
  EXPECT(block_tag(b[1]) == head);
  void *c[5];
  alloc_adjacent(c, 5, 64);
  free_checked(c[0]);                                 /* c[0] is now the lowest free block */
  expect_broken_as_free(c[2], 8);  /* looks free, above first_free: only the counters differ */
  struct region *r = region_of(c[0]);                 /* the search hints of c's region */
  uint32_t saved_floors[FLOOR_COUNT];
  char *saved_first_free = r->first_free;
  memcpy(saved_floors, r->floor, sizeof saved_floors);
  for (unsigned i = 0; i <= r->floor_top && floor_at(r, i) < (char *)c[1] - 8; i++)
    set_floor(r, i, (char *)c[1] - 8);                /* floors above the free c[0] */
  printf("# expecting I10 below\n");
  EXPECT(backend_check_heap() == 10);
  set_floor(r, 0, (char *)c[2] - 8);                  /* floors that do not rise */
  printf("# expecting I10 below\n");
  EXPECT(backend_check_heap() == 10);
  memcpy(r->floor, saved_floors, sizeof saved_floors);
  r->first_free = (char *)c[2] - 8;                   /* first_free above the free c[0] */
  printf("# expecting I10 below\n");
  EXPECT(backend_check_heap() == 10);
  r->first_free = saved_first_free;
  CHECK_HEAP();
  size_t s = (size_t)((char *)c[0] - 8 - r->first) >> SEG_SHIFT; /* c[0]'s segment */
  uint32_t saved_max = r->segs[s].max, saved_hint = r->segs[s].hint;
  r->segs[s].max = 16;                                 /* a bound below the free c[0] */
  printf("# expecting I12 below\n");
  EXPECT(backend_check_heap() == 12);
  r->segs[s].max = saved_max;
  r->segs[s].hint = 0;                                 /* "no free block" in c[0]'s segment */
  printf("# expecting I12 below\n");
  EXPECT(backend_check_heap() == 12);
  r->segs[s].hint = saved_hint + 1;                    /* a hint between two block starts */
  printf("# expecting I12 below\n");
  EXPECT(backend_check_heap() == 12);
  r->segs[s].hint = saved_hint;
  CHECK_HEAP();
  for (int i = 1; i < 5; i++)
    free_checked(c[i]);
  expect_broken((uint64_t *)(region_of(b[0])->first - 8), NULL, 32, 1); /* prologue footer */
  void *big[16], *fresh = NULL; /* a block that reaches into its region's zero area */
  int count = 0;
  while (count < 16 && fresh == NULL) {
    void *p = big[count++] = alloc_filled(60000, 5); /* below SBRK_MAP_THRESHOLD */
    if ((char *)sbrk_clean_from(p) == (char *)p - 8 + tag_of(p) &&
        !in_use(next_payload(p)) && tag_of(next_payload(p)) >= 512)
      fresh = p; /* followed by a free block in the zero area, big enough for the stray */
  }
  EXPECT(fresh != NULL);
  if (fresh != NULL) {
    char *top = next_payload(fresh);
    EXPECT(!in_use(top));
    expect_broken((uint64_t *)(top + 256), NULL, 1, 10); /* a stray byte in the zero area */
  }
  while (count > 0)
    free_checked(big[--count]);
  void *m = backend_alloc(1 << 20, 0);
  expect_broken(block_tag(m), NULL, 16, 9);          /* its size overruns its mapping */
  free_checked(m);
  char *brk_now = sbrk(0), saved[16];
  memcpy(saved, brk_now - 16, 16);
  sbrk(-16);                                         /* the break moved into the heap */
  EXPECT(backend_check_heap() == 7);
  sbrk(16);
  memcpy(brk_now - 16, saved, 16); /* valgrind clears memory given back to the break */
  CHECK_HEAP();
  free_checked(b[0]);
  free_checked(b[2]);
  free_checked(b[3]);
}

/* ---- Misuse: death in a forked child ---------------------------------------------------- */

static void run_dying(void (*body)(void), const char *token)
{
  int fds[2];
  EXPECT(pipe(fds) == 0);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    body();
    _exit(0);
  }
  close(fds[1]);
  char text[512] = { 0 };
  size_t len = 0;
  ssize_t n;
  while (len < sizeof text - 1 && (n = read(fds[0], text + len, sizeof text - 1 - len)) > 0)
    len += (size_t)n;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  EXPECT(strncmp(text, "palloc: ", 8) == 0 && strstr(text, token) != NULL);
  if (failures_in_test)
    printf("# child (status %#x) said: %s\n", (unsigned)status, text);
}

static void double_free(void)
{
  void *p = backend_alloc(64, 0);
  void *guard = backend_alloc(64, 0);
  (void)guard;
  backend_free(p);
  backend_free(p);
}

static void overflow_into_next(void)
{
  char *a = backend_alloc(48, 0);
  void *b = backend_alloc(48, 0);
  void *guard = backend_alloc(48, 0);
  (void)guard;
  memset(a, 'x', block_usable_size(a) + 8); /* b's header */
  backend_free(b);
}

static void free_stack_pointer(void)
{
  char local[64];
  backend_free(local + 16);
}

static void free_interior(void)
{
  char *p = backend_alloc(4096, 0);
  backend_free(p + 1024);
}

static void free_bit3(void)
{
  void *p = backend_alloc(64, 0);
  *block_tag(p) |= SBRK_TAG_BIT3;
  backend_free(p);
}

static void free_mapped_twice(void)
{
  void *p = backend_alloc(1 << 20, 0);
  backend_free(p);
  backend_free(p);
}

/* The program lowers the break into the heap: noticed at the next call. */
static void lower_break_into_heap(void)
{
  sbrk(-4096);
  backend_alloc(64, 0);
}

static void test_misuse(void)
{
  run_dying(double_free, "double free");
  run_dying(overflow_into_next, "heap corruption");
  run_dying(free_stack_pointer, "invalid pointer");
  run_dying(free_interior, "heap corruption");
  run_dying(free_bit3, "heap corruption");
  run_dying(free_mapped_twice, "invalid pointer");
  run_dying(lower_break_into_heap, "break adjusted");
}

/* ---- Threads and fork ------------------------------------------------------------------- */

static void *thread_body(void *arg)
{
  unsigned seed = (unsigned)(uintptr_t)arg;
  void *p[32] = { 0 };
  for (int i = 0; i < 20000; i++) {
    unsigned k = (seed = seed * 1103515245u + 12345u) >> 8;
    unsigned s = k % 32;
    if (p[s] != NULL) {
      if (!verify(p[s], 16, s))
        return (void *)1;
      backend_free(p[s]);
      p[s] = NULL;
    } else if ((p[s] = backend_alloc(32 + (k % 97) * 16, 0)) != NULL) {
      fill(p[s], 16, s);
    }
  }
  for (int s = 0; s < 32; s++)
    if (p[s] != NULL)
      backend_free(p[s]);
  return NULL;
}

static void test_threads_and_fork(void)
{
  pthread_t t[2];
  for (uintptr_t i = 0; i < 2; i++)
    EXPECT(pthread_create(&t[i], NULL, thread_body, (void *)(i + 1)) == 0);
  for (int i = 0; i < 2; i++) {
    void *result = (void *)1;
    pthread_join(t[i], &result);
    EXPECT(result == NULL);
  }
  CHECK_HEAP();
  backend_fork_prepare();
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    backend_fork_child();
    void *p = backend_alloc(64, 0);
    backend_free(p);
    _exit(p != NULL && backend_check_heap() == 0 ? 0 : 1);
  }
  backend_fork_parent();
  int status = 1;
  waitpid(pid, &status, 0);
  EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_HEAP();
}

/* ---- Others move the break ---------------------------------------------------------------- */

static void test_foreign_sbrk(void)
{
  void *before = alloc_filled(64, 1);
  char *foreign = sbrk(8192);
  EXPECT(foreign != (void *)-1);
  memset(foreign, 0x5a, 8192);
  CHECK_HEAP();
  void *p[40];
  for (int i = 0; i < 40; i++) { /* 40 * 16 KiB: the heap must grow, past the foreign part */
    p[i] = alloc_filled(16384, (unsigned)i);
    EXPECT((char *)p[i] + 16384 <= foreign || (char *)p[i] >= foreign + 8192);
  }
  for (int i = 0; i < 8192; i++)
    if (foreign[i] != 0x5a) {
      EXPECT(!"foreign region overwritten");
      break;
    }
  for (int i = 0; i < 40; i++) {
    EXPECT(verify(p[i], 16384 - 16, (unsigned)i));
    free_checked(p[i]);
  }
  free_checked(before);
}

/* Make sbrk fail: a mapping just above the break (as glibc's tst-malloc-alternate-path), or,
 * where that is refused (valgrind reserves the space), the break pushed to its limit.
 * Returns the range the heap must not touch. */
static char *obstruct_break(size_t *len, bool *is_mapping)
{
  size_t page = os_page_size();
  char *brk_now = sbrk(0);
  char *wall = (char *)(((uintptr_t)brk_now + page - 1) & ~(uintptr_t)(page - 1));
  void *obstruction = mmap(wall, page, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  *is_mapping = obstruction == wall;
  if (*is_mapping) {
    *len = page;
    return wall;
  }
  if (obstruction != MAP_FAILED)
    munmap(obstruction, page);
  size_t taken = 0;
  for (size_t step = 1u << 20; step >= page && taken < (64u << 20); )
    if (sbrk((intptr_t)step) != (void *)-1)
      taken += step;
    else
      step /= 2;
  EXPECT(taken < (64u << 20));
  *len = taken;
  return brk_now;
}

static void test_sbrk_refused(void)
{
  size_t len;
  bool is_mapping;
  char *wall = obstruct_break(&len, &is_mapping);
  char *brk_now = sbrk(0);
  printf("# sbrk obstructed by %s\n", is_mapping ? "a mapping" : "the break at its limit");
  void *p[64];
  for (int i = 0; i < 64; i++) { /* 64 * 16 KiB: more than any room left below the wall */
    p[i] = alloc_filled(16384, (unsigned)i);
    EXPECT((char *)p[i] + 16384 <= wall || (char *)p[i] >= wall + len);
  }
  EXPECT(sbrk(0) == brk_now);
  for (int i = 0; i < 64; i++) {
    EXPECT(verify(p[i], 16384 - 16, (unsigned)i));
    free_checked(p[i]);
  }
  void *big = alloc_filled(10u << 20, 7);
  free_checked(big);
  struct backend_stats before, after;
  backend_get_stats(&before);
  EXPECT(backend_trim(0) > 0); /* the emptied mapped region goes back */
  CHECK_HEAP();
  backend_get_stats(&after);
  EXPECT(after.mapped_bytes + SBRK_MAP_REGION_MIN <= before.mapped_bytes);
  if (is_mapping)
    munmap(wall, len);
}

/* ---- Main -------------------------------------------------------------------------------- */

struct test {
  const char *name;
  void (*run)(void);
};

static const struct test tests[] = {
  { "coalesce: neither neighbour free", test_coalesce_neither },
  { "coalesce: next neighbour free", test_coalesce_next },
  { "coalesce: previous neighbour free", test_coalesce_prev },
  { "coalesce: both neighbours free", test_coalesce_both },
  { "split only when the remainder holds a minimum block", test_split_thresholds },
  { "realloc grows in place into a free next block", test_resize_grow_into_next },
  { "realloc grows in place at the end of the heap", test_resize_grow_at_heap_end },
  { "realloc shrinks in place, the tail freed and coalesced", test_resize_shrink },
  { "a block moved by realloc goes to the low end of a free block and grows there",
    test_resize_moving_block },
  { "first, best and next fit place differently", test_fit_policies },
  { "big blocks from a big free block's high end, small ones from its low end",
    test_high_placement },
  { "a first-fit search gives up after its budget, the next goes on", test_search_budget },
  { "a freed mapping is reused, cleared for a zeroed block, given back by trim",
    test_mapping_cache },
  { "the cache of freed mappings is given back before the heap grows past its peak",
    test_mapping_cache_evicted },
  { "stress, first fit", test_stress_first },
  { "stress, next fit", test_stress_next },
  { "stress, best fit", test_stress_best },
  { "batch allocation and free", test_batch },
  { "a one-block batch starts a cache line; bigger batches have no gap", test_batch_own_line },
  { "BACKEND_ZERO on reused, fresh and mapped memory", test_zeroing },
  { "aligned blocks from 32 bytes to 1 GiB", test_aligned },
  { "mapped blocks: remap, shrink, free", test_mapped },
  { "backend_owns and backend_tag_readable on heap, stack, global, wild pointers", test_owns },
  { "errno preserved", test_errno_preserved },
  { "the break comes down when the free top passes the threshold", test_trim_on_free },
  { "backend_trim releases free pages", test_trim_call },
  { "big free blocks give their pages back", test_release_on_free },
  { "corruption: each flipped bit names its invariant", test_corruption },
  { "misuse ends in abort with a palloc: message", test_misuse },
  { "two threads, then fork", test_threads_and_fork },
  { "a foreign sbrk between our calls", test_foreign_sbrk },
  { "sbrk refused: the heap continues from mmap", test_sbrk_refused },
};

int main(void)
{
  setvbuf(stdout, NULL, _IONBF, 0);
  free(malloc(1)); /* let the C library's own heap start before ours */
  size_t count = sizeof tests / sizeof *tests;
  printf("1..%zu\n", count);
  if (backend_init() != 0)
    printf("# backend_init failed\n");
  sbrk_set_high_place_min(SIZE_MAX); /* blocks in address order, but in test_high_placement */
  int failed = 0;
  for (size_t i = 0; i < count; i++) {
    failures_in_test = 0;
    tests[i].run();
    if (backend_check_heap() != 0)
      fail_at(__FILE__, __LINE__, "heap inconsistent after the test");
    printf("%sok %zu - %s\n", failures_in_test ? "not " : "", i + 1, tests[i].name);
    failed += failures_in_test != 0;
  }
  return failed ? 1 : 0;
}
