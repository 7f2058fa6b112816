#!/usr/bin/env python3
"""bench/run.py: palloc against glibc, jemalloc, tcmalloc and mimalloc, in one run.

Every workload (bench/workloads/*.c, plus real programs) runs under every allocator through
LD_PRELOAD, several rounds, interleaved (round r runs every allocator once before round r+1),
so that drift on a shared machine hits all allocators alike. For each run: wall time and peak
RSS (VmHWM, read as the program exits: see workloads/measure.c), and that peak with the pages
of the C library and the dynamic loader counted as many as under glibc: how many of them are
resident depends on where ASLR put libc (measure.c says why; a small process's peak moves by
up to 200 KiB with it), not on the allocator. Reported: medians, ratios of
each allocator against glibc, and of the default palloc backend against each peer; geometric
means; the targets' verdicts, on the medians and round by round (targets.py). glibc also runs
a second time, as allocator "glibc-again" (--no-control leaves it out): what separates glibc
from itself in the same rounds is the noise floor of every comparison with glibc, which the
verdicts quote. Writes a terminal table, a CSV of every run, a CSV of the summary and an SVG
chart (without the control).

    bench/run.py [--rounds 5] [--only churn,large] [--out bench/results] [--builddir .]
"""
import argparse
import csv
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile

from targets import CONTROL, geomean, target_lines

HERE = os.path.dirname(os.path.abspath(__file__))
MULTIARCH = "/usr/lib/x86_64-linux-gnu"

PEERS = [
    ("glibc", None),
    ("jemalloc", MULTIARCH + "/libjemalloc.so.2"),
    ("tcmalloc", MULTIARCH + "/libtcmalloc_minimal.so.4"),
    ("mimalloc", MULTIARCH + "/libmimalloc.so.2"),
]

# name, argv (relative to the workload folder for our programs), what a 2-core figure shows
WORKLOADS = [
    ("churn", ["churn"], "1 thread: small-object churn (thread cache)"),
    ("working_set", ["working_set"], "1 thread: ~150 MB live set of mixed sizes"),
    ("server", ["server", "4", "3000000"], "4 threads on 2 cores: contention, remote frees"),
    ("prodcons", ["prodcons"], "2 threads: every free remote"),
    ("false_sharing", ["false_sharing"], "2 threads: neighbouring small objects"),
    ("realloc_grow", ["realloc_grow"], "1 thread: strings grown with realloc"),
    ("large", ["large"], "1 thread: 64 KiB - 8 MiB blocks"),
    ("fragmentation", ["fragmentation"], "1 thread: many small, free most, then medium"),
    ("thread_storm", ["thread_storm"], "4 threads a wave: create/exit storm"),
]

PY_JSON = ("import json\n"
           "d = [{'k%d' % i: [str(j) * 3 for j in range(i % 30)]} for i in range(150000)]\n"
           "s = json.dumps(d)\n"
           "print(len(s), len(json.loads(s)))\n")
PERL_HASH = ('my %h; for my $r (1..3) { for my $i (1..200000) { $h{"k$i"} = "v" x ($i % 64) } '
             'for my $i (1..200000) { delete $h{"k$i"} if $i % 3 } } print scalar(keys %h), "\\n";')
SQLITE_SQL = ("create table t(a integer primary key, b text);\n"
              "with recursive n(x) as (select 1 union all select x + 1 from n where x < 300000)\n"
              "insert into t(b) select printf('%08d-%s', x, hex(randomblob(16))) from n;\n"
              "create index tb on t(b);\n"
              "select count(*), sum(length(b)) from t where b like '0001%';\n")

REAL_PROGRAMS = [
    ("python3-json", ["python3", "-c", PY_JSON], None, "python3: build, dump, load JSON"),
    ("perl-hash", ["perl", "-e", PERL_HASH], None, "perl: hash churn"),
    ("sqlite3-insert", ["sqlite3", ":memory:"], SQLITE_SQL, "sqlite3: 300k inserts and an index"),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated workload names")
    parser.add_argument("--allocators", default="", help="comma-separated allocator names")
    parser.add_argument("--builddir", default=os.path.dirname(HERE))
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=LIBRARY",
                        help="one more allocator to preload (e.g. palloc-unchecked=BUILD/.libs/"
                             "libpalloc-mmap.so of a build with -DPALLOC_MEASURE_UNCHECKED)")
    parser.add_argument("--no-control", action="store_true",
                        help=f"do not run glibc a second time ({CONTROL}: the noise floor)")
    return parser.parse_args()


