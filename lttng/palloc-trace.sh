# palloc-trace.sh: the LTTng session behind `palloc-run --trace[=DIR]` (POSIX sh, sourced).
#
# Defines start_trace and stop_trace, replacing palloc-run's stubs. palloc-run calls
# start_trace DIR with LD_PRELOAD already naming the palloc library ($lib), runs the program,
# then calls stop_trace. start_trace:
#   - creates a session writing to DIR (default: ./palloc-trace-DATE-PID); `lttng create`
#     spawns a session daemon when none runs;
#   - enables palloc:* with the vpid, vtid and ip contexts, and the events that let
#     `babeltrace2 --debug-info` resolve addresses (lttng_ust_statedump:*, lttng_ust_lib:*),
#     which also name each process (lttng_ust_statedump:procname; a procname context would
#     repeat the name in every event and nearly double the time babeltrace2 takes to read it),
#     in a channel large enough, and blocking (LTTNG_UST_ALLOW_BLOCKING), so that a run of
#     millions of events loses none unless the consumer stalls for a whole second;
#   - preloads libpalloc-lttng.so (the probes), liblttng-ust-fork.so (forked children are
#     traced) and liblttng-ust-dl.so (libraries the program dlopens are resolved too).
# stop_trace stops and destroys the session (the trace stays), says where the trace is and,
# when palloc-trace is there (next to palloc-run, installed or in the build tree), prints its
# short summary of the trace on stderr (PALLOC_RUN_TRACE_SUMMARY=0: not);
# LTTng itself warns on stderr if any event was discarded.
#
# The lttng commands run without LD_PRELOAD, and not through env(1), which would be traced
# itself: only the program and its children are traced.
# PALLOC_TRACE_SUBBUF_SIZE and PALLOC_TRACE_NUM_SUBBUF override the channel's buffers.

palloc_trace_session=
palloc_trace_dir=

palloc_lttng() {
  (unset LD_PRELOAD LTTNG_UST_ALLOW_BLOCKING; exec lttng "$@" >/dev/null)
}

# palloc-trace: installed next to palloc-run, in the build tree's tools/palloc-trace/, or on
# PATH.
palloc_trace_find_report() {
  here=$(dirname "$0")
  for tool in "$here/palloc-trace" "$here/palloc-trace/palloc-trace"; do
    if [ -f "$tool" ] && [ -x "$tool" ]; then
      echo "$tool"
      return 0
    fi
  done
  command -v palloc-trace
}

# The probe library: next to the palloc library palloc-run chose, else in its library dirs.
palloc_trace_find_probes() {
  for dir in "$(dirname "${lib:-.}")" ${lib_dirs:-}; do
    if [ -f "$dir/libpalloc-lttng.so.0" ]; then
      echo "$dir/libpalloc-lttng.so.0"
      return 0
    fi
  done
  return 1
}

palloc_trace_fail() {
  echo "${me:-palloc-run}: --trace: $*" >&2
  [ -n "$palloc_trace_session" ] && palloc_lttng destroy "$palloc_trace_session" 2>/dev/null
  exit 2
}

start_trace() {
  command -v lttng >/dev/null 2>&1 || palloc_trace_fail "lttng (lttng-tools) is not installed"
  probes=$(palloc_trace_find_probes) ||
    palloc_trace_fail "libpalloc-lttng.so.0 not found (palloc built without LTTng-UST?)"
  stamp=$(date +%Y%m%d-%H%M%S)
  palloc_trace_dir=${1:-$PWD/palloc-trace-$stamp-$$}
  case $palloc_trace_dir in /*) ;; *) palloc_trace_dir=$PWD/$palloc_trace_dir ;; esac
  palloc_trace_session=palloc-run-$stamp-$$
  palloc_lttng create "$palloc_trace_session" --output="$palloc_trace_dir" ||
    palloc_trace_fail "lttng create failed"
  s="-s $palloc_trace_session"
  # shellcheck disable=SC2086
  palloc_lttng enable-channel -u $s palloc \
      --subbuf-size="${PALLOC_TRACE_SUBBUF_SIZE:-4M}" --num-subbuf="${PALLOC_TRACE_NUM_SUBBUF:-8}" \
      --blocking-timeout=1000000 &&
    palloc_lttng enable-event -u $s -c palloc 'palloc:*' &&
    palloc_lttng enable-event -u $s -c palloc 'lttng_ust_statedump:*' &&
    palloc_lttng enable-event -u $s -c palloc 'lttng_ust_lib:*' &&
    palloc_lttng add-context -u $s -c palloc -t vpid -t vtid -t ip &&
    palloc_lttng start "$palloc_trace_session" ||
    palloc_trace_fail "could not set up the LTTng session $palloc_trace_session"
  LD_PRELOAD="$probes:liblttng-ust-fork.so.1:liblttng-ust-dl.so.1${LD_PRELOAD:+:$LD_PRELOAD}"
  LTTNG_UST_ALLOW_BLOCKING=1
  export LD_PRELOAD LTTNG_UST_ALLOW_BLOCKING
}

stop_trace() {
  palloc_lttng stop "$palloc_trace_session"
  palloc_lttng destroy "$palloc_trace_session"
  echo "${me:-palloc-run}: trace written to $palloc_trace_dir (read it with: palloc-trace $palloc_trace_dir, or babeltrace2 --debug-info $palloc_trace_dir)" >&2
  [ "${PALLOC_RUN_TRACE_SUMMARY:-1}" = 0 ] && return 0
  report=$(palloc_trace_find_report) || return 0
  (unset LD_PRELOAD LTTNG_UST_ALLOW_BLOCKING; exec "$report" --summary "$palloc_trace_dir" >&2)
}
