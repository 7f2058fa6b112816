/* report.c: one-line messages on stderr without allocating (see report.h). */
#include "config.h"
#include "util/report.h"
#include "util/vg.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void line_str(struct report_line *line, const char *text)
{
  size_t n = strlen(text);
  if (n > line->cap - line->len)
    n = line->cap - line->len;
  memcpy(line->buf + line->len, text, n);
  line->len += n;
}

static void line_digits(struct report_line *line, uint64_t value, unsigned base)
{
  char digits[24];
  int i = (int)sizeof digits;
  digits[--i] = '\0';
  do {
    digits[--i] = "0123456789abcdef"[value % base];
    value /= base;
  } while (value != 0);
  line_str(line, &digits[i]);
}

void line_uint(struct report_line *line, uint64_t value) { line_digits(line, value, 10); }

void line_hex(struct report_line *line, uint64_t value)
{
  line_str(line, "0x");
  line_digits(line, value, 16);
}

void line_flush(struct report_line *line)
{
  if (line->len == line->cap)
    line->len--;
  line->buf[line->len++] = '\n';
  size_t done = 0;
  while (done < line->len) {
    ssize_t n = write(STDERR_FILENO, line->buf + done, line->len - done);
    if (n <= 0)
      break;
    done += (size_t)n;
  }
  line->len = 0;
}

bool report_misuse_continues;

static void write_misuse_line(const char *problem, const void *ptr, const char *function)
{
  char buf[256];
  struct report_line line = { buf, sizeof buf, 0 };
  line_str(&line, "palloc: ");
  line_str(&line, problem);
  line_str(&line, " (pointer ");
  line_hex(&line, (uintptr_t)ptr);
  line_str(&line, ", in ");
  line_str(&line, function);
  line_str(&line, "())");
  line_flush(&line);
}

_Noreturn void report_misuse(const char *problem, const void *ptr, const char *function)
{
  write_misuse_line(problem, ptr, function);
  if (vg_memcheck())
    vg_error_reporting(true); /* memcheck warns of a thread that ends with reporting off */
  abort();
}

void report_misuse_or_continue(const char *problem, const void *ptr, const char *function)
{
  write_misuse_line(problem, ptr, function);
  if (!report_misuse_continues)
    abort();
}

int report_check_failure(int invariant, const char *what, const void *addr,
                         const char *file, int line_number)
{
  char buf[320];
  struct report_line line = { buf, sizeof buf, 0 };
  line_str(&line, "palloc: heap check failed: I");
  line_uint(&line, (uint64_t)invariant);
  line_str(&line, " ");
  line_str(&line, what);
  line_str(&line, " at ");
  line_hex(&line, (uintptr_t)addr);
  line_str(&line, " (");
  line_str(&line, file);
  line_str(&line, ":");
  line_uint(&line, (uint64_t)line_number);
  line_str(&line, ")");
  line_flush(&line);
  return invariant;
}

void report_warning(const char *text)
{
  char buf[256];
  struct report_line line = { buf, sizeof buf, 0 };
  line_str(&line, "palloc: ");
  line_str(&line, text);
  line_flush(&line);
}
