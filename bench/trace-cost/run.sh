#!/bin/sh
# run.sh: what palloc's tracing costs a malloc/free pair, in four cases (README "Tracing").
#
#   bench/trace-cost/run.sh OFF_BUILD ON_BUILD [PAIRS]
#
# OFF_BUILD is a build tree configured with --disable-lttng, ON_BUILD one with LTTng-UST (it
# has .libs/libpalloc-lttng.so). For each case it reports callgrind's instructions per pair
# (the difference between runs of PAIRS and 2*PAIRS pairs, so start-up cancels out) and the
# median wall time per pair of 5 runs of 10*PAIRS pairs:
#   compiled out           OFF_BUILD's libpalloc.so
#   compiled in, not loaded  ON_BUILD's libpalloc.so
#   loaded, not enabled    ON_BUILD's libpalloc-lttng.so preloaded too, no session
#   enabled                the same, in a session with palloc:* enabled (vpid, vtid, ip)
# Needs valgrind and lttng-tools; a session daemon it starts when none runs is stopped at the end.
set -u
off=${1:?usage: run.sh OFF_BUILD ON_BUILD [PAIRS]}
on=${2:?usage: run.sh OFF_BUILD ON_BUILD [PAIRS]}
pairs=${3:-200000}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/pairs" "$here/pairs.c" || exit 1
[ -f "$on/.libs/libpalloc-lttng.so" ] || { echo "run.sh: $on has no libpalloc-lttng.so" >&2; exit 1; }
# A session daemon: the one that answers, else one started here and stopped on exit
# (tests/lttng-daemon.sh, shared with the tracing tests).
bail() { echo "run.sh: $*" >&2; exit 1; }
. "$here/../../tests/lttng-daemon.sh"
lttng_daemon_up
trap 'lttng_daemon_down; rm -rf "$work"' EXIT

# instructions PRELOAD N: callgrind's total instruction count for `pairs N`.
instructions() {
  LD_PRELOAD="$1" valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
    "$work/pairs" "$2" >/dev/null 2>"$work/cg.err"
  sed -n 's/^summary: //p' "$work/cg.out"
}

# wall PRELOAD: median ns per pair of 5 runs.
wall() {
  for i in 1 2 3 4 5; do LD_PRELOAD="$1" "$work/pairs" $((pairs * 10)); done | sort -n | sed -n 3p
}

measure() {
  a=$(instructions "$2" "$pairs")
  b=$(instructions "$2" $((pairs * 2)))
  per_pair=$(echo "scale=2; ($b - $a) / $pairs" | bc)
  printf '%-26s %12s %12s\n' "$1" "$per_pair" "$(wall "$2")"
}

session=trace-cost-$$
printf '%-26s %12s %12s\n' case "instr/pair" "ns/pair"
measure "compiled out" "$off/.libs/libpalloc.so"
measure "compiled in, not loaded" "$on/.libs/libpalloc.so"
measure "loaded, not enabled" "$on/.libs/libpalloc-lttng.so $on/.libs/libpalloc.so"
lttng create "$session" --output="$work/trace" >/dev/null
lttng enable-channel -u -s "$session" c --subbuf-size=8M --num-subbuf=8 >/dev/null
lttng enable-event -u -s "$session" -c c 'palloc:*' >/dev/null
lttng add-context -u -s "$session" -c c -t vpid -t vtid -t ip >/dev/null
lttng start "$session" >/dev/null
measure "enabled" "$on/.libs/libpalloc-lttng.so $on/.libs/libpalloc.so"
lttng stop "$session" >/dev/null 2>&1
lttng destroy "$session" >/dev/null
