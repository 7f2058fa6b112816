/* ptest.c: see ptest.h. */
#include "ptest.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <malloc.h>
#include <time.h>
#include <unistd.h>

void *(*volatile v_malloc)(size_t) = malloc;
void *(*volatile v_calloc)(size_t, size_t) = calloc;
void *(*volatile v_realloc)(void *, size_t) = realloc;
void *(*volatile v_reallocarray)(void *, size_t, size_t) = reallocarray;
int (*volatile v_posix_memalign)(void **, size_t, size_t) = posix_memalign;
void *(*volatile v_aligned_alloc)(size_t, size_t) = aligned_alloc;
void *(*volatile v_memalign)(size_t, size_t) = memalign;
void *(*volatile v_valloc)(size_t) = valloc;
void *(*volatile v_pvalloc)(size_t) = pvalloc;
void (*volatile v_free)(void *) = free;
size_t (*volatile v_usable)(void *) = malloc_usable_size;

struct palloc_api P;

static void *resolve(const char *name)
{
  void *sym = dlsym(RTLD_DEFAULT, name);
  if (sym == NULL)
    bail_out("%s does not resolve: palloc is not loaded in this process", name);
  return sym;
}

void ptest_init(void)
{
  const char *expected = getenv("PALLOC_TEST_BACKEND");
  const char *mode = getenv("PALLOC_TEST_MODE");
  if (expected == NULL || mode == NULL)
    bail_out("PALLOC_TEST_BACKEND and PALLOC_TEST_MODE are unset: run me through tests/run-test.sh");
  *(void **)&P.backend_name = resolve("palloc_backend_name");
  *(void **)&P.check_heap = resolve("palloc_check_heap");
  *(void **)&P.stats_get = resolve("palloc_stats_get");
  *(void **)&P.stats_print = resolve("palloc_stats_print");
  *(void **)&P.function_name = resolve("palloc_function_name");
  *(void **)&P.free_sized = resolve("free_sized");
  *(void **)&P.free_aligned_sized = resolve("free_aligned_sized");

  const char *name = P.backend_name();
  if (name == NULL || strcmp(name, expected) != 0)
    bail_out("palloc_backend_name() is \"%s\", expected \"%s\"", name ? name : "(null)", expected);
  Dl_info info;
  void *malloc_sym = dlsym(RTLD_DEFAULT, "malloc");
  if (dladdr(malloc_sym, &info) == 0 || info.dli_fname == NULL ||
      strstr(info.dli_fname, "libpalloc") == NULL)
    bail_out("malloc resolves to %s, not to libpalloc", info.dli_fname ? info.dli_fname : "?");
  uint64_t before = call_count(PALLOC_FN_MALLOC);
  free(malloc(24));
  if (call_count(PALLOC_FN_MALLOC) <= before)
    bail_out("a call of malloc was not counted by palloc_stats_get");
  diag("palloc backend %s, %s mode, malloc from %s", name, mode, info.dli_fname);
}

unsigned ptest_slowdown(void)
{
  const char *text = getenv("PALLOC_TEST_SLOW");
  long n = text ? strtol(text, NULL, 10) : 1;
  return n >= 1 ? (unsigned)n : 1;
}

bool ptest_under_memcheck(void)
{
  const char *text = getenv("PALLOC_TEST_UNDER_VALGRIND");
  return text != NULL && strcmp(text, "1") == 0;
}

unsigned ptest_stress(void)
{
  const char *text = getenv("PALLOC_TEST_STRESS");
  long n = text ? strtol(text, NULL, 10) : 1;
  return n >= 1 && n <= 1000 ? (unsigned)n : 1;
}

uint64_t rng_next(uint64_t *state)
{
  uint64_t x = *state ? *state : 0x9e3779b97f4a7c15u;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545f4914f6cdd1du;
}

static inline unsigned char pattern_byte(size_t i, uint64_t seed)
{
  uint64_t x = (seed + i / 8) * 0x9e3779b97f4a7c15u;
  return (unsigned char)(x >> (8 * (i % 8)) ^ (x >> 61) ^ 0x5a);
}

void fill_pattern(void *p, size_t n, uint64_t seed)
{
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    b[i] = pattern_byte(i, seed);
}

size_t check_pattern(const void *p, size_t n, uint64_t seed)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != pattern_byte(i, seed))
      return i;
  return (size_t)-1;
}

bool all_bytes(const void *p, size_t n, unsigned char c)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != c)
      return false;
  return true;
}

