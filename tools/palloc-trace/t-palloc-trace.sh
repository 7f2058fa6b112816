#!/bin/sh
# t-palloc-trace.sh: palloc-trace on real traces (TAP).
#
# Traces tools/palloc-trace/planted with palloc-run --trace (a real LTTng session; a session
# daemon is started when none runs, and stopped at the end: tests/lttng-daemon.sh) and checks
# that palloc-trace reports exactly the leaks, peak, temporaries, callers (function, file and
# line, from the MARK comments of planted.c) and misuse planted there, in text, JSON and SVG;
# then that bad input (missing, empty, truncated, non-palloc trace folders) gives one line on
# stderr and exit status 1.
# Traces go to tools/palloc-trace/t-palloc-trace.out/ in the build tree (kept when a test
# fails). A session records the programs of every session of the user that enable palloc:*
# events (LTTng's per-user buffers), so the checks look at planted's own processes and
# callers.
#
# By hand, from the build folder: sh SRCDIR/tools/palloc-trace/t-palloc-trace.sh
set -u

top_builddir=${top_builddir:-$PWD}
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
case $top_srcdir in /*) ;; *) top_srcdir=$PWD/$top_srcdir ;; esac
libs=$top_builddir/.libs
report=$top_builddir/tools/palloc-trace/palloc-trace
planted=$top_builddir/tools/palloc-trace/planted
source=$top_srcdir/tools/palloc-trace/planted.c
out=$top_builddir/tools/palloc-trace/t-palloc-trace.out
python=/usr/bin/python3
unset LD_PRELOAD PALLOC_STATS PALLOC_CHECK PALLOC_TRACE_STACK PALLOC_RUN_TRACE_SUMMARY

echo "1..17"
. "$top_srcdir/tests/tap-sh.sh"

command -v lttng >/dev/null || bail "lttng (lttng-tools) is not installed"
[ -x "$python" ] || bail "$python is missing"
[ -x "$report" ] || bail "$report was not built"
[ -x "$planted" ] || bail "$planted was not built"
. "$top_srcdir/tests/lttng-daemon.sh"
lttng_daemon_up
rm -rf "$out"
mkdir -p "$out" || bail "cannot create $out"

line_of() { grep -n "MARK $1 \*/" "$source" | cut -d: -f1; }
traced() {
  dir=$1
  shift
  PALLOC_RUN_LIBDIR=$libs PALLOC_RUN_TRACE_SH=$top_srcdir/lttng/palloc-trace.sh \
    "$top_builddir/tools/palloc-run" --trace="$dir" -- "$@"
}

# 1. palloc-run --trace prints palloc-trace's summary when the program ends.
PLANTED_PIDS=$out/planted.pids traced "$out/planted" "$planted" >"$out/run.out" 2>"$out/run.err"
status=$?
[ $status -eq 0 ] && grep -q "^palloc-trace: $out/planted: " "$out/run.err" &&
  grep -q "peak live: *[0-9]* bytes" "$out/run.err" && grep -q "leak_big at" "$out/run.err"
verdict "palloc-run --trace prints the short summary when the program ends" $?
sed 's/^/# /' "$out/run.err"

# 2-7. The numbers, from --json (python3 -c json).
"$report" --json --top=1000 "$out/planted" >"$out/planted.json" 2>"$out/json.err"
json_status=$?
check_json() {
  LINES_SMALL=$(line_of leak_small) LINE_BIG=$(line_of leak_big) \
  LINE_REALLOC=$(line_of leak_realloc) LINE_PEAK=$(line_of peak) \
  LINE_TEMP=$(line_of temporary) LINE_PAIR1=$(line_of pair_first) \
  LINE_PAIR2=$(line_of pair_second) LINE_CHILD=$(line_of leak_in_child) \
  LINE_CHILD2=$(line_of leak_in_child_2) \
    "$python" -c "$1" "$out/planted.json" "$out/planted.pids"
}
JSON_COMMON='
import json, os, sys
d = json.load(open(sys.argv[1]))
env = {k: int(v) for k, v in os.environ.items() if k.startswith("LINE")}
pids = [int(line) for line in open(sys.argv[2])]
def mine(rows):
    return [r for r in rows if (r["file"] or "").endswith("planted.c") and r["vpid"] in pids]
def at(rows, line):
    found = [r for r in mine(rows) if r["line"] == env[line]]
    assert len(found) == 1, (line, found)
    return found[0]
by_vpid = {p["vpid"]: p for p in d["processes"]}
assert len(pids) == 2 and all(by_vpid[pid]["procname"] == "planted" for pid in pids), pids
main, child = by_vpid[pids[0]], by_vpid[pids[1]]
'
[ $json_status -eq 0 ] && [ ! -s "$out/json.err" ] && check_json "$JSON_COMMON
for key in ('leaked_blocks', 'leaked_bytes', 'peak_live_bytes'):
    assert isinstance(d[key], int), key
assert isinstance(d['calls'], dict) and d['calls']['malloc'] > 0 and 'free' in d['calls']
assert d['leaked_bytes'] == sum(p['leaked_bytes'] for p in d['processes'])
"
verdict "--json: top-level leaked_blocks, leaked_bytes, peak_live_bytes, calls by function" $?