def allocators(builddir, wanted, control=False):
    found = []
    for name, path in PEERS:
        if path is None or os.path.exists(path):
            found.append((name, path))
        else:
            print(f"note: {name} not installed ({path}); skipped", file=sys.stderr)
    if control:
        found.append((CONTROL, None))
    for backend in ("mmap", "sbrk"):
        path = os.path.join(builddir, ".libs", f"libpalloc-{backend}.so")
        if os.path.exists(path):
            found.append((f"palloc-{backend}", path))
        else:
            print(f"note: {path} not built; skipped", file=sys.stderr)
    if wanted:
        keep = set(wanted.split(",")) | {CONTROL}
        found = [a for a in found if a[0] in keep]
    return found


def default_backend(builddir):
    """The backend libpalloc.so carries, read from config.h."""
    try:
        with open(os.path.join(builddir, "config.h")) as header:
            if '#define PALLOC_DEFAULT_BACKEND "sbrk"' in header.read():
                return "palloc-sbrk"
    except OSError:
        pass
    return "palloc-mmap"


def run_once(measure, argv, stdin_text, preload):
    """Run argv under preload through the measure launcher: (seconds, peak RSS MiB, exit
    status, stdout, stderr, MiB of the C library's pages in the RSS at exit). The launcher
    applies LD_PRELOAD to the program only (it sets it from MEASURE_PRELOAD in the forked
    child: an `env LD_PRELOAD=...` in between would add env's own ~0.5 MiB to the peak RSS of
    every preloaded allocator, not to glibc's)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("MEASURE_PRELOAD", None)
    if preload:
        env["MEASURE_PRELOAD"] = preload
    with tempfile.NamedTemporaryFile(mode="r") as result, tempfile.TemporaryFile() as stdin_file:
        if stdin_text is not None:
            stdin_file.write(stdin_text.encode())
            stdin_file.seek(0)
        command = [measure, result.name] + argv
        child = subprocess.run(command, env=env, stdin=stdin_file, capture_output=True)
        fields = result.read().split()
    if len(fields) != 4:
        sys.exit(f"bench: the measure launcher failed: {child.stderr[-400:].decode(errors='replace')}")
    return (float(fields[0]), int(fields[1]) / 1024.0, int(fields[2]), child.stdout, child.stderr,
            int(fields[3]) / 1024.0)


def callgrind_output(argv, preload, stdin_text, read):
    """Run argv under valgrind's callgrind with preload (None: glibc) as LD_PRELOAD and return
    read(path of callgrind's output file). Valgrind runs one thread at a time; --fair-sched
    hands its lock over in turn, so that a thread busy-waiting for another (prodcons) lets the
    other run: without it, on an idle machine, prodcons 150000 spun 45 G instructions and 4
    minutes a run, against 0.13 G in a second with it."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("MEASURE_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "callgrind.out")
        subprocess.run(["valgrind", "--tool=callgrind", "--fair-sched=yes",
                        "--callgrind-out-file=" + out] + argv,
                       input=(stdin_text or "").encode(), env=env, check=True, capture_output=True)
        return read(out)


def callgrind_summary(path):
    """The Ir total of a callgrind output file."""
    with open(path) as counts:
        for line in counts:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no summary")


def callgrind_instructions(argv, preload, stdin_text=None):
    """Instructions argv executes with preload (None: glibc) as LD_PRELOAD: callgrind's Ir
    total for the whole process. Used by pair_cost.py and trace-cost/suite.py."""
    return callgrind_output(argv, preload, stdin_text, callgrind_summary)


