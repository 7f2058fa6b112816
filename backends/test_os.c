/* test_os.c: unit tests of backends/os.c's os_remap on address space that is several kernel
 * mappings side by side (TAP), on any kernel.
 *
 * Linux 6.17 moves such a range in one mremap when its size stays the same; the kernels before
 * (Debian 12's 6.1 among them) refuse any range that is more than one mapping, with EFAULT, and
 * os_remap then moves it piece by piece (move_pieces). So that this machine's kernel does not
 * decide which path runs, this file compiles os.c with its mremap calls going to
 * older_kernel_mremap: the real call, refused as an older kernel would refuse it (and, when a
 * test asks, refused with ENOMEM from the nth call on, as a kernel out of mappings would).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- The kernel before 6.17 ------------------------------------------------------------- */

static size_t moves_left = SIZE_MAX; /* mremap calls after which it fails with ENOMEM */
static size_t bytes_moved;            /* by calls that moved without resizing (pieces) */

/* The end of the kernel mapping holding addr (a line of /proc/self/maps), or 0. */
static uintptr_t kernel_mapping_end(uintptr_t addr)
{
  static char maps[1 << 16];
  int fd = open("/proc/self/maps", O_RDONLY);
  ssize_t got = 0, n;
  while (fd >= 0 && (n = read(fd, maps + got, sizeof maps - 1 - (size_t)got)) > 0)
    got += n;
  if (fd >= 0)
    close(fd);
  maps[got] = '\0';
  for (char *line = maps; *line != '\0';) {
    char *rest;
    uintptr_t start = strtoull(line, &rest, 16), end = strtoull(rest + 1, NULL, 16);
    if (start <= addr && addr < end)
      return end;
    char *newline = strchr(line, '\n');
    line = newline ? newline + 1 : line + strlen(line);
  }
  return 0;
}

static void *older_kernel_mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
  void *new_addr = NULL;
  if (flags & MREMAP_FIXED) {
    va_list args;
    va_start(args, flags);
    new_addr = va_arg(args, void *);
    va_end(args);
  }
  if (kernel_mapping_end((uintptr_t)old) < (uintptr_t)old + old_len) {
    errno = EFAULT;
    return MAP_FAILED;
  }
  if (moves_left == 0) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  moves_left--;
  long moved = syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
  if (moved == -1)
    return MAP_FAILED;
  if (old_len == new_len)
    bytes_moved += old_len;
  return (void *)moved;
}

#define mremap older_kernel_mremap
#include "os.c"
#undef mremap

/* ---- A tiny TAP harness ------------------------------------------------------------------ */

static int failures_in_test;

static void fail_at(int line, const char *what)
{
  printf("# test_os.c:%d: failed: %s\n", line, what);
  failures_in_test++;
}

#define EXPECT(cond) ((cond) ? (void)0 : fail_at(__LINE__, #cond))

/* ---- Two kernel mappings side by side ------------------------------------------------------ */

enum { LOW_PAGES = 16, HIGH_PAGES = 8, ALL_PAGES = LOW_PAGES + HIGH_PAGES, GROWN_PAGES = 40 };

static size_t page(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static void fill(char *p, size_t n, unsigned seed)
{
  for (size_t i = 0; i < n; i++)
    p[i] = (char)(seed + i * 7);
}

static bool holds(const char *p, size_t n, unsigned seed)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != (char)(seed + i * 7))
      return false;
  return true;
}

static bool all_zero(const char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0)
      return false;
  return true;
}

/* LOW_PAGES pages, then HIGH_PAGES pages just above them that are another kernel mapping (moved
 * there by mremap, whose mapping keeps its old offset and so never merges with its
 * neighbours), each filled; NULL when the address space would not have it. */
