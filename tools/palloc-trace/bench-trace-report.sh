#!/bin/sh
# bench-trace-report.sh: how fast palloc-trace reads a trace (make bench-trace-report).
#
# Records a trace of 10 million events (lttng/tests/trace-known million: 5 million
# malloc/free pairs) with palloc-run --trace, then times palloc-trace on it (the full text
# report, 3 runs) and prints events per second, of wall time and of CPU time. The trace
# (about 500 MB) goes to $BENCH_TRACE_DIR (default: a folder in /tmp) and is removed at the end unless KEEP=1;
# REUSE=1 times an existing trace in $BENCH_TRACE_DIR again instead of recording one.
# Run from the build folder. PAIRS=N changes the number of pairs.
set -eu

top_builddir=${top_builddir:-$PWD}
pairs=${PAIRS:-5000000}
dir=${BENCH_TRACE_DIR:-/tmp/palloc-bench-trace-$$}
report=$top_builddir/tools/palloc-trace/palloc-trace
known=$top_builddir/lttng/tests/trace-known
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}

if [ "${REUSE:-0}" = 1 ] && [ -d "$dir" ]; then
  echo "bench-trace-report: reusing the trace in $dir"
else
  rm -rf "$dir"
  echo "bench-trace-report: recording $((2 * pairs)) events into $dir"
  PALLOC_RUN_TRACE_SUMMARY=0 PALLOC_RUN_LIBDIR=$top_builddir/.libs \
    PALLOC_RUN_TRACE_SH=$top_srcdir/lttng/palloc-trace.sh \
    "$top_builddir/tools/palloc-run" --trace="$dir" -- "$known" million /dev/null "$pairs"
fi
du -sh "$dir"

# Wall time depends on what else the shared machine runs; CPU time (user + system, the
# readers included) is the steadier figure. Both are printed; the best run of 3 counts.
best_wall= best_cpu=
for run in 1 2 3; do
  /usr/bin/time -f "%e %U %S" -o "$dir.time" "$report" "$dir" >"$dir.report.txt"
  read -r wall user sys <"$dir.time"
  cpu=$(awk "BEGIN { print $user + $sys }")
  echo "bench-trace-report: run $run: $wall s wall, $cpu s CPU"
  best_wall=$(awk "BEGIN { b = \"$best_wall\"; print (b == \"\" || $wall < b) ? $wall : b }")
  best_cpu=$(awk "BEGIN { b = \"$best_cpu\"; print (b == \"\" || $cpu < b) ? $cpu : b }")
done
events=$(sed -n 's/^palloc-trace: .*: \([0-9]*\) events.*/\1/p' "$dir.report.txt")
echo "bench-trace-report: $events events: best wall $best_wall s ($(awk "BEGIN { printf \"%.0f\", $events / $best_wall }") events/s), best CPU $best_cpu s ($(awk "BEGIN { printf \"%.0f\", $events / $best_cpu }") events/s of CPU); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
head -12 "$dir.report.txt"
[ "${KEEP:-0}" = 1 ] || rm -rf "$dir" "$dir.report.txt" "$dir.time"