struct palloc_stats stats_now(void)
{
  struct palloc_stats s;
  memset(&s, 0xa5, sizeof s);
  if (P.stats_get(&s) != 0)
    bail_out("palloc_stats_get failed");
  return s;
}

uint64_t live_bytes(void) { return stats_now().live_bytes; }
uint64_t mapped_bytes(void) { return stats_now().mapped_bytes; }
uint64_t call_count(enum palloc_function fn) { return stats_now().calls[fn]; }

size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* The first two fields of /proc/self/statm: the address space and the resident set, in pages. */
static void statm_pages(unsigned long *size, unsigned long *resident)
{
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0)
    close(fd);
  if (n <= 0)
    bail_out("cannot read /proc/self/statm");
  buf[n] = 0;
  if (sscanf(buf, "%lu %lu", size, resident) != 2)
    bail_out("cannot parse /proc/self/statm");
}

size_t rss_bytes(void)
{
  unsigned long size, resident;
  statm_pages(&size, &resident);
  return resident * page_size();
}

size_t address_space_bytes(void)
{
  unsigned long size, resident;
  statm_pages(&size, &resident);
  return size * page_size();
}

/* The first whole page at or after start. */
static uintptr_t first_whole_page(const char *start)
{
  uintptr_t page = page_size();
  return ((uintptr_t)start + page - 1) & ~(page - 1);
}

size_t whole_pages(const char *start, const char *end)
{
  uintptr_t from = first_whole_page(start), to = (uintptr_t)end & ~(page_size() - 1);
  return to > from ? (to - from) / page_size() : 0;
}

size_t resident_pages(const char *start, const char *end)
{
  static unsigned char vec[4096];
  size_t pages = whole_pages(start, end);
  void *from = (void *)first_whole_page(start);
  if (pages == 0 || pages > sizeof vec || mincore(from, pages * page_size(), vec) != 0)
    return (size_t)-1;
  size_t resident = 0;
  for (size_t i = 0; i < pages; i++)
    resident += vec[i] & 1;
  return resident;
}

bool blocks_side_by_side(size_t size, unsigned char **run, unsigned char **spare)
{
  for (int i = 0; i < HOLE_TRIES; i++) {
    spare[i] = malloc(size);
    memset(spare[i], 0x3c, size);
    if (i + 1 < HOLE_RUN)
      continue;
    unsigned char **first = &spare[i + 1 - HOLE_RUN];
    ptrdiff_t stride = first[1] - first[0];
    bool even = stride >= (ptrdiff_t)size && stride < (ptrdiff_t)size + 64;
    for (int k = 1; even && k < HOLE_RUN; k++)
      even = first[k] - first[k - 1] == stride;
    if (even) {
      memcpy(run, first, sizeof *run * HOLE_RUN);
      memset(first, 0, sizeof *first * HOLE_RUN);
      return true;
    }
  }
  return false;
}

size_t maps_count(void)
{
  char buf[4096];
  size_t lines = 0;
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0)
    bail_out("cannot open /proc/self/maps");
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; i++)
      lines += buf[i] == '\n';
  close(fd);
  return lines;
}

bool kernel_mapping_starts_at(const void *addr)
{
  FILE *maps = fopen("/proc/self/maps", "r");
  if (maps == NULL)
    bail_out("cannot open /proc/self/maps");
  char line[512];
  bool found = false;
  while (!found && fgets(line, sizeof line, maps) != NULL)
    found = strtoull(line, NULL, 16) == (uintptr_t)addr;
  fclose(maps);
  return found;
}

void run_in_child(void (*fn)(void *), void *arg, unsigned timeout_s, int *status, char *err,
                  size_t cap)
{
  int fds[2];
  if (pipe(fds) != 0)
    bail_out("pipe: %s", strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    bail_out("fork: %s", strerror(errno));
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    close(fds[1]);
    alarm(timeout_s);
    fn(arg);
    fflush(NULL);
    _exit(0);
  }
  close(fds[1]);
  size_t len = 0;
  time_t deadline = time(NULL) + timeout_s + 2;
  for (;;) {
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    int ready = poll(&pfd, 1, 1000);
    if (ready > 0) {
      char tmp[512];
      ssize_t n = read(fds[0], tmp, sizeof tmp);
      if (n <= 0)
        break;
      for (ssize_t i = 0; i < n && len + 1 < cap; i++)
        err[len++] = tmp[i];
    } else if (time(NULL) > deadline) {
      kill(pid, SIGKILL);
      break;
    }
  }
  close(fds[0]);
  if (cap)
    err[len < cap ? len : cap - 1] = 0;
  while (waitpid(pid, status, 0) < 0 && errno == EINTR)
    ;
}
