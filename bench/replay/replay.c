/* replay.c: replay allocation traces (malloc-lab style) and measure utilization and speed.
 *
 * Two builds of this one file:
 *   replay-sbrk    (-DREPLAY_BACKEND -DPALLOC_BACKEND_SBRK, linked with the sbrk backend's
 *                  objects): calls backend_alloc/backend_resize/backend_free directly, without
 *                  the front end's thread cache, so that the placement policy alone is measured.
 *   replay-malloc  calls malloc/realloc/free: run it plain (glibc) or under LD_PRELOAD to
 *                  compare allocators end to end (peak RSS, throughput).
 *
 * Usage: replay [-f first|next|best] [-n passes] TRACE...
 * Each trace is replayed in a forked child (a fresh heap each time). One line per trace:
 *   trace  policy  utilization  bound  ops  seconds  Mops/s  peak_rss_kib
 * utilization = peak live payload bytes (the sizes asked for) / peak heap bytes (backend's
 * peak_mapped_bytes; in malloc mode palloc's own peak when palloc is preloaded, else "-").
 * bound = the best utilization any placement could reach with the sbrk backend's block
 * format: peak live payload / peak live block bytes (8 bytes of tag, 16-byte rounding).
 * Throughput counts every operation of every pass (the first pass measures utilization).
 * Backend mode writes a marker word at both ends of every block and checks it before a free;
 * malloc mode writes every byte asked for (programs use their memory: RSS must show it).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "palloc.h"

#ifdef REPLAY_BACKEND
#  include "config.h"
#  include "backend.h"
#  include "sbrk/sbrk_backend.h"
#endif

struct op {
  char kind;     /* 'a', 'r' or 'f' */
  uint32_t id;
  uint64_t size;
};

struct trace {
  struct op *ops;
  size_t op_count;
  size_t id_count;
};

/* Memory for the driver itself, never from malloc (so that it does not pollute the heap). */
static void *driver_memory(size_t len)
{
  void *p = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("replay: mmap");
    exit(2);
  }
  return p;
}

static char *read_file(const char *path, size_t *len)
{
  int fd = open(path, O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
    exit(2);
  }
  char *text = driver_memory((size_t)st.st_size + 1);
  size_t done = 0;
  while (done < (size_t)st.st_size) {
    ssize_t n = read(fd, text + done, (size_t)st.st_size - done);
    if (n <= 0)
      break;
    done += (size_t)n;
  }
  close(fd);
  text[done] = '\0';
  *len = done;
  return text;
}