static char *two_mappings(void)
{
  size_t low_len = LOW_PAGES * page(), high_len = HIGH_PAGES * page();
  char *low = mmap(NULL, low_len + high_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *high = mmap(NULL, high_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (low == MAP_FAILED || high == MAP_FAILED)
    return NULL;
  fill(low, low_len, 1);
  fill(high, high_len, 2);
  if (syscall(SYS_mremap, high, high_len, high_len, MREMAP_MAYMOVE | MREMAP_FIXED, low + low_len) ==
      -1)
    return NULL;
  return low;
}

static bool resident(const char *p, size_t pages)
{
  unsigned char vec[GROWN_PAGES];
  if (pages > GROWN_PAGES || mincore((void *)p, pages * page(), vec) != 0)
    return false;
  for (size_t i = 0; i < pages; i++)
    if (!(vec[i] & 1))
      return false;
  return true;
}

static bool unmapped(const char *p, size_t pages)
{
  unsigned char vec[GROWN_PAGES];
  return mincore((void *)p, pages * page(), vec) != 0 && errno == ENOMEM;
}

/* What two_mappings() at low grown to GROWN_PAGES at grown must hold, however it got there:
 * both mappings' bytes in order, zero beyond, the old range gone, the new pages counted. */
static void expect_grown_from_two(const char *grown, const char *low, uint64_t mapped_before)
{
  EXPECT(holds(grown, LOW_PAGES * page(), 1));
  EXPECT(holds(grown + LOW_PAGES * page(), HIGH_PAGES * page(), 2));
  EXPECT(all_zero(grown + ALL_PAGES * page(), (GROWN_PAGES - ALL_PAGES) * page()));
  EXPECT(unmapped(low, ALL_PAGES));
  EXPECT(os_mapped_bytes() - mapped_before == (GROWN_PAGES - ALL_PAGES) * page());
}

/* ---- Tests -------------------------------------------------------------------------------- */

/* The case as it comes: the joined range is refused, its pieces move, nothing is copied. */
static void test_pieces_move(void)
{
  char *low = two_mappings();
  EXPECT(low != NULL);
  if (low == NULL)
    return;
  EXPECT(kernel_mapping_end((uintptr_t)low) == (uintptr_t)(low + LOW_PAGES * page()));
  uint64_t mapped = os_mapped_bytes();
  bytes_moved = 0;
  char *grown = os_remap(low, ALL_PAGES * page(), GROWN_PAGES * page());
  EXPECT(grown != NULL);
  if (grown == NULL)
    return;
  EXPECT(bytes_moved == ALL_PAGES * page()); /* every byte moved, none copied */
  EXPECT(resident(grown, ALL_PAGES));
  expect_grown_from_two(grown, low, mapped);
  munmap(grown, GROWN_PAGES * page());
}

/* A kernel that stops moving half way (out of mappings): what did not move is copied, the
 * contents are whole and the old range is gone. */
static void test_copy_when_refused(void)
{
  char *low = two_mappings();
  EXPECT(low != NULL);
  if (low == NULL)
    return;
  uint64_t mapped = os_mapped_bytes();
  bytes_moved = 0;
  moves_left = 1; /* the first piece moves, then ENOMEM */
  char *grown = os_remap(low, ALL_PAGES * page(), GROWN_PAGES * page());
  moves_left = SIZE_MAX;
  EXPECT(grown != NULL);
  if (grown == NULL)
    return;
  EXPECT(bytes_moved > 0 && bytes_moved < ALL_PAGES * page());
  expect_grown_from_two(grown, low, mapped);
  munmap(grown, GROWN_PAGES * page());
}

/* One kernel mapping grows with one mremap, as before: no pieces. */
static void test_one_mapping_grows(void)
{
  char *one = os_map(ALL_PAGES * page());
  EXPECT(one != NULL);
  if (one == NULL)
    return;
  fill(one, ALL_PAGES * page(), 3);
  uint64_t mapped = os_mapped_bytes();
  bytes_moved = 0;
  char *grown = os_remap(one, ALL_PAGES * page(), GROWN_PAGES * page());
  EXPECT(grown != NULL);
  if (grown == NULL)
    return;
  EXPECT(bytes_moved == 0);
  EXPECT(holds(grown, ALL_PAGES * page(), 3));
  EXPECT(os_mapped_bytes() - mapped == (GROWN_PAGES - ALL_PAGES) * page());
  EXPECT(os_unmap(grown, GROWN_PAGES * page()));
}

static const struct {
  const char *name;
  void (*run)(void);
} tests[] = {
  { "os_remap moves the pieces of a range of two kernel mappings (kernels before 6.17)",
    test_pieces_move },
  { "os_remap copies what the kernel will not move, and keeps every byte", test_copy_when_refused },
  { "os_remap grows one kernel mapping in one call", test_one_mapping_grows },
};

int main(void)
{
  setvbuf(stdout, NULL, _IONBF, 0);
  bool memcheck = vg_memcheck(); /* os.c maps memory NOACCESS (vg.h, V1): palloc's own */
  if (memcheck)                  /* code turns reporting off to touch it, as this test does */
    vg_error_reporting(false);
  size_t count = sizeof tests / sizeof *tests;
  printf("1..%zu\n", count);
  int failed = 0;
  for (size_t i = 0; i < count; i++) {
    failures_in_test = 0;
    tests[i].run();
    printf("%sok %zu - %s\n", failures_in_test ? "not " : "", i + 1, tests[i].name);
    failed += failures_in_test != 0;
  }
  if (memcheck)
    vg_error_reporting(true);
  return failed ? 1 : 0;
}
