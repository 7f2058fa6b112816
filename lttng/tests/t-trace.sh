#!/bin/sh
# t-trace.sh: palloc's LTTng-UST tracing, end to end (TAP).
#
# Runs lttng/tests/trace-known (calls of known behaviour) under real LTTng sessions, set up
# by plain lttng commands and by palloc-run --trace, reads each trace with python3-bt2
# (lttng/tests/check-trace.py) and checks that every call made appears once, in order per
# thread, with the right pointers and sizes; then real programs (python3, git) under tracing.
# Starts a session daemon when none runs, and stops it at the end (tests/lttng-daemon.sh).
# Each session has a unique name; traces go to lttng/tests/t-trace.out/ in the build tree
# (kept when a test fails).
#
# By hand, from the build folder: sh SRCDIR/lttng/tests/t-trace.sh
set -u

top_builddir=${top_builddir:-$PWD}
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
case $top_srcdir in /*) ;; *) top_srcdir=$PWD/$top_srcdir ;; esac
libs=$top_builddir/.libs
probes=$libs/libpalloc-lttng.so
known=$top_builddir/lttng/tests/trace-known
check="/usr/bin/python3 $top_srcdir/lttng/tests/check-trace.py"
out=$top_builddir/lttng/tests/t-trace.out
unset LD_PRELOAD PALLOC_STATS PALLOC_CHECK PALLOC_TRACE_STACK

echo "1..19"
. "$top_srcdir/tests/tap-sh.sh"

command -v lttng >/dev/null || bail "lttng (lttng-tools) is not installed"
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import bt2' 2>/dev/null ||
  bail "python3-bt2 is not installed (Debian's /usr/bin/python3)"
[ -f "$probes" ] || bail "$probes was not built"
. "$top_srcdir/tests/lttng-daemon.sh"
lttng_daemon_up
rm -rf "$out"
mkdir -p "$out" || bail "cannot create $out"

id=$$-$(date +%s)
session=

# session_start NAME: a session recording palloc:* with the contexts the checker reads.
session_start() {
  session=palloc-test-$1-$id
  dir=$out/$1
  lttng create "$session" --output="$dir" >/dev/null &&
    lttng enable-channel -u -s "$session" c --subbuf-size=4M --num-subbuf=8 >/dev/null &&
    lttng enable-event -u -s "$session" -c c 'palloc:*' >/dev/null &&
    lttng add-context -u -s "$session" -c c -t vpid -t vtid -t ip -t procname >/dev/null &&
    lttng start "$session" >/dev/null
}
session_stop() {
  lttng stop "$session" >/dev/null
  lttng destroy "$session" >/dev/null
}

# palloc-run --trace: the built one once it sources lttng/palloc-trace.sh; until then the
# same steps here (what palloc-run does: preload the library, start_trace, run, stop_trace).
palloc_run=$top_builddir/tools/palloc-run
grep -q palloc-trace.sh "$palloc_run" 2>/dev/null || palloc_run=
run_traced() {
  trace_dir=$1
  shift
  if [ -n "$palloc_run" ]; then
    PALLOC_RUN_LIBDIR=$libs PALLOC_RUN_TRACE_SH=$top_srcdir/lttng/palloc-trace.sh \
      "$palloc_run" --trace="$trace_dir" -- "$@"
  else
    (
      me=palloc-run lib=$libs/libpalloc.so.0 lib_dirs=$libs
      LD_PRELOAD=$lib
      export LD_PRELOAD
      . "$top_srcdir/lttng/palloc-trace.sh"
      start_trace "$trace_dir"
      "$@"
      status=$?
      stop_trace
      exit $status
    )
  fi
}

# 1-2. Every API function, the allocator preloaded or linked; plain lttng commands.
session_start preload
LD_PRELOAD="$probes $libs/libpalloc.so" "$known" calls "$out/preload.log"
session_stop
$check "$out/preload" "$out/preload.log"
verdict "all API calls, libpalloc.so preloaded, plain lttng" $?

session_start linked
LD_PRELOAD=$probes "$known" calls "$out/linked.log"
session_stop
$check "$out/linked" "$out/linked.log"
verdict "all API calls, program linked with libpalloc, probes preloaded" $?

# 3-4. Both backends.
for backend in mmap sbrk; do
  if [ ! -f "$libs/libpalloc-$backend.so" ]; then
    ok "all API calls, $backend backend # SKIP libpalloc-$backend.so not built"
    continue
  fi
  session_start "$backend"
  LD_PRELOAD="$probes $libs/libpalloc-$backend.so" "$known" calls "$out/$backend.log"
  session_stop
  $check "$out/$backend" "$out/$backend.log"
  verdict "all API calls, $backend backend (heap events from its OS calls)" $?
done

# 5. Threads: per-thread order.
session_start threads
LD_PRELOAD="$probes $libs/libpalloc.so" "$known" threads "$out/threads.log" 4 5000
session_stop
$check "$out/threads" "$out/threads.log"
verdict "4 threads x 10000 calls, each thread's calls in order" $?

# 6-7. fork, with and without liblttng-ust-fork.so.
session_start fork
LD_PRELOAD="$probes $libs/libpalloc.so" timeout 60 "$known" fork "$out/fork.log"
status=$?
session_stop
[ $status -eq 0 ] && $check "$out/fork" "$out/fork.log"
verdict "fork without liblttng-ust-fork.so: parent and child traced, no hang" $?

session_start fork2
LD_PRELOAD="$probes $libs/libpalloc.so liblttng-ust-fork.so.1" timeout 60 \
  "$known" fork "$out/fork2.log"
status=$?
session_stop
[ $status -eq 0 ] && $check "$out/fork2" "$out/fork2.log"
verdict "fork with liblttng-ust-fork.so: parent and child traced, no hang" $?

# 8. The loader allocates while it sets up thread-locals of dlopened libraries.
tls_libs=
for so in libstdc++.so.6 libblkid.so.1 libcap-ng.so.0 libbabeltrace2.so.0 libasound.so.2; do
  [ -e "/usr/lib/x86_64-linux-gnu/$so" ] && tls_libs="$tls_libs $so"
done
session_start dlopen
# shellcheck disable=SC2086
LD_PRELOAD="$probes $libs/libpalloc.so" timeout 120 "$known" dlopen "$out/dlopen.log" $tls_libs
verdict "threads allocate while libraries with thread-locals are dlopened and closed" $?
session_stop

# 9. Only the heap events enabled: still recorded (the 3 MiB block gets a mapping of its own,
#    rounded up to 64 KiB granules).
session=palloc-test-heap-$id
lttng create "$session" --output="$out/heap" >/dev/null &&
  lttng enable-event -u -s "$session" 'palloc:heap_grow,palloc:heap_shrink' >/dev/null &&
  lttng start "$session" >/dev/null
LD_PRELOAD="$probes $libs/libpalloc-mmap.so" "$known" calls "$out/heap.log"
session_stop
babeltrace2 "$out/heap" >"$out/heap.txt" 2>&1
grep -q 'palloc:heap_grow:.*len = 3[12][0-9][0-9][0-9][0-9][0-9],.*"mmap"' "$out/heap.txt" &&
  ! grep -q 'palloc:malloc' "$out/heap.txt"
verdict "only heap events enabled: the big block's mapping is recorded" $?

# 10. Probes loaded, nothing enabled: the program runs as usual.
LD_PRELOAD="$probes $libs/libpalloc.so" "$known" calls "$out/idle.log" &&
  [ "$(wc -l <"$out/idle.log")" -eq 23 ]
verdict "probes loaded, no session enabled: the program runs as usual" $?

# 11-12. palloc-run --trace.
run_traced "$out/run" "$known" calls "$out/run.log" 2>"$out/run.err"
status=$?
[ $status -eq 0 ] && grep -q "trace written to $out/run" "$out/run.err" &&
  $check "$out/run" "$out/run.log"
verdict "palloc-run --trace: all API calls, and it says where the trace is" $?

run_traced "$out/million" "$known" million "$out/million.log" 500000 2>"$out/million.err"
status=$?
[ $status -eq 0 ] && $check "$out/million" "$out/million.log" &&
  ! grep -qi discarded "$out/million.err"
verdict "palloc-run --trace: a million events, none lost" $?

# 13. --debug-info resolves the ip context to the program's function and line.
babeltrace2 --debug-info "$out/run" 2>/dev/null |
  grep "palloc:calloc" | grep -q "do_calls.*trace-known.c:"
verdict "babeltrace2 --debug-info names the calling function and line" $?

# 14-17. Real programs: the same output traced as untraced, and their calls in the trace.
real_program() {
  name=$1
  shift
  "$@" >"$out/$name.expected" 2>&1
  run_traced "$out/$name" "$@" >"$out/$name.got" 2>"$out/$name.err"
  status=$?
  cmp -s "$out/$name.expected" "$out/$name.got" && [ $status -eq 0 ] || return 1
  prog=$(basename "$1")
  # the processes named prog (by their statedump: palloc-run records no procname context)
  babeltrace2 "$out/$name" >"$out/$name.txt" 2>/dev/null
  events=$(awk -v prog="\"$prog\"" '
    /lttng_ust_statedump:procname:/ && index($0, "procname = " prog " }") {
      match($0, /vpid = [0-9]+/); named[substr($0, RSTART + 7, RLENGTH - 7)] = 1 }
    /palloc:/ { match($0, /vpid = [0-9]+/); count[substr($0, RSTART + 7, RLENGTH - 7)]++ }
    END { total = 0; for (v in named) total += count[v]; print total }' "$out/$name.txt")
  echo "# $name: $events events from $prog"
  [ "$events" -gt 100 ]
}
real_program python3 /usr/bin/python3 -c \
  'import json, collections; d = [{"k%d" % i: list(range(i % 20))} for i in range(20000)]; print(len(json.dumps(d)), collections.Counter("abracadabra").most_common(2))'
verdict "python3 under tracing: same output, its allocations traced" $?
real_program python3-subprocess /usr/bin/python3 -c \
  'import subprocess; print(subprocess.run(["sh", "-c", "echo child; ls / | wc -l"], capture_output=True, text=True).stdout)'
verdict "python3 spawning children under tracing: same output" $?
if [ -d "$top_srcdir/.git" ] || [ -f "$top_srcdir/.git" ]; then
  real_program git git -C "$top_srcdir" log --oneline -n 20
  verdict "git log under tracing: same output, its allocations traced" $?
  real_program git-grep git -C "$top_srcdir" grep -c TRACE -- lib
  verdict "git grep under tracing: same output" $?
else
  real_program sort sort "$top_srcdir/lttng/palloc-tp.h"
  verdict "sort under tracing: same output, its allocations traced # (no git checkout)" $?
  real_program ls ls -la /usr/lib
  verdict "ls under tracing: same output" $?
fi

# 18. PALLOC_TRACE_STACK: the caller and its callers with each event.
session_start stack
PALLOC_TRACE_STACK=3 LD_PRELOAD="$probes $libs/libpalloc.so" "$known" calls "$out/stack.log"
session_stop
babeltrace2 "$out/stack" 2>/dev/null | grep 'palloc:calloc.*procname = "trace-known"' |
  grep -q 'caller = \(0x[0-9A-F]*\), _stack_length = 3, stack = \[ \[0\] = \1, \[1\] = 0x'
verdict "PALLOC_TRACE_STACK=3: each event carries its caller and two callers" $?

# 19. A session started while the program runs: its calls from then on are recorded.
LD_PRELOAD="$probes $libs/libpalloc.so" "$known" late "$out/late.log" 1500 &
late_pid=$!
session_start late
wait $late_pid
status=$?
session_stop
[ $status -eq 0 ] && $check "$out/late" "$out/late.log"
verdict "a session started while the program runs records its later calls" $?

[ $failed -eq 0 ] && rm -rf "$out"
exit $failed