static struct trace parse_trace(const char *path)
{
  size_t len;
  char *text = read_file(path, &len);
  struct trace t = { driver_memory(len / 4 * sizeof(struct op)), 0, 0 };
  for (char *line = text; line < text + len; line = strchr(line, '\n') + 1) {
    struct op op = { line[0], 0, 0 };
    char *cursor = line + 1;
    if (op.kind == 'a' || op.kind == 'r' || op.kind == 'f') {
      op.id = (uint32_t)strtoul(cursor, &cursor, 10);
      if (op.kind != 'f')
        op.size = strtoull(cursor, &cursor, 10);
      t.ops[t.op_count++] = op;
      if (op.id + 1 > t.id_count)
        t.id_count = op.id + 1;
    }
    if (strchr(line, '\n') == NULL)
      break;
  }
  return t;
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- The two allocators under test -------------------------------------------------------- */

/* The bytes of tags an in-use block of the sbrk backend carries: its header (free blocks
 * have a footer too, in bytes that are payload while the block is in use). */
#define SBRK_TAG_BYTES 8
#ifdef REPLAY_BACKEND
_Static_assert(SBRK_TAG_BYTES == BACKEND_BLOCK_OVERHEAD, "the sbrk block format changed");
#endif

/* The sbrk backend's block for a request (the front end's block_size_for()). */
static size_t block_size_for(size_t request)
{
  size_t size = (request + SBRK_TAG_BYTES + 15) & ~(size_t)15;
  return size < 32 ? 32 : size;
}

#ifdef REPLAY_BACKEND

static void *do_alloc(size_t n) { return backend_alloc(block_size_for(n), 0); }
static void do_free(void *p) { backend_free(p); }

/* As the front end's realloc: in place if the backend can, mremap for mapped blocks, else
 * allocate, copy and free. */
static void *do_realloc(void *p, size_t n)
{
  size_t new_size = block_size_for(n);
  if ((*block_tag(p) & TAG_MAPPED) && new_size > tag_size(*block_tag(p))) {
    void *moved = backend_remap(p, new_size);
    if (moved != NULL)
      return moved;
  } else if (backend_resize(p, new_size)) {
    return p;
  }
  void *moved = backend_alloc(new_size, 0);
  if (moved != NULL) {
    size_t old = block_usable_size(p);
    memcpy(moved, p, old < n ? old : n);
    backend_free(p);
  }
  return moved;
}

static void touch(void *p, size_t n, uint32_t id)
{
  memcpy(p, &id, sizeof id);
  memcpy((char *)p + n - sizeof id, &id, sizeof id);
}

static bool touched(void *p, size_t n, uint32_t id)
{
  return memcmp(p, &id, sizeof id) == 0 && memcmp((char *)p + n - sizeof id, &id, sizeof id) == 0;
}

static uint64_t heap_peak(void)
{
  struct backend_stats stats;
  backend_get_stats(&stats);
  return stats.peak_mapped_bytes;
}

static const char *setup_policy(const char *fit)
{
  backend_init();
  enum sbrk_fit policy = strcmp(fit, "next") == 0 ? SBRK_FIT_NEXT :
                         strcmp(fit, "best") == 0 ? SBRK_FIT_BEST : SBRK_FIT_FIRST;
  if (*fit)
    sbrk_set_fit_policy(policy);
  return sbrk_fit_name(sbrk_fit_policy());
}
#else
static void *do_alloc(size_t n) { return malloc(n); }
static void do_free(void *p) { free(p); }
static void *do_realloc(void *p, size_t n) { return realloc(p, n); }

static void touch(void *p, size_t n, uint32_t id)
{
  memset(p, (int)(id & 0xff), n);
}

static bool touched(void *p, size_t n, uint32_t id)
{
  return ((unsigned char *)p)[0] == (id & 0xff) && ((unsigned char *)p)[n - 1] == (id & 0xff);
}

/* palloc's own peak when it is the allocator (found with dlsym); 0 for others. */
static uint64_t heap_peak(void)
{
  struct palloc_stats stats;
  int (*get)(struct palloc_stats *) =
    (int (*)(struct palloc_stats *))dlsym(RTLD_DEFAULT, "palloc_stats_get");
  return get != NULL && get(&stats) == 0 ? stats.peak_mapped_bytes : 0;
}

static const char *setup_policy(const char *fit)
{
  const char *env = getenv("PALLOC_SBRK_FIT");
  return *fit ? fit : env ? env : "malloc";
}
#endif

/* ---- Replaying ------------------------------------------------------------------------------ */

struct result {
  uint64_t peak_live;
  uint64_t peak_heap;
  bool ok;
};

struct peaks {
  uint64_t payload;  /* bytes asked for */
  uint64_t blocks;   /* bytes of the blocks that hold them, at best */
};

static bool replay_once(const struct trace *t, void **blocks, size_t *sizes, struct peaks *peak)
{
  uint64_t live = 0, live_blocks = 0;
  for (size_t i = 0; i < t->op_count; i++) {
    const struct op *op = &t->ops[i];
    void *p = blocks[op->id];
    if (op->kind != 'a' && (p == NULL || !touched(p, sizes[op->id], op->id)))
      return false;
    if (op->kind == 'f') {
      do_free(p);
      live -= sizes[op->id];
      live_blocks -= block_size_for(sizes[op->id]);
      blocks[op->id] = NULL;
      continue;
    }
    p = op->kind == 'a' ? do_alloc(op->size) : do_realloc(p, op->size);
    if (p == NULL)
      return false;
    live += op->size - (op->kind == 'r' ? sizes[op->id] : 0);
    live_blocks += block_size_for(op->size) -
                   (op->kind == 'r' ? block_size_for(sizes[op->id]) : 0);
    touch(p, op->size, op->id);
    blocks[op->id] = p;
    sizes[op->id] = op->size;
    if (live > peak->payload)
      peak->payload = live;
    if (live_blocks > peak->blocks)
      peak->blocks = live_blocks;
  }
  return true;
}

static void run_child(const char *path, const char *fit, int passes, int out_fd)
{
  struct trace t = parse_trace(path);
  void **blocks = driver_memory(t.id_count * sizeof *blocks);
  size_t *sizes = driver_memory(t.id_count * sizeof *sizes);
  const char *policy = setup_policy(fit);
  struct peaks peak = { 0, 0 }, ignored = { 0, 0 };
  double start = now();
  bool ok = replay_once(&t, blocks, sizes, &peak);
  uint64_t peak_heap = heap_peak();
  for (int pass = 1; ok && pass < passes; pass++)
    ok = replay_once(&t, blocks, sizes, &ignored);
  double seconds = now() - start;
  const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  char line[256];
  int n;
  double bound = (double)peak.payload / (double)peak.blocks;
  double mops = (double)t.op_count * passes / seconds / 1e6;
  if (peak_heap != 0)
    n = snprintf(line, sizeof line, "%-20s %-6s %6.3f %6.3f %9zu %8.4f %8.3f", name, policy,
                 (double)peak.payload / (double)peak_heap, bound, t.op_count * (size_t)passes,
                 seconds, mops);
  else
    n = snprintf(line, sizeof line, "%-20s %-6s %6s %6.3f %9zu %8.4f %8.3f", name, policy, "-",
                 bound, t.op_count * (size_t)passes, seconds, mops);
  if (!ok)
    n = snprintf(line, sizeof line, "%-20s %-6s FAILED (out of memory or a block changed)",
                 name, policy);
  if (write(out_fd, line, (size_t)n) != n)
    _exit(3);
  _exit(ok ? 0 : 1);
}

static int replay_in_child(const char *path, const char *fit, int passes)
{
  int fds[2];
  if (pipe(fds) != 0)
    return 1;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    run_child(path, fit, passes, fds[1]);
  }
  close(fds[1]);
  char line[256];
  ssize_t n = read(fds[0], line, sizeof line - 1);
  close(fds[0]);
  int status = 1;
  struct rusage usage;
  wait4(pid, &status, 0, &usage);
  line[n > 0 ? n : 0] = '\0';
  printf("%s %10ld\n", n > 0 ? line : path, usage.ru_maxrss);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
  const char *fit = "";
  int passes = 5, opt, failed = 0;
  while ((opt = getopt(argc, argv, "f:n:")) != -1) {
    if (opt == 'f')
      fit = optarg;
    else if (opt == 'n')
      passes = atoi(optarg) > 0 ? atoi(optarg) : 1;
    else
      return fprintf(stderr, "usage: replay [-f first|next|best] [-n passes] TRACE...\n"), 2;
  }
  printf("%-20s %-6s %6s %6s %9s %8s %8s %10s\n", "trace", "policy", "util", "bound", "ops",
         "seconds", "Mops/s", "rss_kib");
  for (int i = optind; i < argc; i++)
    failed |= replay_in_child(argv[i], fit, passes);
  return failed;
}
