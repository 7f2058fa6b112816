/* measure: run a command and report its wall time and peak RSS, as a small process of our own
 * (a child forked from the Python driver would count the driver's memory in its peak RSS).
 * Usage: measure RESULT_FILE PROGRAM ARGS... ; writes "SECONDS PEAK_RSS_KIB STATUS LIBC_KIB" to
 * RESULT_FILE and exits with the program's exit status. With MEASURE_PRELOAD=LIB in the
 * environment, the program (not this launcher) runs with LD_PRELOAD=LIB: set in the child
 * between fork and exec, so that no other program (such as env) runs in the measured process
 * first and leaves its own peak RSS in the figure.
 *
 * The peak is VmHWM from /proc/PID/status, read while the program's main thread is stopped
 * on its way out (ptrace's PTRACE_EVENT_EXIT, before its memory is released), not wait4's
 * ru_maxrss. Since Linux 6.2 the kernel keeps RSS in per-CPU counters and ru_maxrss is taken
 * from their approximate sum, which leaves out up to 32 pages per CPU and per kind of page
 * (anonymous, file): on 2 CPUs a process of ~1.2 MiB read 1116 KiB through ru_maxrss against
 * 1232 KiB of VmHWM at exit, and changes of 80 KiB did not show at all. /proc sums the counters
 * exactly. ru_maxrss remains the fallback when the exit stop is not seen (e.g. ptrace denied).
 *
 * At the same stop it reads how much of the C library and the dynamic loader is resident
 * (their mappings' Rss in /proc/PID/smaps), written as a fourth field. Those pages are file
 * pages that every allocator's process shares, mapped in by the kernel's fault-around in
 * aligned 64 KiB windows: how many land in RSS depends on where ASLR put libc. Under glibc a
 * two-thread workload had 334 to 388 pages of libc resident from run to run; under a
 * preloaded library whose big reservation the kernel aligns to 2 MiB (palloc-mmap's), libc
 * lands at the same offset every run and had 334 each time. bench/run.py also reports the
 * peak with them counted as many as under glibc: they stay mapped once faulted in, so the peak
 * less their count at exit is the peak of the rest.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* VmHWM of process pid in KiB, or 0 when it cannot be read. */
static long peak_rss_kib(pid_t pid)
{
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *status = fopen(path, "r");
  long kib = 0;
  if (status == NULL)
    return 0;
  while (fgets(line, sizeof line, status) != NULL)
    if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
      break;
  fclose(status);
  return kib;
}

/* Resident KiB of pid's mappings of the C library and the dynamic loader, or 0. */
static long system_library_kib(pid_t pid)
{
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
  FILE *smaps = fopen(path, "r");
  long total = 0, kib;
  bool counting = false;
  if (smaps == NULL)
    return 0;
  while (fgets(line, sizeof line, smaps) != NULL) {
    char *space = strchr(line, ' ');
    char *dash = strchr(line, '-');
    if (dash != NULL && space != NULL && dash < space) /* a mapping's first line */
      counting = strstr(line, "/libc.so.6") != NULL || strstr(line, "/ld-linux") != NULL;
    else if (counting && sscanf(line, "Rss: %ld kB", &kib) == 1)
      total += kib;
  }
  fclose(smaps);
  return total;
}

static void exec_program(char **argv)
{
  const char *preload = getenv("MEASURE_PRELOAD");
  if (preload != NULL && preload[0] != '\0')
    setenv("LD_PRELOAD", preload, 1);
  unsetenv("MEASURE_PRELOAD");
  ptrace(PTRACE_TRACEME, 0, NULL, NULL); /* if refused, the program runs untraced */
  execvp(argv[0], argv);
  perror(argv[0]);
  _exit(127);
}

static bool is_event_stop(int status, int event)
{
  return WIFSTOPPED(status) && (status >> 8) == (SIGTRAP | (event << 8));
}

/* Wait for the traced child to end, reading its VmHWM at the exit stop; *usage is filled by
 * the last wait4. Returns the final wait status, or -1. */
static int wait_traced(pid_t child, long *exit_hwm, long *exit_libc, struct rusage *usage)
{
  bool exec_seen = false;
  for (;;) {
    int status;
    if (wait4(child, &status, 0, usage) != child)
      return -1;
    if (!WIFSTOPPED(status))
      return status;
    int pass_signal = 0;
    if (is_event_stop(status, PTRACE_EVENT_EXIT)) {
      *exit_hwm = peak_rss_kib(child);
      *exit_libc = system_library_kib(child);
    } else if (is_event_stop(status, PTRACE_EVENT_EXEC)) {
      /* a further execve (a wrapper script's): nothing to do */
    } else if (!exec_seen && WSTOPSIG(status) == SIGTRAP) {
      exec_seen = true; /* the stop after the first execve: from here on, events only */
      long options = PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
      ptrace(PTRACE_SETOPTIONS, child, NULL, (void *)options);
    } else {
      pass_signal = WSTOPSIG(status); /* a signal for the program: deliver it */
    }
    ptrace(PTRACE_CONT, child, NULL, (void *)(long)pass_signal);
  }
}

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: measure RESULT_FILE PROGRAM ARGS...\n");
    return 2;
  }
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  pid_t child = fork();
  if (child == 0)
    exec_program(&argv[2]);
  long exit_hwm = 0, exit_libc = 0;
  struct rusage usage;
  int status = child < 0 ? -1 : wait_traced(child, &exit_hwm, &exit_libc, &usage);
  if (status == -1) {
    perror("measure");
    return 2;
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  double seconds = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  FILE *out = fopen(argv[1], "w");
  if (out == NULL) {
    perror(argv[1]);
    return 2;
  }
  fprintf(out, "%.6f %ld %d %ld\n", seconds, exit_hwm > 0 ? exit_hwm : usage.ru_maxrss, code,
          exit_libc);
  fclose(out);
  return code;
}
