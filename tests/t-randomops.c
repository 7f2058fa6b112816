/* t-randomops.c: a long random sequence of every API operation over a table of blocks with a
 * shadow model (size, alignment, fill seed), palloc_check_heap() after every step. */
#include "ptest.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

enum { SLOTS = 1024 };
#define LIVE_CAP (48u << 20)

struct slot {
  unsigned char *p;
  size_t size;      /* bytes asked for */
  size_t alignment; /* alignment asked for (16 when none) */
  uint64_t seed;    /* the fill pattern of the first size bytes; 0 = zeroes (calloc) */
  int kind;         /* 0 plain, 1 aligned_alloc (freed with free_aligned_sized) */
};

static struct slot slots[SLOTS];
static uint64_t live_total;
static char why[200];

/* Big blocks get their first and last 4 KiB patterned; all of a small one. */
static void fill_slot(struct slot *s)
{
  if (s->size <= 8192) {
    fill_pattern(s->p, s->size, s->seed);
  } else {
    fill_pattern(s->p, 4096, s->seed);
    fill_pattern(s->p + s->size - 4096, 4096, ~s->seed);
  }
}

static bool slot_intact(const struct slot *s, size_t upto)
{
  size_t n = upto < s->size ? upto : s->size;
  if (s->seed == 0)
    return all_bytes(s->p, n < 65536 ? n : 65536, 0);
  if (s->size <= 8192)
    return pattern_ok(s->p, n, s->seed);
  if (!pattern_ok(s->p, n < 4096 ? n : 4096, s->seed))
    return false;
  return n < s->size || pattern_ok(s->p + s->size - 4096, 4096, ~s->seed);
}

static size_t random_size(uint64_t *rng)
{
  uint64_t r = rng_below(rng, 1000);
  if (r < 700)
    return rng_below(rng, 512);
  if (r < 950)
    return rng_below(rng, 16384);
  if (r < 995)
    return rng_below(rng, 256 * 1024);
  return rng_below(rng, 2u << 20);
}

static bool set_block(struct slot *s, void *p, size_t size, size_t alignment, uint64_t seed,
                      const char *what)
{
  if (p == NULL) {
    snprintf(why, sizeof why, "%s(%zu) returned NULL", what, size);
    return false;
  }
  if (!aligned_to(p, alignment < 16 ? 16 : alignment) || malloc_usable_size(p) < size) {
    snprintf(why, sizeof why, "%s(%zu, align %zu) gave %p, usable %zu", what, size, alignment, p,
             malloc_usable_size(p));
    return false;
  }
  s->p = p;
  s->size = size;
  s->alignment = alignment;
  s->seed = seed;
  s->kind = 0;
  live_total += size;
  return true;
}

static void release(struct slot *s, uint64_t *rng)
{
  live_total -= s->size;
  if (s->kind == 1)
    P.free_aligned_sized(s->p, s->alignment, s->size);
  else if (rng_below(rng, 4) == 0)
    P.free_sized(s->p, s->size);
  else
    free(s->p);
  s->p = NULL;
}

