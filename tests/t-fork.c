/* t-fork.c: fork with live blocks, fork while other threads allocate, fork from a thread then
 * exec, and fork racing stdio (glibc's tst-malloc-fork-deadlock). Hangs become failures
 * through alarm() in every child and a deadline in the parent. */
#include "ptest.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;
static atomic_ulong allocator_broken;

/* In a child: use the allocator in every size class and check the heap; 0 when all is well. */
static int child_work(unsigned char *inherited, size_t inherited_size, uint64_t seed)
{
  if (inherited && !pattern_ok(inherited, inherited_size, seed))
    return 3;
  free(inherited);
  size_t sizes[] = {16, 64, 1000, 70000, 1u << 20};
  for (int i = 0; i < 5; i++) {
    unsigned char *p = malloc(sizes[i]);
    if (!p)
      return 4;
    fill_pattern(p, sizes[i], seed + (uint64_t)i);
    unsigned char *q = realloc(p, sizes[i] * 2);
    if (!q || !pattern_ok(q, sizes[i], seed + (uint64_t)i))
      return 5;
    free(q);
  }
  return P.check_heap() == 0 ? 0 : 6;
}

static int wait_child(pid_t pid, unsigned timeout_s)
{
  int status;
  time_t deadline = time(NULL) + timeout_s;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return status;
    if (r < 0 && errno != EINTR)
      return -1;
    if (time(NULL) > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    usleep(1000);
  }
}

static void basic_fork(void)
{
  size_t sizes[] = {48, 5000, 3u << 20};
  for (int i = 0; i < 3; i++) {
    unsigned char *p = malloc(sizes[i]);
    fill_pattern(p, sizes[i], 77);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      alarm(20);
      _exit(child_work(p, sizes[i], 77));
    }
    int status = wait_child(pid, 30);
    ok(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "child frees the parent's %zu-byte block, allocates, heap consistent (status %#x)",
       sizes[i], status);
    ok(pattern_ok(p, sizes[i], 77), "the parent's block is untouched by the child");
    free(p);
  }
}

/* Whether a block of size bytes holds c: all of a small one, the first and last 2 KiB of a
 * big one (the allocating threads must not slow the forks down much). */
static bool holds_byte(const unsigned char *p, size_t size, unsigned char c)
{
  if (size <= 4096)
    return all_bytes(p, size, c);
  return all_bytes(p, 2048, c) && all_bytes(p + size - 2048, 2048, c);
}

/* Allocates (malloc, realloc(NULL), memalign for small blocks), grows and shrinks small blocks
 * with realloc, and frees while the main thread forks; every block holds its slot number in
 * all its bytes, checked (holds_byte) before the block is freed or resized. (Large memaligns
 * here made the 200 forks 2-4 times slower, so they are left to other tests.) */
static void *allocator_thread(void *arg)
{
  uint64_t rng = (uintptr_t)arg;
  unsigned char *slots[32] = {0};
  size_t sizes[32] = {0};
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    size_t i = rng_below(&rng, 32);
    if (slots[i] && !holds_byte(slots[i], sizes[i], (unsigned char)i))
      atomic_fetch_add(&allocator_broken, 1);
    size_t size = rng_below(&rng, 4) == 0 ? rng_below(&rng, 300000) : rng_below(&rng, 2000);
    if (slots[i] && size < 2000 && sizes[i] < 2000 && rng_below(&rng, 3) == 0) {
      unsigned char *q = realloc(slots[i], size + 1);
      if (q == NULL || !holds_byte(q, size + 1 < sizes[i] ? size + 1 : sizes[i], (unsigned char)i))
        atomic_fetch_add(&allocator_broken, 1);
      slots[i] = q;
      sizes[i] = q ? size + 1 : 0;
    } else {
      free(slots[i]);
      uint64_t how = rng_below(&rng, 16);
      if (how == 0 && size < 2000)
        slots[i] = memalign(64, size);
      else
        slots[i] = how < 8 ? realloc(NULL, size) : malloc(size);
      sizes[i] = slots[i] ? size : 0;
    }
    if (slots[i])
      memset(slots[i], (int)i, sizes[i]);
  }
  for (int i = 0; i < 32; i++)
    free(slots[i]);
  return NULL;
}

