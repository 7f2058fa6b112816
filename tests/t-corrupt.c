/* t-corrupt.c: the heap checker names the broken invariant. Each step flips one kind of
 * metadata bit (a tag's size, each flag, a check bit; a free block's footer, bin link or lane; a
 * cached block's key; a pending freed block's key; a mapped block's tag),
 * expects palloc_check_heap() to return the number of the invariant it breaks in this
 * library's backend (the numbers are listed at the top of backends/mmap/mmap_backend.c,
 * backends/sbrk/sbrk_backend.c and lib/tcache.h, the latter as 100 + n), then flips it back
 * and expects a sound heap.
 *
 * White-box: the tag layout is backend.h's (bits 4-47 size, U=1 P=2 M=4 C=8, 48-63 check).
 */
#include "misuse_cases.h"
#include "ptest.h"

#include <stdio.h>
#include <string.h>

#define U 1ull
#define PB 2ull
#define M 4ull
#define C 8ull
#define CHECK_BIT (1ull << 48)
#define SIZE_OF(tag) ((tag) & 0x0000fffffffffff0ull)

static bool is_mmap;

static uint64_t *tag_word(void *payload) { return (uint64_t *)payload - 1; }
/* The last word of the block whose payload is payload: a free block's footer (either
 * backend); payload in an in-use block. */
static uint64_t *last_word(void *payload)
{
  return (uint64_t *)((char *)payload - 8 + SIZE_OF(*tag_word(payload))) - 1;
}

/* Flip mask in word (and in second, when not NULL); expect the invariant; flip back. */
static void expect_broken(const char *what, uint64_t *word, uint64_t *second, uint64_t mask,
                          int mmap_invariant, int sbrk_invariant)
{
  int expected = is_mmap ? mmap_invariant : sbrk_invariant;
  *word ^= mask;
  if (second != NULL)
    *second ^= mask;
  fprintf(stderr, "# t-corrupt: %s, expecting I%d below\n", what, expected);
  int found = P.check_heap();
  *word ^= mask;
  if (second != NULL)
    *second ^= mask;
  int after = P.check_heap();
  ok(found == expected && after == 0, "%s: palloc_check_heap() names I%d (got %d), then 0 when "
     "restored (got %d)", what, expected, found, after);
}

int test_corrupt(void)
{
  ptest_init();
  is_mmap = strcmp(P.backend_name(), "mmap") == 0;
  /* Three neighbours served by the backend itself (too big for the thread caches). */
  char *a = v_malloc(40000), *b = v_malloc(40000), *c = v_malloc(40000);
  ok(P.check_heap() == 0, "a sound heap to start with");
  uint64_t *tag = tag_word(b), *last = last_word(b);

  expect_broken("in-use tag: a check bit", tag, NULL, CHECK_BIT, 10, 13);
  expect_broken("in-use tag and the block's last word: a check bit", tag, last, CHECK_BIT, 10, 13);
  expect_broken("in-use tag: size bit 40", tag, NULL, 1ull << 40, 2, 2);
  expect_broken("in-use tag: U", tag, NULL, U, 10, 3);
  expect_broken("in-use tag: P", tag, NULL, PB, 4, 11);
  expect_broken("in-use tag: M", tag, NULL, M, 2, 6);
  expect_broken("in-use tag: C", tag, NULL, C, 2, 6);
  expect_broken("in-use tag and the block's last word: M", tag, last, M, 2, 6);

  v_free(b); /* b is now a free block between two in-use ones */
  if (ptest_under_memcheck())
    push_out_of_quarantine();
  ok(P.check_heap() == 0, "sound after freeing the middle block");
  uint64_t *free_tag = tag_word(b), *footer = last_word(b);
  expect_broken("free tag: a check bit", free_tag, NULL, CHECK_BIT, 10, 3);
  expect_broken("free block footer: size bit 4", footer, NULL, 16, 4, 3);
  expect_broken("free tag: U", free_tag, NULL, U, 10, 13);
  if (is_mmap)
    expect_broken("free block's bin link (prev)", (uint64_t *)b + 1, NULL, 16, 6, 0);

  /* A block in the calling thread's cache: its key word (word 0). */
  if (ptest_under_memcheck()) {
    skip("cached and deferred blocks: memcheck mode has no thread caches");
  } else {
    void *s1 = v_malloc(48), *s2 = v_malloc(48), *s3 = v_malloc(48);
    v_free(s1);
    v_free(s2);
    settle_recent_frees();
    expect_broken("cached block: key word", (uint64_t *)s2, NULL, 1ull << 20, 102, 102);
    expect_broken("cached block: key word, bit 3", (uint64_t *)s2, NULL, 8, 102, 102);
    v_free(s3); /* waits among the thread's pending frees (lib/tcache.h, T8) */
    expect_broken("pending block: key word", (uint64_t *)s3, NULL, 1ull << 20, 108, 108);
  }

  /* mmap: a small block the thread cache overflowed to the backend waits on a deferred list
   * (tag free, word 1 its hidden link, word 2 the mark "pallocDE"). */
  if (is_mmap && !ptest_under_memcheck()) {
    static void *flushed[300];
    for (int i = 0; i < 300; i++) {
      flushed[i] = v_malloc(40);
      memset(flushed[i], 0xab, 40);
    }
    for (int i = 0; i < 300; i++)
      v_free(flushed[i]);
    uint64_t *first = flushed[0];
    ok(!(*tag_word(first) & U) && first[1] == 0x70616c6c6f634445ull && P.check_heap() == 0,
       "the first of 300 freed 48-byte blocks is deferred in the backend, the heap sound");
    expect_broken("deferred block: hidden link", first, NULL, 4, 11, 0);
    expect_broken("deferred block: mark (then a free block without a footer)", first + 1, NULL,
                  1, 4, 0);
  }

  /* mmap: a free block of an exact-size bin (here 608 bytes) waits on one of its bin's four
   * lanes; the first block of a lane has the lane's number as its back link (word 2). Every
   * other block of 600 is freed, so that each one stays a block of its own. */
  if (is_mmap && !ptest_under_memcheck()) {
    static void *medium[600];
    for (int i = 0; i < 600; i++)
      medium[i] = v_malloc(600);
    for (int i = 0; i < 600; i += 2)
      v_free(medium[i]);
    uint64_t *lane_first = NULL;
    for (int i = 0; i < 600 && lane_first == NULL; i += 2) {
      uint64_t *words = medium[i];
      if (!(*tag_word(words) & U) && words[1] >= 1 && words[1] <= 3)
        lane_first = words;
    }
    ok(lane_first != NULL && P.check_heap() == 0,
       "a freed 608-byte block is the first of lane %llu of its bin, the heap sound",
       lane_first ? (unsigned long long)lane_first[1] : 0ull);
    if (lane_first != NULL)
      expect_broken("first block of a bin lane: its lane number", lane_first + 1, NULL,
                    lane_first[1], 6, 0);
    for (int i = 1; i < 600; i += 2)
      v_free(medium[i]);
  }

  /* A block mapped on its own: its tag. */
  char *big = v_malloc(4u << 20);
  expect_broken("mapped block tag: a check bit", tag_word(big), NULL, CHECK_BIT, 10, 9);
  expect_broken("mapped block tag: M", tag_word(big), NULL, M, 9, 9);
  v_free(big);
  v_free(a);
  v_free(c);
  ok(P.check_heap() == 0, "sound at the end");
  return tap_done();
}