/* One step; false with why[] set on a broken rule. */
static bool step(uint64_t *rng, uint64_t n)
{
  struct slot *s = &slots[rng_below(rng, SLOTS)];
  uint64_t op = rng_below(rng, 12);
  size_t size = random_size(rng);
  uint64_t seed = n * 2654435761u + 1;
  if (s->p && !slot_intact(s, SIZE_MAX)) {
    snprintf(why, sizeof why, "block %p (size %zu) lost its contents", (void *)s->p, s->size);
    return false;
  }
  if (s->p == NULL && live_total + size > LIVE_CAP)
    return true;
  if (s->p && op >= 3 && op <= 4) {
    /* realloc / reallocarray keeping contents */
    size_t old = s->size;
    void *q = op == 3 ? realloc(s->p, size) : reallocarray(s->p, size / 4 + 1, 4);
    size_t new_size = op == 3 ? size : (size / 4 + 1) * 4;
    if (op == 3 && size == 0) {
      if (q != NULL) {
        snprintf(why, sizeof why, "realloc(p, 0) returned %p, not NULL", q);
        return false;
      }
      live_total -= old;
      s->p = NULL;
      return true;
    }
    struct slot moved = *s;
    moved.p = q;
    if (q == NULL || !slot_intact(&moved, new_size)) {
      snprintf(why, sizeof why, "realloc %zu -> %zu lost contents (%p)", old, new_size, q);
      return false;
    }
    live_total -= old;
    if (!set_block(s, q, new_size, 16, seed, "realloc"))
      return false;
    fill_slot(s);
    return true;
  }
  if (s->p) {
    if (op == 5) { /* refill */
      s->seed = seed;
      fill_slot(s);
    } else {
      release(s, rng);
    }
    return true;
  }
  size_t alignment = (size_t)1 << rng_below(rng, 17);
  void *p = NULL;
  bool fresh;
  switch (op) {
  case 0:
  case 1:
  case 2:
    fresh = set_block(s, malloc(size), size, 16, seed, "malloc");
    break;
  case 3:
  case 4: {
    size_t count = 1 + rng_below(rng, 32);
    fresh = set_block(s, calloc(count, size / count), size / count * count, 16, 0, "calloc");
    if (fresh && !slot_intact(s, SIZE_MAX)) {
      snprintf(why, sizeof why, "calloc(%zu, %zu) not zeroed", count, size / count);
      return false;
    }
    return fresh;
  }
  case 5:
    fresh = set_block(s, realloc(NULL, size), size, 16, seed, "realloc(NULL)");
    break;
  case 6:
    fresh = set_block(s, memalign(alignment, size), size, alignment, seed, "memalign");
    break;
  case 7: {
    int rc = posix_memalign(&p, alignment < sizeof(void *) ? sizeof(void *) : alignment, size);
    if (rc != 0) {
      snprintf(why, sizeof why, "posix_memalign(%zu, %zu) = %d", alignment, size, rc);
      return false;
    }
    fresh = set_block(s, p, size, alignment, seed, "posix_memalign");
    break;
  }
  case 8:
    fresh = set_block(s, aligned_alloc(alignment, size), size, alignment, seed, "aligned_alloc");
    if (fresh)
      s->kind = 1;
    break;
  default:
    fresh = set_block(s, malloc(size), size, 16, seed, "malloc");
    break;
  }
  if (fresh)
    fill_slot(s);
  return fresh;
}

static void run(uint64_t seed, unsigned steps)
{
  uint64_t rng = seed;
  unsigned done = 0, heap_failures = 0;
  why[0] = 0;
  memset(slots, 0, sizeof slots);
  live_total = 0;
  uint64_t live0 = live_bytes();
  for (; done < steps; done++) {
    if (!step(&rng, done))
      break;
    int rc = P.check_heap();
    if (rc != 0) {
      snprintf(why, sizeof why, "palloc_check_heap() = %d after step %u", rc, done);
      heap_failures++;
      break;
    }
  }
  ok(done == steps, "seed %#" PRIx64 ": %u random steps, heap checked after each %s%s", seed,
     steps, why[0] ? "; failed: " : "", why);
  size_t lost = 0;
  for (int i = 0; i < SLOTS; i++)
    if (slots[i].p) {
      lost += !slot_intact(&slots[i], SIZE_MAX);
      release(&slots[i], &rng);
    }
  ok(lost == 0, "seed %#" PRIx64 ": every block intact at the end", seed);
  ok(P.check_heap() == 0, "seed %#" PRIx64 ": heap consistent after freeing everything", seed);
  uint64_t live1 = live_bytes();
  ok(live1 <= live0, "seed %#" PRIx64 ": live bytes back to baseline (%llu -> %llu)", seed,
     (unsigned long long)live0, (unsigned long long)live1);
}

/* The fragmentation pattern (bench/workloads/fragmentation.c) in small: many small blocks,
 * most of them freed (the thread cache overflows to the backend, which may defer them), then
 * medium blocks that need the holes coalesced; contents and the heap checked at every step. */
enum { HOLES_SMALL = 3000, HOLES_MEDIUM = HOLES_SMALL / 12 };

static bool holes_round(void **small, void **medium, int round)
{
  for (int i = 0; i < HOLES_SMALL; i++) {
    small[i] = v_malloc(16 + (size_t)(i * 7 + round) % 48);
    fill_pattern(small[i], 16, (uint64_t)i);
  }
  for (int i = 0; i < HOLES_SMALL; i++)
    if (i % 8 != 0) {
      if (!pattern_ok(small[i], 16, (uint64_t)i))
        return false;
      v_free(small[i]);
      if (P.check_heap() != 0)
        return false;
    }
  for (int i = 0; i < HOLES_MEDIUM; i++) {
    medium[i] = v_malloc(256 + (size_t)(i * 37 + round) % 768);
    fill_pattern(medium[i], 256, ~(uint64_t)i);
    if (P.check_heap() != 0)
      return false;
  }
  for (int i = 0; i < HOLES_MEDIUM; i++) {
    if (!pattern_ok(medium[i], 256, ~(uint64_t)i))
      return false;
    v_free(medium[i]);
  }
  for (int i = 0; i < HOLES_SMALL; i += 8) {
    if (!pattern_ok(small[i], 16, (uint64_t)i))
      return false;
    v_free(small[i]);
  }
  return P.check_heap() == 0;
}