static void fork_while_allocating(void)
{
  enum { ALLOCATORS = 3 };
  pthread_t t[ALLOCATORS];
  atomic_store(&stop, 0);
  for (int i = 0; i < ALLOCATORS; i++)
    pthread_create(&t[i], NULL, allocator_thread, (void *)(uintptr_t)(i + 11));
  unsigned forks = scaled(200), good = 0;
  int last_bad = 0;
  for (unsigned f = 0; f < forks; f++) {
    unsigned char *p = malloc(100 + f);
    fill_pattern(p, 100 + f, f);
    pid_t pid = fork();
    if (pid == 0) {
      alarm(10);
      _exit(child_work(p, 100 + f, f));
    }
    int status = wait_child(pid, 20);
    if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
      good++;
    else
      last_bad = status;
    free(p);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < ALLOCATORS; i++)
    pthread_join(t[i], NULL);
  ok(good == forks, "%u forks while %d threads allocate: %u children allocated and exited 0 (last bad status %#x)",
     forks, ALLOCATORS, good, last_bad);
  ok(atomic_load(&allocator_broken) == 0,
     "the allocating threads' blocks kept their contents across the forks (%lu broken)",
     atomic_load(&allocator_broken));
  ok(P.check_heap() == 0, "parent's heap consistent after the forks");
}

static void *fork_exec_thread(void *arg)
{
  (void)arg;
  void *p = malloc(1000);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(10);
    execlp("true", "true", (char *)NULL);
    _exit(127);
  }
  int status = wait_child(pid, 20);
  free(p);
  return (void *)(intptr_t)status;
}

static void fork_from_thread(void)
{
  pthread_t t;
  void *status = (void *)-1;
  pthread_create(&t, NULL, fork_exec_thread, NULL);
  pthread_join(t, &status);
  int s = (int)(intptr_t)status;
  ok(s >= 0 && WIFEXITED(s) && WEXITSTATUS(s) == 0, "a thread mallocs, forks, child execs true");
}

/* getline + fflush(NULL) + fork threads racing (glibc BZ 19431). */
static void *getline_thread(void *arg)
{
  (void)arg;
  char *text = malloc(50001);
  memset(text, 'x', 50000);
  text[50000] = '\n';
  while (!atomic_load(&stop)) {
    FILE *f = fmemopen(text, 50001, "r");
    if (!f)
      continue;
    char *line = NULL;
    size_t cap = 0;
    if (getline(&line, &cap, f) != 50001)
      atomic_store(&stop, 2);
    free(line);
    fclose(f);
  }
  free(text);
  return NULL;
}

static void *fflush_thread(void *arg)
{
  (void)arg;
  while (!atomic_load(&stop))
    fflush(NULL);
  return NULL;
}

static void *forker_thread(void *arg)
{
  unsigned *bad = arg;
  while (!atomic_load(&stop)) {
    pid_t pid = fork();
    if (pid == 0) {
      alarm(10);
      free(malloc(100));
      _exit(17);
    }
    int status = wait_child(pid, 20);
    if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 17)
      (*bad)++;
  }
  return NULL;
}

/* In a child of its own, so a deadlock costs a 15-second watchdog, not the whole test. */
static void stdio_race_child(void *arg)
{
  (void)arg;
  atomic_store(&stop, 0);
  pthread_t g[4], fl, fk[2];
  unsigned bad[2] = {0, 0};
  for (int i = 0; i < 4; i++)
    pthread_create(&g[i], NULL, getline_thread, NULL);
  pthread_create(&fl, NULL, fflush_thread, NULL);
  for (int i = 0; i < 2; i++)
    pthread_create(&fk[i], NULL, forker_thread, &bad[i]);
  sleep(2);
  int getline_broke = atomic_load(&stop) == 2;
  atomic_store(&stop, 1);
  for (int i = 0; i < 4; i++)
    pthread_join(g[i], NULL);
  pthread_join(fl, NULL);
  for (int i = 0; i < 2; i++)
    pthread_join(fk[i], NULL);
  _exit(bad[0] + bad[1] == 0 && !getline_broke ? 0 : 1);
}

static void fork_stdio_race(void)
{
  int status;
  char err[512];
  /* 2 s of work: 15 s is a hang natively; under memcheck each fork copies valgrind too. */
  run_in_child(stdio_race_child, NULL, ptest_under_memcheck() ? 60 : 15, &status, err, sizeof err);
  ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
     "2 s of fork + getline + fflush(NULL) threads: no hang, every child exited 17 (%s %d)",
     WIFSIGNALED(status) ? "killed by signal" : "exit",
     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

static void atfork_prepare(void) { free(malloc(50)); }
static void atfork_parent(void) { free(calloc(5, 10)); }
static void atfork_child(void) { free(realloc(malloc(10), 500)); }

static void allocating_atfork_handlers(void)
{
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(10);
    _exit(child_work(NULL, 0, 5));
  }
  int status = wait_child(pid, 20);
  ok(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
     "application atfork handlers that allocate: child allocates fine");
}

int test_fork(void)
{
  ptest_init();
  alarm(200 * ptest_stress());
  basic_fork();
  fork_from_thread();
  fork_while_allocating();
  fork_stdio_race();
  allocating_atfork_handlers();
  ok(P.check_heap() == 0, "heap consistent at the end");
  return tap_done();
}
