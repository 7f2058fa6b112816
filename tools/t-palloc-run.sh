#!/bin/sh
# t-palloc-run.sh: palloc-run runs a program, and palloc serves it (TAP).
# Run by `make check` from the top build folder: it runs the tools/palloc-run made there
# against the libraries in .libs (PALLOC_RUN_LIBDIR). top_builddir and PALLOC_DEFAULT_BACKEND
# may come from the environment; otherwise the current folder and config.h tell.
set -u
builddir=${top_builddir:-$PWD}
run=$builddir/tools/palloc-run
libdir=$builddir/.libs
PALLOC_RUN_LIBDIR=$libdir
export PALLOC_RUN_LIBDIR
default_backend=${PALLOC_DEFAULT_BACKEND:-$(sed -n \
  's/^#define PALLOC_DEFAULT_BACKEND "\(.*\)"$/\1/p' "$builddir/config.h" 2>/dev/null)}
if [ ! -x "$run" ] || [ -z "$default_backend" ]; then
  echo "Bail out! run me from the top build folder (no $run or no config.h there)"
  exit 99
fi
tmp=${TMPDIR:-/tmp}/t-palloc-run.$$
mkdir "$tmp" || exit 99
trap 'rm -rf "$tmp"' EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $*"; }
show() { sed 's/^/# /' "$1"; }
# CONDITION; verdict DESCRIPTION $?: ok when CONDITION held; else show the program's stderr.
verdict() {
  if [ "$2" -eq 0 ]; then ok "$1"; else not_ok "$1"; show "$tmp/err"; fi
}

echo "1..13"

# 1-2. --stats: the program runs and palloc reports, with the default backend.
"$run" --stats -- true 2>"$tmp/err"
status=$?
{ [ $status -eq 0 ]; }
verdict "--stats -- true exits 0" $?
{ grep -q "^palloc: statistics (backend $default_backend)" "$tmp/err"; }
verdict "--stats -- true: palloc prints its statistics (backend $default_backend)" $?

# 3. Without --stats palloc is silent, and the program's output is unchanged.
out=$("$run" -- sh -c 'echo hello' 2>"$tmp/err")
{ [ "$out" = hello ] && [ ! -s "$tmp/err" ]; }
verdict "-- sh -c 'echo hello': same output, nothing on stderr" $?

# 4. The program sees the library in LD_PRELOAD, ahead of what was there.
# (ld.so says on stderr that it cannot preload the made-up object, and goes on.)
out=$(LD_PRELOAD= "$run" -- sh -c 'echo "$LD_PRELOAD"' 2>"$tmp/err")
{ [ "$out" = "$libdir/libpalloc.so.0" ]; }
verdict "LD_PRELOAD is the default library ($out)" $?
out=$(LD_PRELOAD=/nonexistent/other.so "$run" -- sh -c 'echo "$LD_PRELOAD"' 2>"$tmp/err")
{ [ "$out" = "$libdir/libpalloc.so.0:/nonexistent/other.so" ]; }
verdict "an LD_PRELOAD already set comes after palloc ($out)" $?

# 5. --backend=mmap preloads the mmap variant, and palloc says so. (The report comes from
# true, which allocates: a program that never calls malloc starts no palloc, and prints none.)
out=$("$run" --backend=mmap -- sh -c 'echo "$LD_PRELOAD"' 2>"$tmp/err") &&
  "$run" --backend=mmap --stats -- true 2>>"$tmp/err"
{ [ "$out" = "$libdir/libpalloc-mmap.so.0" ] &&
  grep -q "^palloc: statistics (backend mmap)" "$tmp/err"; }
verdict "--backend=mmap preloads libpalloc-mmap.so.0 and the mmap backend serves" $?

# 6. --backend sbrk (separate value) preloads the sbrk variant, when it is built.
if [ -f "$libdir/libpalloc-sbrk.so.0" ]; then
  "$run" --backend sbrk --stats -- true 2>"$tmp/err"
  { grep -q "^palloc: statistics (backend sbrk)" "$tmp/err"; }
  verdict "--backend sbrk: the sbrk backend serves" $?
else
  skip "libpalloc-sbrk is not built"
fi

# 7. The program's exit status comes back.
"$run" -- sh -c 'exit 7' 2>"$tmp/err"
status=$?
{ [ $status -eq 7 ]; }
verdict "the program's exit status (7) comes back ($status)" $?

# 8. A program that is not found: 127.
"$run" -- ./no-such-program-here 2>"$tmp/err"
status=$?
{ [ $status -eq 127 ]; }
verdict "a missing program exits 127 ($status)" $?

# 9-10. Usage errors exit 2 with a palloc-run: message.
"$run" --backend=jemalloc -- true 2>"$tmp/err"
status=$?
{ [ $status -eq 2 ] && grep -q "^palloc-run: unknown backend 'jemalloc'" "$tmp/err"; }
verdict "--backend=jemalloc is a usage error (exit $status)" $?
"$run" --stats 2>"$tmp/err"
status=$?
{ [ $status -eq 2 ] && grep -q "^palloc-run: no program to run" "$tmp/err"; }
verdict "no program is a usage error (exit $status)" $?

# 11. --help and --version.
"$run" --help >"$tmp/out" 2>"$tmp/err" && "$run" --version >>"$tmp/out" 2>>"$tmp/err"
status=$?
{ [ $status -eq 0 ] && grep -q "^Usage: palloc-run" "$tmp/out" &&
  grep -q "^palloc-run (palloc) " "$tmp/out"; }
verdict "--help and --version exit 0 and print" $?

# 12. --trace without the tracing support (its script absent): a clear refusal (exit 2) and
# the program does not run. With the support, lttng/tests/t-trace.sh tests --trace.
PALLOC_RUN_TRACE_SH=/nonexistent/palloc-trace.sh "$run" --trace -- sh -c "touch '$tmp/ran'" 2>"$tmp/err"
status=$?
{ [ $status -eq 2 ] && [ ! -e "$tmp/ran" ] && grep -q "needs the tracing support (not built)" "$tmp/err"; }
verdict "--trace without tracing support: exit 2, a clear message, the program does not run" $?

exit $failed