def measure(launcher, jobs, allocs, rounds, raw_writer):
    results = {}  # (workload, allocator) -> list of (time, rss, the C library's part of rss)
    reference_output = {}
    for r in range(rounds):
        for name, argv, stdin_text, _ in jobs:
            order = list(allocs)
            random.Random(r * 7919 + len(name)).shuffle(order)
            for alloc, preload in order:
                elapsed, rss, code, output, errors, libc = run_once(launcher, argv, stdin_text,
                                                                    preload)
                if code != 0:
                    sys.exit(f"bench: {name} under {alloc} exited {code}: {errors[-400:].decode(errors='replace')}")
                if name in reference_output and output != reference_output[name]:
                    sys.exit(f"bench: {name} under {alloc} printed something else than under the others")
                reference_output.setdefault(name, output)
                results.setdefault((name, alloc), []).append((elapsed, rss, libc))
                raw_writer.writerow([r, name, alloc, f"{elapsed:.4f}", f"{rss:.4f}", f"{libc:.4f}"])
            print(f"round {r + 1}/{rounds}: {name} done", file=sys.stderr)
    return results


def summarise(jobs, allocs, results):
    """Medians per workload and allocator: time, peak RSS, and peak RSS with the C library's
    pages counted as many as under glibc (its median for the workload): the same peak without
    the pages that ASLR's placement of libc decides (measure.c), so that the allocators'
    figures differ by what they do, not by where libc landed."""
    names = [a for a, _ in allocs]
    rows = []
    for name, _, _, what in jobs:
        row = {"workload": name, "what": what}
        glibc_libc = statistics.median(c for _, _, c in results[(name, "glibc")])
        for alloc in names:
            runs = results[(name, alloc)]
            row[f"{alloc}.time"] = statistics.median(t for t, _, _ in runs)
            row[f"{alloc}.rss"] = statistics.median(m for _, m, _ in runs)
            row[f"{alloc}.rss_libc"] = statistics.median(m - c + glibc_libc for _, m, c in runs)
        rows.append(row)
    return names, rows


def print_table(names, rows, lead):
    def ratio(row, a, b, kind):
        return row[f"{a}.{kind}"] / row[f"{b}.{kind}"]

    titles = (("time", "median time (s)"), ("rss", "median rss (MiB)"),
              ("rss_libc", "median rss, libc's pages as glibc's (MiB)"))
    for kind, title in titles:
        print(f"\n{title + ', ratio to glibc':<44}" + "".join(f"{n:>20}" for n in names))
        for row in rows:
            cells = "".join(f"{row[n + '.' + kind]:>9.3f} ({ratio(row, n, 'glibc', kind):4.2f}x) "
                            for n in names)
            print(f"{row['workload']:<44}{cells}")
        means = "".join(f"{geomean([ratio(r, n, 'glibc', kind) for r in rows]):>19.3f}x" for n in names)
        print(f"{'geometric mean of ratios to glibc':<44}{means}")
    print(f"\n{lead} against each peer (median ratio; < 1 means {lead} is better):")
    for peer in names:
        if peer in (lead, CONTROL):
            continue
        t = geomean([ratio(r, lead, peer, "time") for r in rows])
        m = geomean([ratio(r, lead, peer, "rss") for r in rows])
        n = geomean([ratio(r, lead, peer, "rss_libc") for r in rows])
        slower = [r["workload"] for r in rows if ratio(r, lead, peer, "time") > 1.0]
        print(f"  vs {peer:<12} time {t:5.3f}x  rss {m:5.3f}x "
              f"({n:5.3f}x with libc's pages as glibc's)  slower on: {', '.join(slower) or 'none'}")


def write_summary_csv(path, names, rows):
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        kinds = ("time", "rss", "rss_libc")
        columns = ("time_s", "rss_mib", "rss_libc_as_glibc_mib")
        writer.writerow(["workload"] + [f"{n}.{k}" for n in names for k in columns] +
                        [f"{n}.{k}_ratio_glibc" for n in names for k in kinds])
        for row in rows:
            ratios = [row[n + '.' + k] / row['glibc.' + k] for n in names for k in kinds]
            writer.writerow([row["workload"]] +
                            [f"{row[n + '.' + k]:.4f}" for n in names for k in kinds] +
                            [f"{r:.4f}" for r in ratios])


COLOURS = ["#777777", "#d62728", "#2ca02c", "#9467bd", "#1f77b4", "#17becf", "#ff7f0e"]