check_json "$JSON_COMMON
leaks = d['leaks']
# The process's totals may also hold what LTTng-UST's own threads allocated once tracing began
# (a 64 KiB buffer, depending on timing); the planted leaks are exact.
planted = [r for r in mine(leaks) if r['vpid'] == pids[0]]
assert sum(r['leaked_blocks'] for r in planted) == 7, planted
assert sum(r['leaked_bytes'] for r in planted) == 7596, planted
assert main['leaked_blocks'] >= 7 and main['leaked_bytes'] >= 7596, main
small = at(leaks, 'LINES_SMALL')
assert (small['function'], small['leaked_blocks'], small['leaked_bytes']) == ('leak_small', 5, 500), small
big = at(leaks, 'LINE_BIG')
assert (big['function'], big['leaked_blocks'], big['leaked_bytes']) == ('leak_big', 1, 4096), big
grown = at(leaks, 'LINE_REALLOC')
assert (grown['function'], grown['leaked_blocks'], grown['leaked_bytes']) == ('leak_realloc', 1, 3000), grown
assert len(mine(leaks)) == 5, mine(leaks)
order = [r['leaked_bytes'] for r in leaks]
assert order == sorted(order, reverse=True)
"
verdict "leaks: 7 blocks, 7596 bytes, by caller with function and planted.c line, largest first" $?

check_json "$JSON_COMMON
assert main['peak_live_bytes'] == 7596 + 3 * 1048576, main['peak_live_bytes']
assert d['peak_live_bytes'] >= main['peak_live_bytes'], d['peak_live_bytes']  # other sessions' programs may add
assert main['peak_heap_bytes'] >= main['peak_live_bytes']
"
verdict "peak live bytes: exactly 7596 + 3 MiB" $?

check_json "$JSON_COMMON
temps = d['temporaries']
t = at(temps, 'LINE_TEMP')
assert (t['function'], t['temporaries'], t['allocations']) == ('make_temporaries', 7, 7), t
p2 = at(temps, 'LINE_PAIR2')
assert (p2['function'], p2['temporaries']) == ('make_pair', 1), p2
p3 = at(temps, 'LINE_PEAK')
assert (p3['function'], p3['temporaries'], p3['allocations']) == ('make_peak', 1, 3), p3
assert sum(r['temporaries'] for r in mine(temps)) == 9, mine(temps)
"
verdict "temporary allocations: 7 from make_temporaries, 1 each from make_pair and make_peak" $?

check_json "$JSON_COMMON
hot = mine(d['hot_by_bytes'])
top = hot[0]
assert (top['function'], top['line'], top['bytes'], top['allocations']) == ('make_peak', env['LINE_PEAK'], 3 * 1048576, 3), top
calls = at(d['hot_by_calls'], 'LINES_SMALL')
assert calls['allocations'] == 5, calls
mib = [b for b in d['size_histogram'] if b['min'] == 1048576]
assert len(mib) == 1 and mib[0]['count'] >= 3, mib
assert sum(b['count'] for b in d['size_histogram']) == d['allocations']
assert sum(b['count'] for b in d['lifetime_histogram_ns']) > 0
"
verdict "hot spots by bytes and by calls, size histogram" $?

check_json "$JSON_COMMON
assert child['vpid'] != main['vpid']
rows = [r for r in mine(d['leaks']) if r['vpid'] == child['vpid']]
# Exact for the planted leaks; LTTng-UST may allocate in the forked child too (seen under load).
assert sum(r['leaked_blocks'] for r in rows) == 2 and sum(r['leaked_bytes'] for r in rows) == 1554, rows
assert child['leaked_blocks'] >= 2 and child['leaked_bytes'] >= 1554, child
assert sorted(r['line'] for r in rows) == sorted([env['LINE_CHILD'], env['LINE_CHILD2']]), rows
assert all(r['function'] == 'leak_in_child' for r in rows), rows
assert main['threads'] and child['threads']
"
verdict "per process: the forked child's own 2 x 777 bytes leaked under its vpid" $?

# 8. The text report.
"$report" --top=1000 "$out/planted" >"$out/planted.txt" 2>"$out/text.err"
status=$?
main_pid=$(head -1 "$out/planted.pids")
[ $status -eq 0 ] && [ ! -s "$out/text.err" ] &&
  grep -q "^Leaks: blocks live at the end, by caller" "$out/planted.txt" &&
  grep -q "500 bytes *5 blocks  vpid $main_pid  leak_small at .*planted.c:$(line_of leak_small) " \
    "$out/planted.txt" &&
  grep -q "^Request sizes" "$out/planted.txt" && grep -q "^Lifetimes" "$out/planted.txt" &&
  grep -q "^Hot spots: callers by allocations" "$out/planted.txt"
verdict "text report: leaks with function and line, hot spots, histograms" $?

