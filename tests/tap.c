/* tap.c: see tap.h. */
#include "tap.h"

#include <stdio.h>

int tap_count;
int tap_failures;

bool ok(bool cond, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  printf("%sok %d - ", cond ? "" : "not ", ++tap_count);
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
  if (!cond)
    tap_failures++;
  return cond;
}

void skip(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  printf("ok %d # SKIP ", ++tap_count);
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
}

void diag(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  printf("# ");
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
}

void bail_out(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  printf("Bail out! ");
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
  exit(1);
}

int tap_done(void)
{
  printf("1..%d\n", tap_count);
  fflush(stdout);
  return tap_failures == 0 ? 0 : 1;
}