static void run_holes(void)
{
  static void *small[HOLES_SMALL], *medium[HOLES_MEDIUM];
  for (int round = 0; round < 3; round++)
    ok(holes_round(small, medium, round),
       "holes round %d: %d small blocks, 7 in 8 freed, then %d medium ones: contents intact, "
       "heap sound after every step", round, HOLES_SMALL, HOLES_MEDIUM);
}

/* A structure freed whole and built again: every block handed back, then as many asked for
 * again; contents and the heap checked at every step, and the heap no bigger after three
 * rounds than after one. The mmap backend defers small blocks on lanes of exact-size lists
 * (backends/mmap/mmap_backend.c), so that there the blocks asked for again are the freed
 * ones; the sbrk backend coalesces them and cuts new blocks where they lay. */
enum { REBUILD_BLOCKS = 3000 };

static int compare_addresses(const void *a, const void *b)
{
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return (x > y) - (x < y);
}

static bool rebuild_round(void **block, uintptr_t *freed, int *reused)
{
  for (int i = 0; i < REBUILD_BLOCKS; i++) {
    if (!pattern_ok(block[i], 16, (uint64_t)i))
      return false;
    freed[i] = (uintptr_t)block[i];
    v_free(block[i]);
    if (P.check_heap() != 0)
      return false;
  }
  qsort(freed, REBUILD_BLOCKS, sizeof *freed, compare_addresses);
  *reused = 0;
  for (int i = 0; i < REBUILD_BLOCKS; i++) {
    block[i] = v_malloc(16 + (size_t)(i * 7) % 48);
    fill_pattern(block[i], 16, (uint64_t)i);
    uintptr_t address = (uintptr_t)block[i];
    *reused += bsearch(&address, freed, REBUILD_BLOCKS, sizeof *freed, compare_addresses) != NULL;
    if (P.check_heap() != 0)
      return false;
  }
  return true;
}

static void run_rebuild(void)
{
  static void *block[REBUILD_BLOCKS];
  static uintptr_t freed[REBUILD_BLOCKS];
  for (int i = 0; i < REBUILD_BLOCKS; i++) {
    block[i] = v_malloc(16 + (size_t)(i * 7) % 48);
    fill_pattern(block[i], 16, (uint64_t)i);
  }
  int reused = 0;
  bool sound = rebuild_round(block, freed, &reused);
  uint64_t mapped_after_one = stats_now().mapped_bytes;
  for (int round = 1; round < 3 && sound; round++)
    sound = rebuild_round(block, freed, &reused);
  uint64_t mapped_after_three = stats_now().mapped_bytes;
  ok(sound, "3 rounds of %d small blocks freed whole and asked for again: contents intact, "
     "heap sound after every step", REBUILD_BLOCKS);
  ok(mapped_after_three == mapped_after_one, "the heap did not grow from round 1 to round 3 "
     "(%llu then %llu bytes mapped)", (unsigned long long)mapped_after_one,
     (unsigned long long)mapped_after_three);
  if (strcmp(P.backend_name(), "mmap") != 0)
    ; /* the sbrk backend coalesces freed blocks: where the new ones lie is its placement's */
  else if (ptest_under_memcheck())
    skip("blocks asked for again are the freed ones: memcheck mode has no thread caches");
  else
    ok(reused >= REBUILD_BLOCKS * 9 / 10, "mmap: the blocks asked for again are the freed ones "
       "(%d of %d)", reused, REBUILD_BLOCKS);
  for (int i = 0; i < REBUILD_BLOCKS; i++)
    v_free(block[i]);
}

int test_randomops(void)
{
  ptest_init();
  const char *text = getenv("PALLOC_TEST_SEED");
  uint64_t seed = text ? strtoull(text, NULL, 0) : 0x5eed0001u;
  for (int i = 0; i < 3; i++)
    run(seed + (uint64_t)i, scaled(12000));
  run_holes();
  run_rebuild();
  return tap_done();
}
