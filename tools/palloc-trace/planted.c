/* planted.c: a program with known leaks, peak, temporaries and misuse, for the tests of
 * palloc-trace (t-palloc-trace.sh), which traces it for real and checks the report.
 *
 *   planted          the main scenario (below); exits 0
 *   planted misuse   forks two children: one frees a block twice, one frees a pointer that
 *                    was never allocated (palloc stops each with abort()); exits 0
 *
 * The scenario, in the main thread, all from this file (the lines carry a MARK comment that
 * the test looks up):
 *   leaks: 5 x malloc(100) from leak_small, calloc(16, 256) from leak_big, a block grown by
 *          realloc to 3000 bytes from leak_realloc: 7 blocks, 7596 bytes;
 *   peak:  then three blocks of 1 MiB live at once: peak = 7596 + 3 MiB = 3153324 bytes;
 *   temporaries: 7 from make_temporaries, 1 from the second malloc of make_pair, none from
 *          its first, 1 from make_peak (its last block is freed first); no other;
 *   a forked child leaks 2 x 777 bytes from leak_in_child and exits; the parent waits.
 * It prints nothing (stdio would allocate). With PLANTED_PIDS=FILE it writes its pid, then
 * each child's, one a line, to FILE, so that the test can tell its processes from those of
 * other sessions' programs (LTTng records all the user's traced programs in every session).
 */
#define _GNU_SOURCE
/* Each call where it is written, whatever CFLAGS say: no unrolled loops, no tail calls. */
#if defined(__clang__)
#pragma clang optimize off
#else
#pragma GCC optimize("O0")
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile keep[16];

__attribute__((noinline)) static void leak_small(void)
{
  for (int i = 0; i < 5; i++)
    keep[i] = malloc(100); /* MARK leak_small */
}

__attribute__((noinline)) static void leak_big(void)
{
  keep[5] = calloc(16, 256); /* MARK leak_big */
}

__attribute__((noinline)) static void leak_realloc(void)
{
  char *p = malloc(10); /* MARK leak_realloc_first */
  memset(p, 1, 10);
  keep[6] = realloc(p, 3000); /* MARK leak_realloc */
}

__attribute__((noinline)) static void make_peak(void)
{
  void *blocks[3];
  for (int i = 0; i < 3; i++)
    blocks[i] = malloc(1 << 20); /* MARK peak */
  for (int i = 2; i >= 0; i--)
    free(blocks[i]);
}

__attribute__((noinline)) static void make_temporaries(void)
{
  for (int i = 0; i < 7; i++) {
    void *p = malloc(64); /* MARK temporary */
    keep[7] = p;
    free(p);
  }
}

__attribute__((noinline)) static void make_pair(void)
{
  void *a = malloc(32); /* MARK pair_first */
  void *b = malloc(32); /* MARK pair_second */
  keep[8] = a;
  keep[9] = b;
  free(a);
  free(b);
}

__attribute__((noinline)) static void leak_in_child(void)
{
  keep[10] = malloc(777); /* MARK leak_in_child */
  keep[11] = malloc(777); /* MARK leak_in_child_2 */
}

/* One line "PID\n" to $PLANTED_PIDS, formatted without allocating. */
static void note_pid(pid_t pid)
{
  const char *path = getenv("PLANTED_PIDS");
  if (path == NULL)
    return;
  char line[32];
  int length = snprintf(line, sizeof line, "%d\n", (int)pid);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0 || write(fd, line, (size_t)length) != length)
    abort();
  close(fd);
}

static void run_child(void (*body)(void))
{
  pid_t pid = fork();
  if (pid == 0) {
    body();
    _exit(0);
  }
  if (pid > 0) {
    note_pid(pid);
    waitpid(pid, NULL, 0);
  }
}

__attribute__((noinline)) static void double_free(void)
{
  void *p = malloc(48); /* MARK double_free_alloc */
  keep[12] = p;
  free(p); /* MARK double_free_first */
  free(p); /* MARK double_free_second */
}

__attribute__((noinline)) static void free_unknown(void)
{
  static long not_from_malloc[8];
  free(&not_from_malloc[2]); /* MARK free_unknown */
}

int main(int argc, char **argv)
{
  note_pid(getpid());
  if (argc > 1 && strcmp(argv[1], "misuse") == 0) {
    run_child(double_free);
    run_child(free_unknown);
    return 0;
  }
  leak_small();
  leak_big();
  leak_realloc();
  make_peak();
  make_temporaries();
  make_pair();
  run_child(leak_in_child);
  return 0;
}
