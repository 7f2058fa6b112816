/* report.h: palloc's voice on stderr, usable from any layer, never allocating.
 *
 * Every message is one line that starts with "palloc: ". Misuse and corruption end the process
 * with abort() (report_misuse); heap-checker findings are reported and returned to the caller
 * (report_check_failure). Formatting is done by hand into a stack buffer and written with a
 * single write(2), so these are safe inside the allocator, in a signal handler and after fork.
 */
#ifndef PALLOC_REPORT_H
#define PALLOC_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A line builder over a caller-owned buffer; output past the end is dropped. */
struct report_line {
  char *buf;
  size_t cap;
  size_t len;
};

void line_str(struct report_line *line, const char *text);
void line_uint(struct report_line *line, uint64_t value);
void line_hex(struct report_line *line, uint64_t value);
/* Write the line, plus a newline, to stderr. */
void line_flush(struct report_line *line);

/* "palloc: <problem> (pointer 0x..., in <function>)" then abort(). */
_Noreturn void report_misuse(const char *problem, const void *ptr, const char *function);
/* The same line; then abort(), unless report_misuse_continues (PALLOC_ON_MISUSE=continue),
 * in which case it returns and the caller leaves the block alone (leaked, never reused). For
 * misuse found before anything was changed; corruption found inside a backend always aborts. */
void report_misuse_or_continue(const char *problem, const void *ptr, const char *function);
extern bool report_misuse_continues;
/* "palloc: heap check failed: I<n> <what> at 0x... (<file>:<line>)"; returns invariant. */
int report_check_failure(int invariant, const char *what, const void *addr,
                         const char *file, int line);
#define CHECK_FAIL(invariant, what, addr) \
  report_check_failure((invariant), (what), (addr), __FILE__, __LINE__)

/* "palloc: <text>" without aborting (warnings). */
void report_warning(const char *text);

#endif /* PALLOC_REPORT_H */
