/* trace-known.c: allocation calls of known behaviour, for the tracing tests.
 *
 *   trace-known calls LOG        every API function once or more, failures included
 *   trace-known threads LOG N K  N threads, K malloc/free pairs each, sizes set per thread
 *   trace-known fork LOG         calls in the parent, in a forked child, then again
 *   trace-known million LOG N    N malloc/free pairs (2N events)
 *   trace-known late LOG MS      sleeps MS milliseconds, then as calls (a session started
 *                                meanwhile must see the calls)
 *   trace-known dlopen LOG LIB...  4 threads allocate while the main thread dlopens and
 *                                dlcloses libraries that have thread-locals, 20 rounds: the
 *                                dynamic loader allocates while it updates each thread's TLS
 *
 * LOG receives what the trace must show: one line per call made directly from this program,
 *   PID TID EVENT ptr=P [in_ptr=P] [size=N] [nmemb=N] [alignment=N] [result=N]
 * in the order of the calls (the million mode writes one summary line: PID TID count=2N),
 * and one line
 *   text START END
 * with the program's own code, so that the checker keeps only calls made from here (libc
 * allocates too). Lines are formatted without allocating and written with write(2).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "palloc.h"

#include <link.h>

extern char __executable_start, etext;

static int log_fd;

static void logf_line(const char *event, const char *fields)
{
  char line[512];
  int n = snprintf(line, sizeof line, "%d %d %s %s\n", (int)getpid(), (int)gettid(), event,
                   fields);
  if (write(log_fd, line, (size_t)n) != n)
    abort();
}

#define FIELDS(...) (snprintf(fields, sizeof fields, __VA_ARGS__), fields)

/* Keep the compiler from folding or removing calls. */
static void *volatile sink;
static volatile size_t huge = SIZE_MAX / 2;
static void *volatile null_ptr;

static void do_calls(void)
{
  char fields[256];
  void *p = malloc(100);
  logf_line("malloc", FIELDS("ptr=%p size=100", p));
  void *q = calloc(7, 24);
  logf_line("calloc", FIELDS("ptr=%p nmemb=7 size=24", q));
  uintptr_t old = (uintptr_t)p;
  void *r = realloc(p, 5000);
  logf_line("realloc", FIELDS("ptr=%p in_ptr=%#" PRIxPTR " size=5000", r, old));
  void *s = reallocarray(NULL, 10, 30);
  logf_line("reallocarray", FIELDS("ptr=%p in_ptr=0x0 nmemb=10 size=30", s));
  void *t = NULL;
  int rc = posix_memalign(&t, 256, 300);
  logf_line("posix_memalign", FIELDS("ptr=%p alignment=256 size=300 result=%d", t, rc));
  void *bad = NULL;
  rc = posix_memalign(&bad, 3, 300);
  logf_line("posix_memalign", FIELDS("ptr=0x0 alignment=3 size=300 result=%d", rc));
  void *u = aligned_alloc(64, 128);
  logf_line("aligned_alloc", FIELDS("ptr=%p alignment=64 size=128", u));
  void *v = memalign(4096, 10);
  logf_line("memalign", FIELDS("ptr=%p alignment=4096 size=10", v));
  void *w = valloc(33);
  logf_line("valloc", FIELDS("ptr=%p size=33", w));
  void *x = pvalloc(5000);
  logf_line("pvalloc", FIELDS("ptr=%p size=5000", x));
  void *fail = malloc(huge);
  logf_line("malloc", FIELDS("ptr=0x0 size=%zu", (size_t)huge));
  sink = fail;
  void *big = malloc(3 << 20);
  logf_line("malloc", FIELDS("ptr=%p size=%d", big, 3 << 20));
  logf_line("free", FIELDS("ptr=%p", big));
  free(big);
  logf_line("free", FIELDS("ptr=%p", q));
  free(q);
  logf_line("free_sized", FIELDS("ptr=%p size=300", s));
  free_sized(s, 300);
  logf_line("free_aligned_sized", FIELDS("ptr=%p alignment=64 size=128", u));
  free_aligned_sized(u, 64, 128);
  logf_line("realloc", FIELDS("ptr=0x0 in_ptr=%p size=0", r));
  void *z = realloc(r, 0);
  sink = z;
  logf_line("free", "ptr=0x0");
  free(null_ptr);
  logf_line("free", FIELDS("ptr=%p", t));
  free(t);
  logf_line("free", FIELDS("ptr=%p", v));
  free(v);
  logf_line("free", FIELDS("ptr=%p", w));
  free(w);
  logf_line("free", FIELDS("ptr=%p", x));
  free(x);
}

static long pairs_per_thread;

