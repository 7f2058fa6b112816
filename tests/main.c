/* main.c: palloc's C tests in one program; argv[1] names the area to run. */
#include "ptest.h"

#include <stdio.h>
#include <string.h>

static const struct {
  const char *name;
  int (*run)(void);
} areas[] = {
  {"api", test_api},         {"limits", test_limits},         {"aligned", test_aligned},
  {"realloc", test_realloc}, {"calloc", test_calloc},         {"errno", test_errno},
  {"stats", test_stats},     {"randomops", test_randomops},   {"threads", test_threads},
  {"fork", test_fork},       {"threadstorm", test_threadstorm}, {"exhaust", test_exhaust},
  {"death", test_death},     {"transfer", test_transfer}, {"corrupt", test_corrupt},
};

int main(int argc, char **argv)
{
  for (size_t i = 0; argc == 2 && i < sizeof areas / sizeof areas[0]; i++)
    if (strcmp(argv[1], areas[i].name) == 0)
      return areas[i].run();
  fprintf(stderr, "usage: %s AREA   (areas:", argv[0]);
  for (size_t i = 0; i < sizeof areas / sizeof areas[0]; i++)
    fprintf(stderr, " %s", areas[i].name);
  fprintf(stderr, ")\n");
  return 2;
}
