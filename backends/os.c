/* os.c: the kernel calls behind os.h, with errno preserved and mapped bytes accounted; and
 * the random key of the block tags' check bits (backend.h), taken from the kernel once. */
#include "config.h"
#include "os.h"

#include "backend.h"
#include "trace.h"
#include "util/bits.h"
#include "util/page.h"
#include "util/vg.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

static _Atomic uint64_t mapped_bytes;
static _Atomic uint64_t peak_mapped_bytes;

size_t os_page_size(void) { return page_size(); }

/* A fixed odd value until tag_secret_init() runs (the backend's unit test never calls it). */
uint64_t tag_secret = 0x9e3779b97f4a7c15ull;

/* Called once by the front end's initialisation, before the first block is sealed. */
void tag_secret_init(void)
{
  const void *random_bytes = (const void *)getauxval(AT_RANDOM); /* 16 bytes, maybe unaligned */
  uint64_t key = (uint64_t)(uintptr_t)&mapped_bytes;
  if (random_bytes != NULL)
    memcpy(&key, random_bytes, sizeof key);
  tag_secret = (key * 0xbf58476d1ce4e5b9ull) | 1;
}

static void account_mapped(uint64_t len)
{
  uint64_t now = atomic_fetch_add_explicit(&mapped_bytes, len, memory_order_relaxed) + len;
  uint64_t peak = atomic_load_explicit(&peak_mapped_bytes, memory_order_relaxed);
  while (now > peak &&
         !atomic_compare_exchange_weak_explicit(&peak_mapped_bytes, &peak, now,
                                                memory_order_relaxed, memory_order_relaxed))
    ;
}

static void account_unmapped(uint64_t len)
{
  atomic_fetch_sub_explicit(&mapped_bytes, len, memory_order_relaxed);
}

/* mmap and munmap without the accounting, the trace and valgrind's note (alone, for
 * os_map_aligned's scaffolding, which is not the program's memory); errno preserved. */
static void *map_quietly(void *hint, size_t len, int flags)
{
  int saved_errno = errno;
  void *addr = mmap(hint, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
  errno = saved_errno;
  return addr == MAP_FAILED ? NULL : addr;
}

static bool unmap_quietly(void *addr, size_t len)
{
  int saved_errno = errno;
  int rc = munmap(addr, len);
  errno = saved_errno;
  return rc == 0;
}

/* What os_map* did get: counted, traced and shown to valgrind. */
static void *mapped(void *addr, size_t len)
{
  account_mapped(len);
  TRACE_HEAP(1, PALLOC_HEAP_MMAP, addr, len);
  vg_os_memory(addr, len);
  return addr;
}

void *os_map(size_t len)
{
  void *addr = map_quietly(NULL, len, 0);
  return addr == NULL ? NULL : mapped(addr, len);
}

#ifndef MAP_FIXED_NOREPLACE
#  define MAP_FIXED_NOREPLACE 0x100000
#endif

/* Where the next aligned mapping is tried first: just below the last one, where the kernel,
 * which hands out address space top down, would put the next mapping anyway. */
static _Atomic uintptr_t aligned_hint;

/* One mmap at the hint when that range is free and aligned (MAP_FIXED_NOREPLACE never
 * replaces a mapping; a kernel older than 4.17 takes the flag for a plain hint, whose result
 * may be anywhere: it is given back unless aligned); else len + align bytes, whose slack at
 * both ends is given back before the mapping is counted, so that the peak of mapped bytes
 * never counts the slack (a program with one 4 MiB region read 8 MiB of peak). */
void *os_map_aligned(size_t len, size_t align)
{
  if (align <= os_page_size())
    return os_map(len);
  if (len > SIZE_MAX - align)
    return NULL;
  uintptr_t hint = atomic_load_explicit(&aligned_hint, memory_order_relaxed);
  char *start = NULL;
  if (hint != 0 && hint % align == 0) {
    start = map_quietly((void *)hint, len, MAP_FIXED_NOREPLACE);
    if (start != NULL && (uintptr_t)start != hint) {
      unmap_quietly(start, len);
      start = NULL;
    }
  }
  if (start == NULL) {
    char *raw = map_quietly(NULL, len + align, 0);
    if (raw == NULL)
      return NULL;
    start = (char *)align_up_addr((uintptr_t)raw, align);
    size_t head = (size_t)(start - raw);
    if (head != 0)
      unmap_quietly(raw, head);
    if (align - head != 0)
      unmap_quietly(start + len, align - head);
  }
  if ((uintptr_t)start >= align + len)
    atomic_store_explicit(&aligned_hint, (uintptr_t)start - align_up_addr(len, align),
                          memory_order_relaxed);
  return mapped(start, len);
}

bool os_unmap(void *addr, size_t len)
{
  TRACE_HEAP(0, PALLOC_HEAP_MUNMAP, addr, len); /* before: the range may be reused at once */
  if (!unmap_quietly(addr, len))
    return false;
  account_unmapped(len);
  return true;
}

/* Move [from, from+len) onto [to, to+len), which is mapped (a move replaces it): in one mremap
 * when the range is one kernel mapping, or on Linux 6.17 and later, which move a range of
 * several mappings as one; else (the kernels before refuse it: EFAULT) in halves, down to
 * single pages. Pieces move in address order: returns how many bytes from the start moved.
 * errno is the caller's to preserve. backends/test_os.c runs this on any kernel. */
static size_t move_pieces(char *from, char *to, size_t len)
{
  if (mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to) != MAP_FAILED) {
    account_unmapped(len); /* where it went was counted when it was mapped */
    TRACE_HEAP(0, PALLOC_HEAP_MREMAP, from, len);
    return len;
  }
  size_t page = page_size();
  if (errno != EFAULT || len <= page)
    return 0;
  size_t half = align_down_addr(len / 2, page);
  size_t moved = move_pieces(from, to, half);
  return moved < half ? moved : half + move_pieces(from + half, to + half, len - half);
}