# 9. --svg: parses as XML, an svg root with the two series.
"$report" --summary --svg="$out/planted.svg" "$out/planted" >/dev/null 2>"$out/svg.err"
status=$?
[ $status -eq 0 ] && "$python" -c '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
lines = root.findall("{http://www.w3.org/2000/svg}polyline")
assert len(lines) == 2 and all(len(l.get("points").split()) >= 2 for l in lines)
' "$out/planted.svg"
verdict "--svg writes a chart that parses as XML" $?

# 10. Misuse: a double free and a free of a pointer never allocated, each in its own child.
PLANTED_PIDS=$out/misuse.pids traced "$out/misuse" "$planted" misuse >/dev/null 2>"$out/misuse.err"
"$report" --json --top=1000 "$out/misuse" >"$out/misuse.json" 2>>"$out/misuse.err" &&
  LINE_SECOND=$(line_of double_free_second) LINE_FIRST=$(line_of double_free_first) \
  LINE_UNKNOWN=$(line_of free_unknown) "$python" -c '
import json, os, sys
d = json.load(open(sys.argv[1]))
pids = [int(line) for line in open(sys.argv[2])]
mine = [m for m in d["misuse"] if (m["file"] or "").endswith("planted.c") and m["vpid"] in pids]
doubles = [m for m in mine if m["kind"] == "double_free"]
unknown = [m for m in mine if m["kind"] == "unknown_free"]
assert len(doubles) == 1 and len(unknown) == 1, mine
assert doubles[0]["line"] == int(os.environ["LINE_SECOND"]), doubles
assert doubles[0]["first_freed_by"]["line"] == int(os.environ["LINE_FIRST"]), doubles
assert unknown[0]["line"] == int(os.environ["LINE_UNKNOWN"]) and unknown[0]["function"] == "free_unknown"
assert doubles[0]["vpid"] != unknown[0]["vpid"]
assert sorted([doubles[0]["vpid"], unknown[0]["vpid"]]) == sorted(pids[1:]), pids
' "$out/misuse.json" "$out/misuse.pids"
verdict "misuse: the double free (and where it was first freed) and the unknown free" $?

# 11. Several readers (one process per share of the streams, merged by time) report what
# one reader does.
PALLOC_TRACE_READERS=1 "$report" --json "$out/misuse" >"$out/readers-1.json" &&
  PALLOC_TRACE_READERS=3 "$report" --json "$out/misuse" >"$out/readers-3.json" &&
  PALLOC_TRACE_READERS=1 "$report" --json "$out/planted" >"$out/planted-1.json" &&
  PALLOC_TRACE_READERS=2 "$report" --json "$out/planted" >"$out/planted-2.json" &&
  cmp -s "$out/readers-1.json" "$out/readers-3.json" &&
  cmp -s "$out/planted-1.json" "$out/planted-2.json"
verdict "the same report from one reader and from several merged" $?

# 12-17. Bad input: one line on stderr, exit status 1, no crash.
bad_input() {
  what=$1
  shift
  "$report" "$@" >"$out/bad.out" 2>"$out/bad.err"
  status=$?
  lines=$(wc -l <"$out/bad.err")
  echo "# $what: status $status: $(cat "$out/bad.err")"
  [ $status -eq 1 ] && [ "$lines" -eq 1 ] && grep -q "^palloc-trace: " "$out/bad.err" &&
    [ ! -s "$out/bad.out" ]
}
bad_input "missing" "$out/no-such-trace"
verdict "bad input: a missing folder" $?

mkdir -p "$out/empty"
bad_input "empty" "$out/empty"
verdict "bad input: an empty folder" $?

cp -r "$out/planted" "$out/truncated"
stream=$(find "$out/truncated" -type f -name 'palloc_*' -size +1k | head -1)
size=$(wc -c <"$stream")
truncate -s $((size / 2 + 13)) "$stream"
bad_input "truncated" "$out/truncated"
verdict "bad input: a truncated stream file" $?

cp -r "$out/planted" "$out/bad-metadata"
metadata=$(find "$out/bad-metadata" -name metadata | head -1)
truncate -s 100 "$metadata"
bad_input "truncated metadata" "$out/bad-metadata"
verdict "bad input: a truncated metadata file" $?

# A real LTTng trace without palloc events: only the statedump of a traced program.
session=palloc-trace-test-$$-$(date +%s)
lttng create "$session" --output="$out/other" >/dev/null &&
  lttng enable-event -u -s "$session" 'lttng_ust_statedump:*' >/dev/null &&
  lttng start "$session" >/dev/null &&
  LD_PRELOAD="$libs/libpalloc-lttng.so $libs/libpalloc.so" "$planted" &&
  lttng stop "$session" >/dev/null && lttng destroy "$session" >/dev/null
[ -d "$out/other" ] && bad_input "not palloc" "$out/other" && grep -q "no palloc events" "$out/bad.err"
verdict "bad input: an LTTng trace without palloc events" $?

"$report" >/dev/null 2>"$out/usage.err"
status=$?
"$report" --help | grep -q "^Usage: palloc-trace" && [ $status -eq 2 ]
verdict "usage: no folder is a usage error (2); --help" $?

# The traces are kept when a test failed.
[ $failed -eq 0 ] && rm -rf "$out"
exit $failed