def svg_panel(names, rows, kind, title, top):
    width, left, panel_height = 1000, 60, 260
    group = (width - left - 20) / len(rows)
    bar = group * 0.8 / len(names)
    ratios = [row[f"{n}.{kind}"] / row[f"glibc.{kind}"] for row in rows for n in names]
    scale_max = max(2.0, min(8.0, max(ratios) * 1.05))
    y = lambda v: top + 30 + panel_height * (1 - min(v, scale_max) / scale_max)
    parts = [f'<text x="{left}" y="{top + 18}" font-size="15" font-weight="bold">{title}</text>']
    for tick in [0.5 * i for i in range(int(scale_max / 0.5) + 1)]:
        parts.append(f'<line x1="{left}" x2="{width - 20}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                     f'stroke="{"#000" if tick == 1.0 else "#ddd"}" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end">{tick:.1f}x</text>')
    for g, row in enumerate(rows):
        x0 = left + g * group + group * 0.1
        for i, n in enumerate(names):
            v = row[f"{n}.{kind}"] / row[f"glibc.{kind}"]
            parts.append(f'<rect x="{x0 + i * bar:.1f}" y="{y(v):.1f}" width="{bar * 0.9:.1f}" '
                         f'height="{y(0) - y(v):.1f}" fill="{COLOURS[i % len(COLOURS)]}">'
                         f'<title>{row["workload"]} {n}: {v:.2f}x glibc</title></rect>')
        parts.append(f'<text x="{x0 + group * 0.4:.1f}" y="{y(0) + 14:.1f}" font-size="10" '
                     f'text-anchor="middle">{row["workload"]}</text>')
    return parts


def write_svg(path, names, rows):
    parts = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="700" font-family="sans-serif">',
             '<rect width="100%" height="100%" fill="white"/>']
    parts += svg_panel(names, rows, "time", "Wall time, ratio to glibc (lower is better)", 0)
    parts += svg_panel(names, rows, "rss", "Peak RSS, ratio to glibc (lower is better)", 330)
    for i, n in enumerate(names):
        parts.append(f'<rect x="{60 + i * 130}" y="670" width="12" height="12" fill="{COLOURS[i % len(COLOURS)]}"/>')
        parts.append(f'<text x="{76 + i * 130}" y="681" font-size="12">{n}</text>')
    parts.append("</svg>")
    with open(path, "w") as out:
        out.write("\n".join(parts) + "\n")


def main():
    args = parse_args()
    workload_dir = os.path.join(args.builddir, "bench", "workloads")
    jobs = [(n, [os.path.join(workload_dir, argv[0])] + argv[1:], None, what) for n, argv, what in WORKLOADS]
    jobs += [job for job in REAL_PROGRAMS if shutil.which(job[1][0])]
    if args.only:
        keep = set(args.only.split(","))
        jobs = [j for j in jobs if j[0] in keep]
    allocs = allocators(args.builddir, args.allocators, not args.no_control)
    allocs += [tuple(extra.split("=", 1)) for extra in args.extra]
    lead = default_backend(args.builddir)
    os.makedirs(args.out, exist_ok=True)
    print(f"bench: {len(jobs)} workloads x {len(allocs)} allocators x {args.rounds} rounds, "
          f"on {os.cpu_count()} cores", file=sys.stderr)
    with open(os.path.join(args.out, "runs.csv"), "w", newline="") as raw:
        writer = csv.writer(raw)
        writer.writerow(["round", "workload", "allocator", "time_s", "rss_mib", "libc_rss_mib"])
        results = measure(os.path.join(workload_dir, "measure"), jobs, allocs, args.rounds, writer)
    names, rows = summarise(jobs, allocs, results)
    print_table(names, rows, lead if lead in names else names[-1])
    print()
    print("\n".join(target_lines(rows, results, names, lead)))
    write_summary_csv(os.path.join(args.out, "summary.csv"), names, rows)
    write_svg(os.path.join(args.out, "chart.svg"), [n for n in names if n != CONTROL], rows)
    print(f"\nwritten: {args.out}/runs.csv, summary.csv, chart.svg")


if __name__ == "__main__":
    main()
