/* fuzz-ops.c: a libFuzzer harness that reads its input as a program of allocator calls.
 *
 * Built with clang -fsanitize=fuzzer together with palloc's sources (one backend per binary,
 * instrumented for coverage too), so palloc is the process's malloc: the harness, libFuzzer and
 * the C library all allocate through it. Each input runs on a fresh table of SLOTS blocks and a
 * shadow model of each (bytes asked for, alignment asked for, fill byte, how it was made); every
 * operation is decoded from a few input bytes:
 *
 *     byte 0      operation (mod OP_COUNT)
 *     byte 1      slot (mod SLOTS)
 *     bytes 2-3   size: 14 bits, scaled by the range picked by the top 2 bits (up to 1 MiB)
 *     byte 4      alignment exponent / count, depending on the operation
 *
 * After every operation the slot's block must hold its fill byte in all its requested bytes,
 * be aligned as asked (and to 16), and have malloc_usable_size() >= the size asked for; every
 * CHECK_EVERY operations and at the end palloc_check_heap() must return 0, and every
 * VERIFY_ALL_EVERY operations and at the end every live block must be intact. A broken rule prints one line and aborts, so libFuzzer saves the input.
 * Invariant of the model: slot.p == NULL exactly when the slot holds no block.
 */
#include <errno.h>
#include <malloc.h>
#include <palloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void free_sized(void *ptr, size_t size);
void free_aligned_sized(void *ptr, size_t alignment, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { SLOTS = 32, CHECK_EVERY = 16, VERIFY_ALL_EVERY = 64, OP_BYTES = 5 };

enum op {
  OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOCARRAY, OP_FREE, OP_FREE_SIZED,
  OP_POSIX_MEMALIGN, OP_ALIGNED_ALLOC, OP_MEMALIGN, OP_VALLOC, OP_USABLE_SIZE, OP_REFILL,
  OP_CHECK_HEAP, OP_COUNT
};

enum made_by { MADE_PLAIN, MADE_ALIGNED_ALLOC };

struct slot {
  unsigned char *p;
  size_t size;      /* bytes asked for */
  size_t alignment; /* alignment asked for (16 when none) */
  unsigned char fill;
  enum made_by made_by;
};

static struct slot slots[SLOTS];
static unsigned long op_number;

static void fail(const char *what, const struct slot *s)
{
  fprintf(stderr, "fuzz-ops: op %lu: %s (block %p, size %zu, alignment %zu)\n", op_number, what,
          s ? (void *)s->p : NULL, s ? s->size : 0, s ? s->alignment : 0);
  abort();
}

/* Sizes: the top 2 bits pick a range, the other 14 the size in it. */
static size_t decode_size(uint8_t hi, uint8_t lo)
{
  size_t n = ((size_t)(hi & 0x3f) << 8) | lo;
  switch (hi >> 6) {
  case 0: return n & 0x3ff;     /* 0..1023: the size classes' exact range */
  case 1: return n;             /* up to 16 KiB */
  case 2: return n * 16;        /* up to 256 KiB */
  default: return n * 64;       /* up to 1 MiB: mapped blocks, region edges */
  }
}

/* Not instrumented: its loop over every byte would only slow the fuzzer down. */
__attribute__((no_sanitize("coverage"))) static bool holds_fill(const struct slot *s, size_t n)
{
  uint64_t word = 0x0101010101010101u * s->fill;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t got;
    __builtin_memcpy(&got, s->p + i, 8);
    if (got != word)
      return false;
  }
  for (; i < n; i++)
    if (s->p[i] != s->fill)
      return false;
  return true;
}

static void verify(const struct slot *s)
{
  if (s->p == NULL)
    return;
  if (((uintptr_t)s->p & (s->alignment - 1)) != 0 || ((uintptr_t)s->p & 15) != 0)
    fail("block misaligned", s);
  if (malloc_usable_size(s->p) < s->size)
    fail("malloc_usable_size below the size asked for", s);
  if (!holds_fill(s, s->size))
    fail("block lost its contents", s);
}

/* Record a new block in an empty slot; the fill byte is written unless it was calloc's zero. */
static void adopt(struct slot *s, void *p, size_t size, size_t alignment, unsigned char fill,
                  bool zeroed)
{
  if (p == NULL) {
    if (errno != ENOMEM)
      fail("NULL without ENOMEM", s);
    return;
  }
  *s = (struct slot){p, size, alignment < 16 ? 16 : alignment, fill, MADE_PLAIN};
  if (zeroed) {
    s->fill = 0;
    if (!holds_fill(s, size))
      fail("calloc block not zeroed", s);
  } else {
    memset(p, fill, size);
  }
  verify(s);
}

static void release(struct slot *s, bool sized)
{
  if (s->made_by == MADE_ALIGNED_ALLOC && sized)
    free_aligned_sized(s->p, s->alignment, s->size);
  else if (sized)
    free_sized(s->p, s->size);
  else
    free(s->p);
  s->p = NULL;
}

/* realloc(p, n), or reallocarray(p, count, n / count) when count > 0; a request of 0 bytes
 * frees the block and returns NULL (glibc). */
