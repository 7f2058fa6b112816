#!/bin/sh
# run-fuzz.sh BACKEND: run the libFuzzer harness tests/fuzz/fuzz-ops-BACKEND (fuzz-ops.c) for a
# bounded time and print TAP. Called by tests/run-test.sh for tests/v/fuzz-ops.LIB.fuzz.tap
# (make check, FUZZ_TIME seconds per backend, default 20) and by `make fuzz` (FUZZ_TIME, default
# 600, with FUZZ_CORPUS naming a corpus folder kept between runs).
# Environment: top_builddir, top_srcdir (set by make), FUZZ_TIME, FUZZ_CORPUS.
set -u
backend=$1
prog=$top_builddir/tests/fuzz/fuzz-ops-$backend
seeds=$top_srcdir/tests/fuzz/corpus
time=${FUZZ_TIME:-20}
out=$top_builddir/tests/fuzz/out-$backend
work=${FUZZ_CORPUS:-$out/corpus}
if [ ! -x "$prog" ]; then
  echo "Bail out! $prog was not built (configure found no clang with -fsanitize=fuzzer)"
  exit 1
fi
rm -rf "$out"
mkdir -p "$out" "$work"
echo "1..3"

# 1. The seed corpus, then fuzzing for $time seconds: no input may break a rule of the model.
# New inputs go to the first folder ($work); the committed seeds are only read.
"$prog" -max_total_time="$time" -timeout=30 -rss_limit_mb=4096 -max_len=2048 \
  -artifact_prefix="$out/" -print_final_stats=1 "$work" "$seeds" >"$out/log" 2>&1
status=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log")
tail -n 15 "$out/log" | sed 's/^/# /'
if [ $status -eq 0 ]; then
  echo "ok 1 - fuzz-ops-$backend: seeds and ${time} s of fuzzing, every rule of the model held"
else
  echo "not ok 1 - fuzz-ops-$backend: exit $status; the failing input is in $out/ (crash-*)"
fi

# 2. It did run: more inputs than the seeds (a harness that stops early proves nothing).
nseeds=$(ls "$seeds" | wc -l)
if [ "${runs:-0}" -gt "$nseeds" ]; then
  echo "ok 2 - fuzz-ops-$backend: $runs inputs executed"
else
  echo "not ok 2 - fuzz-ops-$backend: only ${runs:-0} inputs executed"
fi

# 3. The harness's checks can fail: with one byte of a live block overwritten behind the
# model's back (FUZZ_OPS_SELFTEST), the seed that fills every slot must abort with its message.
FUZZ_OPS_SELFTEST=1 "$prog" -runs=1 "$seeds/fill-and-flush" >"$out/selftest.log" 2>&1
status=$?
if [ $status -ne 0 ] && grep -q '^fuzz-ops: op [0-9]*: block lost its contents' "$out/selftest.log"; then
  echo "ok 3 - fuzz-ops-$backend: a planted overwrite is caught (block lost its contents)"
else
  echo "not ok 3 - fuzz-ops-$backend: planted overwrite not caught (exit $status)"
  tail -n 5 "$out/selftest.log" | sed 's/^/# /'
fi