static void *thread_main(void *arg)
{
  size_t size = 16 + 8 * (size_t)(uintptr_t)arg;
  char fields[256];
  for (long i = 0; i < pairs_per_thread; i++) {
    void *p = malloc(size + (size_t)(i % 5) * 100);
    logf_line("malloc", FIELDS("ptr=%p size=%zu", p, size + (size_t)(i % 5) * 100));
    logf_line("free", FIELDS("ptr=%p", p));
    free(p);
  }
  return NULL;
}

static int do_threads(int nthreads, long pairs)
{
  pthread_t threads[64];
  pairs_per_thread = pairs;
  for (int i = 0; i < nthreads && i < 64; i++)
    if (pthread_create(&threads[i], NULL, thread_main, (void *)(uintptr_t)i) != 0)
      return 1;
  for (int i = 0; i < nthreads && i < 64; i++)
    pthread_join(threads[i], NULL);
  return 0;
}

static int do_fork(void)
{
  do_calls();
  pid_t child = fork();
  if (child < 0)
    return 1;
  if (child == 0) {
    do_calls();
    _exit(0);
  }
  int status;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return 1;
  do_calls();
  return 0;
}

static void do_million(long pairs)
{
  for (long i = 0; i < pairs; i++) {
    void *p = malloc(32 + (size_t)(i & 255));
    sink = p;
    free(p);
  }
  char fields[64];
  logf_line("summary", FIELDS("count=%ld", 2 * pairs));
}

static pthread_barrier_t round_start, round_end;
static int rounds_left;

/* The loader's entry for a thread-local access: allocates the thread's block of a module
 * loaded after the thread started (with malloc, from ld.so). */
struct tls_index {
  unsigned long module;
  unsigned long offset;
};
extern void *__tls_get_addr(struct tls_index *index);

/* Touch the thread-locals of every loaded module that has some. */
static int touch_tls(struct dl_phdr_info *info, size_t size, void *data)
{
  (void)size;
  (void)data;
  if (info->dlpi_tls_modid != 0)
    sink = __tls_get_addr(&(struct tls_index){info->dlpi_tls_modid, 0});
  return 0;
}

static void *dlopen_thread(void *arg)
{
  (void)arg;
  for (;;) {
    pthread_barrier_wait(&round_start);
    if (rounds_left == 0)
      return NULL;
    for (int i = 0; i < 200; i++) {
      void *p = malloc((size_t)(16 + i));
      sink = p;
      free(p);
    }
    dl_iterate_phdr(touch_tls, NULL);
    pthread_barrier_wait(&round_end);
  }
}

static int do_dlopen(int nlibs, char **libs)
{
  pthread_t threads[4];
  pthread_barrier_init(&round_start, NULL, 5);
  pthread_barrier_init(&round_end, NULL, 5);
  rounds_left = 20;
  for (int i = 0; i < 4; i++)
    if (pthread_create(&threads[i], NULL, dlopen_thread, NULL) != 0)
      return 1;
  void *handles[16];
  for (; rounds_left > 0; rounds_left--) {
    for (int i = 0; i < nlibs && i < 16; i++)
      handles[i] = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL);
    pthread_barrier_wait(&round_start);
    dl_iterate_phdr(touch_tls, NULL);
    pthread_barrier_wait(&round_end);
    for (int i = 0; i < nlibs && i < 16; i++)
      if (handles[i] != NULL)
        dlclose(handles[i]);
  }
  pthread_barrier_wait(&round_start);
  for (int i = 0; i < 4; i++)
    pthread_join(threads[i], NULL);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc < 3)
    return 2;
  log_fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  if (log_fd < 0)
    return 2;
  char line[128];
  int n = snprintf(line, sizeof line, "text %p %p\n", (void *)&__executable_start,
                   (void *)&etext);
  if (write(log_fd, line, (size_t)n) != n)
    return 2;
  if (strcmp(argv[1], "calls") == 0)
    do_calls();
  else if (strcmp(argv[1], "threads") == 0 && argc == 5)
    return do_threads(atoi(argv[3]), atol(argv[4]));
  else if (strcmp(argv[1], "fork") == 0)
    return do_fork();
  else if (strcmp(argv[1], "late") == 0 && argc == 4) {
    long ms = atol(argv[3]);
    struct timespec pause = { ms / 1000, (ms % 1000) * 1000000 };
    nanosleep(&pause, NULL);
    do_calls();
  } else if (strcmp(argv[1], "dlopen") == 0)
    return do_dlopen(argc - 3, argv + 3);
  else if (strcmp(argv[1], "million") == 0 && argc == 4)
    do_million(atol(argv[3]));
  else
    return 2;
  return 0;
}
