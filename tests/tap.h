/* tap.h: a tiny Test Anything Protocol writer for palloc's tests.
 *
 *   ok(cond, "fmt", ...)   one result line: "ok N - text" or "not ok N - text"
 *   diag("fmt", ...)       a "# text" comment line
 *   skip("fmt", ...)       "ok N # SKIP text": a result that does not apply here (said why)
 *   tap_done()             the plan line "1..N" (printed last); returns the exit status
 *
 * Results are counted from one thread at a time (tests that run threads collect their
 * findings and report them from the main thread). stdout is flushed after every line so a
 * fork never duplicates buffered output.
 */
#ifndef PALLOC_TAP_H
#define PALLOC_TAP_H

#include "config.h" /* _GNU_SOURCE and friends, before any system header */

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

extern int tap_count;
extern int tap_failures;

__attribute__((format(printf, 2, 3))) bool ok(bool cond, const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void diag(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void skip(const char *fmt, ...);
/* Print "Bail out! text" and exit 1: for when nothing after this could mean anything. */
__attribute__((format(printf, 1, 2), noreturn)) void bail_out(const char *fmt, ...);
int tap_done(void);

#endif /* PALLOC_TAP_H */