static void resize(struct slot *s, size_t n, size_t count)
{
  if (count > 0)
    n = n / count * count;
  size_t kept = s->size < n ? s->size : n;
  unsigned char *q = count > 0 ? reallocarray(s->p, count, n / count) : realloc(s->p, n);
  if (n == 0) {
    if (q != NULL)
      fail("realloc(p, 0) did not return NULL", s);
    s->p = NULL;
    return;
  }
  if (q == NULL)
    return; /* out of memory: the old block must still be intact (checked by verify) */
  s->p = q;
  s->size = n;
  s->alignment = 16;
  s->made_by = MADE_PLAIN;
  if (!holds_fill(s, kept))
    fail("realloc lost the contents", s);
  memset(q, s->fill, n);
}

static void aligned(struct slot *s, enum op op, size_t n, uint8_t arg, unsigned char fill)
{
  size_t alignment = (size_t)1 << (arg % 20); /* 1 B .. 512 KiB */
  void *p = NULL;
  errno = ENOMEM;
  switch (op) {
  case OP_POSIX_MEMALIGN: {
    if (alignment < sizeof(void *))
      alignment = sizeof(void *);
    int saved = errno = 4321;
    int rc = posix_memalign(&p, alignment, n);
    if (errno != saved)
      fail("posix_memalign changed errno", s);
    if (rc != 0 && rc != ENOMEM)
      fail("posix_memalign failed with a code other than ENOMEM", s);
    errno = ENOMEM;
    break;
  }
  case OP_ALIGNED_ALLOC: p = aligned_alloc(alignment, n); break;
  case OP_VALLOC: p = valloc(n); alignment = 4096; break;
  default: p = memalign(alignment, n); break;
  }
  adopt(s, p, n, alignment, fill, false);
  if (p != NULL && op == OP_ALIGNED_ALLOC)
    s->made_by = MADE_ALIGNED_ALLOC;
}

static void check_heap(void)
{
  int broken = palloc_check_heap();
  if (broken != 0) {
    fprintf(stderr, "fuzz-ops: op %lu: palloc_check_heap() = %d\n", op_number, broken);
    abort();
  }
}

static void verify_all(void)
{
  for (int i = 0; i < SLOTS; i++)
    verify(&slots[i]);
}

static void run_op(const uint8_t *b)
{
  enum op op = (enum op)(b[0] % OP_COUNT);
  struct slot *s = &slots[b[1] % SLOTS];
  size_t n = decode_size(b[2], b[3]);
  unsigned char fill = (unsigned char)(op_number * 37 + 1);
  verify(s);
  if (op == OP_CHECK_HEAP) {
    check_heap();
    verify_all();
    return;
  }
  if (s->p != NULL) {
    switch (op) {
    case OP_REALLOC: resize(s, n, 0); break;
    case OP_REALLOCARRAY: resize(s, n, 1 + b[4] % 8); break;
    case OP_USABLE_SIZE: memset(s->p, s->fill, s->size); break; /* verify() asks it */
    case OP_REFILL: s->fill = fill; memset(s->p, fill, s->size); break;
    case OP_FREE_SIZED: release(s, true); break;
    default: release(s, false); break;
    }
  } else {
    errno = ENOMEM;
    switch (op) {
    case OP_CALLOC: {
      size_t count = 1 + b[4] % 16;
      adopt(s, calloc(count, n / count), n / count * count, 16, 0, true);
      break;
    }
    case OP_REALLOC: adopt(s, realloc(NULL, n), n, 16, fill, false); break;
    case OP_POSIX_MEMALIGN:
    case OP_ALIGNED_ALLOC:
    case OP_MEMALIGN:
    case OP_VALLOC: aligned(s, op, n, b[4], fill); break;
    default: adopt(s, malloc(n), n, 16, fill, false); break;
    }
  }
  verify(s);
}

/* FUZZ_OPS_SELFTEST=1 overwrites one byte of the first live block behind the model's back
 * after the 3rd operation: the harness must then abort (tests/fuzz/run-fuzz.sh checks it), which
 * shows that its checks can fail. */
static void maybe_plant_error(size_t ops_done)
{
  static int planting = -1;
  if (planting < 0)
    planting = getenv("FUZZ_OPS_SELFTEST") != NULL;
  if (!planting || ops_done != 3)
    return;
  for (int i = 0; i < SLOTS; i++)
    if (slots[i].p != NULL && slots[i].size > 0) {
      slots[i].p[slots[i].size - 1] ^= 0x40;
      return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  memset(slots, 0, sizeof slots);
  for (size_t at = 0; at + OP_BYTES <= size; at += OP_BYTES) {
    run_op(data + at);
    maybe_plant_error(at / OP_BYTES + 1);
    if (++op_number % CHECK_EVERY == 0)
      check_heap();
    if (op_number % VERIFY_ALL_EVERY == 0)
      verify_all();
  }
  check_heap();
  verify_all();
  for (int i = 0; i < SLOTS; i++)
    if (slots[i].p != NULL)
      release(&slots[i], i % 2 == 0);
  if (palloc_check_heap() != 0)
    fail("heap inconsistent after freeing every block", NULL);
  return 0;
}
