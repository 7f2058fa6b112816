/* misuse-run.c: run one misuse program of misuse_cases.h by name, under whatever malloc the
 * process has (tests/misuse-matrix.sh preloads each allocator in turn). Exits 0 when the
 * misuse went unnoticed, MISUSE_NOT_APPLICABLE when the case cannot run here.
 *   misuse-run --list      the case names and labels, tab-separated
 *   misuse-run NAME        run the case */
#include "misuse_cases.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < misuse_case_count; i++)
      printf("%s\t%s\n", misuse_cases[i].name, misuse_cases[i].label);
    return 0;
  }
  for (size_t i = 0; argc == 2 && i < misuse_case_count; i++)
    if (strcmp(argv[1], misuse_cases[i].name) == 0) {
      misuse_cases[i].run();
      return 0;
    }
  fprintf(stderr, "usage: %s --list | CASE\n", argv[0]);
  return 2;
}
