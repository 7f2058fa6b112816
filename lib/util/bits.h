/* bits.h: alignment and overflow helpers shared by every layer. */
#ifndef PALLOC_BITS_H
#define PALLOC_BITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* For a zero-initialised array of many pages of which a process touches few (address maps,
 * rings, slot arrays): GCC puts it in .lbss, which the linker places after every other
 * variable, so that the small variables touched on every call share a few pages instead of
 * each sitting on its own page between two big arrays (a single-threaded process touched 10
 * pages of palloc's variables, now 6). Clang would make the section PROGBITS (zeros in the
 * file), so there the array stays in .bss. */
#if defined(__GNUC__) && !defined(__clang__)
#  define SPARSE_ZEROED __attribute__((section(".lbss.palloc")))
#else
#  define SPARSE_ZEROED
#endif

static inline bool is_power_of_two(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* Round up to a multiple of align (a power of two); false when that overflows. */
static inline bool align_up_checked(size_t value, size_t align, size_t *result)
{
  if (value > SIZE_MAX - (align - 1))
    return false;
  *result = (value + align - 1) & ~(align - 1);
  return true;
}

static inline uintptr_t align_up_addr(uintptr_t addr, size_t align)
{
  return (addr + align - 1) & ~(uintptr_t)(align - 1);
}

static inline uintptr_t align_down_addr(uintptr_t addr, size_t align)
{
  return addr & ~(uintptr_t)(align - 1);
}

/* Index of the highest set bit; x != 0. */
static inline unsigned highest_bit(size_t x) { return 63u - (unsigned)__builtin_clzll(x); }

#endif /* PALLOC_BITS_H */
