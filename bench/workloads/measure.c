/* measure: run a command and report its wall time and peak RSS, as a small process of our own
 * (a child forked from the Python driver would count the driver's memory in its peak RSS).
 * Usage: measure RESULT_FILE PROGRAM ARGS... ; writes "SECONDS MAXRSS_KIB STATUS" to
 * RESULT_FILE and exits with the program's exit status. With MEASURE_PRELOAD=LIB in the
 * environment, the program (not this launcher) runs with LD_PRELOAD=LIB: set in the child
 * between fork and exec, so that no other program (such as env) runs in the measured process
 * first and leaves its own peak RSS in the figure. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: measure RESULT_FILE PROGRAM ARGS...\n");
    return 2;
  }
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  pid_t child = fork();
  if (child == 0) {
    const char *preload = getenv("MEASURE_PRELOAD");
    if (preload != NULL && preload[0] != '\0')
      setenv("LD_PRELOAD", preload, 1);
    unsetenv("MEASURE_PRELOAD");
    execvp(argv[2], &argv[2]);
    perror(argv[2]);
    _exit(127);
  }
  int status = 0;
  struct rusage usage;
  if (child < 0 || wait4(child, &status, 0, &usage) != child) {
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
  fprintf(out, "%.6f %ld %d\n", seconds, usage.ru_maxrss, code);
  fclose(out);
  return code;
}
