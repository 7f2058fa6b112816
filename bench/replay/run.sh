#!/bin/sh
# run.sh BUILDDIR TRACEDIR: replay every trace with each placement policy of the sbrk backend
# (replay-sbrk), then through malloc (replay-malloc) with glibc and with libpalloc-sbrk.so
# preloaded; prints the tables and the average utilization per policy.
set -eu
build=${1:-.}
traces=${2:-$(dirname "$0")/traces}
passes=${PASSES:-5}
average() { awk 'NR > 1 && $3 != "-" { u += $3; b += $4; t += $7; n++ } END { if (n) printf "average: util %.3f  bound %.3f  Mops/s %.3f  (%d traces)\n", u / n, b / n, t / n, n }'; }
for fit in first next best; do
  echo "== sbrk backend, $fit fit (replay-sbrk -f $fit -n $passes)"
  "$build/bench/replay/replay-sbrk" -f "$fit" -n "$passes" "$traces"/*.rep | tee /tmp/replay.$$
  average < /tmp/replay.$$
done
echo "== glibc malloc (replay-malloc)"
"$build/bench/replay/replay-malloc" -n "$passes" "$traces"/*.rep
echo "== libpalloc-sbrk.so preloaded (replay-malloc, default policy)"
LD_PRELOAD="$build/.libs/libpalloc-sbrk.so" "$build/bench/replay/replay-malloc" -n "$passes" "$traces"/*.rep
rm -f /tmp/replay.$$
