#!/bin/sh
# run.sh BUILDDIR TRACEDIR: replay every trace with each placement policy of the sbrk backend
# (replay-sbrk, the backend alone), then through malloc (replay-malloc) with glibc and with
# libpalloc-sbrk.so preloaded (front end included); prints each table, the averages of
# utilization and throughput per policy, and the total of peak RSS per allocator.
# PASSES (default 5) sets how many times each trace is replayed for the throughput figure.
set -eu
build=${1:-.}
traces=${2:-$(dirname "$0")/traces}
passes=${PASSES:-5}
table=$(mktemp)
trap 'rm -f "$table"' EXIT
summary() {
  awk 'NR > 1 { r += $NF; if ($3 != "-") { u += $3; t += $7; n++ } }
       END { if (n) printf "average: util %.3f  Mops/s %.3f  (%d traces); ", u / n, t / n, n
             printf "total peak RSS %d KiB\n", r }' "$table"
}
for fit in first next best; do
  echo "== sbrk backend, $fit fit (replay-sbrk -f $fit -n $passes)"
  "$build/bench/replay/replay-sbrk" -f "$fit" -n "$passes" "$traces"/*.rep | tee "$table"
  summary
done
echo "== glibc malloc (replay-malloc -n $passes)"
"$build/bench/replay/replay-malloc" -n "$passes" "$traces"/*.rep | tee "$table"
summary
echo "== libpalloc-sbrk.so preloaded (replay-malloc -n $passes; util: palloc's own peak)"
LD_PRELOAD="$build/.libs/libpalloc-sbrk.so" "$build/bench/replay/replay-malloc" -n "$passes" \
  "$traces"/*.rep | tee "$table"
summary