/* Grow [addr, addr+old_len), which spans several kernel mappings (pieces of different mappings
 * side by side, which mremap will not move as one), into a new mapping of new_len bytes: the
 * pieces move into it (their pages stay resident), and what the kernel will not move (it may
 * refuse a mapping more) is copied. NULL, the range untouched, when no mapping is to be had. */
static void *remap_in_pieces(char *addr, size_t old_len, size_t new_len)
{
  char *fresh = os_map(new_len);
  if (fresh == NULL)
    return NULL;
  size_t moved = move_pieces(addr, fresh, old_len);
  if (moved < old_len) {
    memcpy(fresh + moved, addr + moved, old_len - moved);
    os_unmap(addr + moved, old_len - moved);
  }
  return fresh;
}

/* What one mremap did: counted, and shown to valgrind when it grew. */
static void *remapped(void *moved, size_t old_len, size_t new_len)
{
  if (new_len > old_len) {
    account_mapped(new_len - old_len);
    vg_os_memory((char *)moved + old_len, new_len - old_len);
  } else {
    account_unmapped(old_len - new_len);
  }
  return moved;
}

void *os_remap(void *addr, size_t old_len, size_t new_len)
{
  TRACE_HEAP(0, PALLOC_HEAP_MREMAP, addr, old_len);
  int saved_errno = errno;
  void *moved = mremap(addr, old_len, new_len, MREMAP_MAYMOVE);
  bool spans_mappings = moved == MAP_FAILED && errno == EFAULT && new_len > old_len;
  TRACE_HEAP(1, PALLOC_HEAP_MREMAP, moved == MAP_FAILED ? addr : moved,
             moved == MAP_FAILED ? old_len : new_len);
  void *result = spans_mappings         ? remap_in_pieces(addr, old_len, new_len)
                 : moved == MAP_FAILED ? NULL
                                       : remapped(moved, old_len, new_len);
  errno = saved_errno;
  return result;
}

void os_release(void *addr, size_t len)
{
  TRACE_HEAP(0, PALLOC_HEAP_MADVISE, addr, len);
  int saved_errno = errno;
  madvise(addr, len, MADV_DONTNEED);
  errno = saved_errno;
}

bool os_protect(void *addr, size_t len, bool accessible)
{
  int saved_errno = errno;
  int status = mprotect(addr, len, accessible ? PROT_READ | PROT_WRITE : PROT_NONE);
  errno = saved_errno;
  return status == 0;
}

void *os_sbrk(intptr_t increment)
{
  int saved_errno = errno;
  void *old_break = sbrk(increment);
  errno = saved_errno;
  if (old_break == (void *)-1)
    return NULL;
  if (increment != 0)
    TRACE_HEAP(increment > 0, PALLOC_HEAP_SBRK,
               increment > 0 ? old_break : (char *)old_break + increment,
               increment > 0 ? (size_t)increment : (size_t)-increment);
  if (increment > 0) {
    account_mapped((uint64_t)increment);
    vg_os_memory(old_break, (size_t)increment);
  } else if (increment < 0) {
    account_unmapped((uint64_t)-increment);
  }
  return old_break;
}

uint64_t os_mapped_bytes(void)
{
  return atomic_load_explicit(&mapped_bytes, memory_order_relaxed);
}

uint64_t os_peak_mapped_bytes(void)
{
  return atomic_load_explicit(&peak_mapped_bytes, memory_order_relaxed);
}
