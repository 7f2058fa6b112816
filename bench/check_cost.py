#!/usr/bin/env python3
"""bench/check_cost.py: what palloc's default checks cost, in instructions, per workload.

The default checks (check bits in every tag, the thread caches' key word, the
free fast path's pointer validation; backends/backend.h, HARDEN_DEFAULT_CHECKS) are compiled
out of a second build configured with CPPFLAGS=-DPALLOC_MEASURE_UNCHECKED, which exists only for
this measurement. Every bench/ workload (scaled down, so that callgrind takes minutes, not
hours) and the three real programs of bench/run.py run under valgrind's callgrind with each
build's library preloaded; the table gives both instruction totals (the whole process: the
program's own work counts, as it does in wall time) and their ratio, then the geometric mean of
the ratios. Instruction counts do not depend on the machine's load, unlike bench/run.py's wall
times; multi-threaded workloads vary a little with scheduling (spinning on a lock). prodcons
busy-waits in the program itself, so its total depends on how valgrind schedules the two
threads (run.callgrind_output's --fair-sched keeps it near 0.13 G; without it, from 0.2 G on a
busy machine to 45 G on an idle one); for it, the program's side (every instruction outside
palloc's library) is taken as the smallest of the runs' counts, to which each build's own
instructions are added (marked "spin-corrected" in the table), and each build runs it
SPIN_RUNS times, keeping its run of fewest instructions.
With --backend sbrk, a workload whose heap passes 8 MiB is not measured as it runs natively:
valgrind gives a program about 8 MiB of break, so the sbrk backend goes on in regions of its
own past that, whose blocks take the free slow path with the checks on (backend_tag_readable
covers the top region only) and the fast path without: working_set 40000 2 showed +27.6%,
mostly 43,000 frees that took the slow path under valgrind and the fast path natively.

    bench/check_cost.py --checked BUILD --unchecked BUILD_UNCHECKED [--backend mmap|sbrk]
                        [--only churn,large]

BUILD must hold the built workloads (make bench builds them; or make bench/workloads/churn ...).
"""
import argparse
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (callgrind_output: the one valgrind runner of bench/)

# name, argv (workload programs relative to BUILD/bench/workloads), stdin
PY_JSON = ("import json\n"
           "d = [{'k%d' % i: [str(j) * 3 for j in range(i % 30)]} for i in range(15000)]\n"
           "s = json.dumps(d)\n"
           "print(len(s), len(json.loads(s)))\n")
PERL_HASH = ('my %h; for my $r (1..2) { for my $i (1..50000) { $h{"k$i"} = "v" x ($i % 64) } '
             'for my $i (1..50000) { delete $h{"k$i"} if $i % 3 } } print scalar(keys %h), "\\n";')
SQLITE_SQL = ("create table t(a integer primary key, b text);\n"
              "with recursive n(x) as (select 1 union all select x + 1 from n where x < 30000)\n"
              "insert into t(b) select printf('%08d-%s', x, hex(randomblob(16))) from n;\n"
              "create index tb on t(b);\n"
              "select count(*), sum(length(b)) from t where b like '0001%';\n")
# Workloads whose program busy-waits (see above), and how many runs each build gets.
SPINNING = {"prodcons"}
SPIN_RUNS = 3
JOBS = [
    ("churn", ["@churn", "2000000"], None),
    ("working_set", ["@working_set", "40000", "2"], None),
    ("server", ["@server", "4", "300000"], None),
    ("prodcons", ["@prodcons", "150000"], None),
    ("false_sharing", ["@false_sharing", "2", "2000", "2000"], None),
    ("realloc_grow", ["@realloc_grow", "500", "2"], None),
    ("large", ["@large", "600"], None),
    ("fragmentation", ["@fragmentation", "150000", "2"], None),
    ("thread_storm", ["@thread_storm", "150", "4"], None),
    ("python3-json", ["python3", "-c", PY_JSON], None),
    ("perl-hash", ["perl", "-e", PERL_HASH], None),
    ("sqlite3-insert", ["sqlite3", ":memory:"], SQLITE_SQL),
]


def self_cost_by_object(path):
    """Instructions executed in each object's own code (callees' excluded), from a callgrind
    output file: {object path: Ir}."""
    names, costs = {}, {}
    current, skip_call_cost = None, False
    with open(path) as counts:
        for line in counts:
            if line[0].isdigit() or line[0] in "+-*":
                fields = line.split()
                if skip_call_cost:  # the line after calls= is the callee's inclusive cost
                    skip_call_cost = False
                elif len(fields) > 1:
                    costs[current] = costs.get(current, 0) + int(fields[1])
                continue
            match = re.match(r"(c?ob)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if match:
                if match.group(3):
                    names[match.group(2)] = match.group(3)
                if match.group(1) == "ob":
                    current = names.get(match.group(2))
            elif line.startswith("calls="):
                skip_call_cost = True
    return costs


def instructions_split(argv, preload, stdin_text):
    """(whole-process instructions, instructions in preload's own code) under callgrind."""
    costs = run.callgrind_output(argv, preload, stdin_text, self_cost_by_object)
    real = os.path.realpath(preload)
    own = sum(v for k, v in costs.items() if k and os.path.realpath(k) == real)
    return sum(costs.values()), own


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checked", required=True, help="build folder of the normal build")
    parser.add_argument("--unchecked", required=True,
                        help="build folder configured with CPPFLAGS=-DPALLOC_MEASURE_UNCHECKED")
    parser.add_argument("--backend", default="mmap", choices=["mmap", "sbrk"])
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    workloads = os.path.join(args.checked, "bench", "workloads")
    libs = [os.path.join(b, ".libs", f"libpalloc-{args.backend}.so")
            for b in (args.checked, args.unchecked)]
    for lib in libs:
        if not os.path.exists(lib):
            sys.exit(f"check_cost: {lib} not built")
    wanted = set(args.only.split(",")) if args.only else None
    ratios = []
    print(f"| workload ({args.backend}) | instructions, checks compiled out | with the default checks | cost |")
    print("|---|---|---|---|")
    for name, argv, stdin_text in JOBS:
        if wanted and name not in wanted:
            continue
        argv = [os.path.join(workloads, a[1:]) if a.startswith("@") else a for a in argv]
        runs = SPIN_RUNS if name in SPINNING else 1
        unchecked, unchecked_own = min(instructions_split(argv, libs[1], stdin_text)
                                       for _ in range(runs))
        checked, checked_own = min(instructions_split(argv, libs[0], stdin_text)
                                   for _ in range(runs))
        label = name
        if name in SPINNING:
            program = min(unchecked - unchecked_own, checked - checked_own)
            unchecked, checked = program + unchecked_own, program + checked_own
            label += " (spin-corrected)"
        ratios.append(checked / unchecked)
        print(f"| {label} | {unchecked / 1e6:.1f} M | {checked / 1e6:.1f} M | "
              f"{(checked / unchecked - 1) * 100:+.2f}% |", flush=True)
    mean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"| geometric mean | | | {(mean - 1) * 100:+.2f}% |")


if __name__ == "__main__":
    main()
