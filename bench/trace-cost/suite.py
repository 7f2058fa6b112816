#!/usr/bin/env python3
"""suite.py: bench/run.py's workloads with tracing compiled out, compiled in, and loaded.

    bench/trace-cost/suite.py OFF_BUILD ON_BUILD [--rounds 5] [--only churn,server]
    bench/trace-cost/suite.py OFF_BUILD ON_BUILD --callgrind [--only ...]

OFF_BUILD is configured with --disable-lttng, ON_BUILD with LTTng-UST. Every workload runs
under OFF_BUILD's libpalloc.so ("out"), ON_BUILD's ("in": call sites compiled in, nothing
loaded) and ON_BUILD's with libpalloc-lttng.so preloaded and no session ("loaded"), rounds
interleaved in a shuffled order so that drift on a shared machine hits each alike. Prints the
median wall time of each and the ratios in/out and loaded/out, with their geometric means.
With --callgrind, instructions executed (valgrind's callgrind, one run each) replace wall time
for the single-threaded workloads: a figure that a busy shared machine cannot blur.
"""
import argparse
import os
import random
import shutil
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import run as bench  # noqa: E402  (bench/run.py: its workload list and launcher)


# Single-threaded workloads (instruction counts are then reproducible), fast enough under
# valgrind (about 50 times slower).
CALLGRIND_JOBS = ("churn", "working_set", "realloc_grow", "large", "fragmentation",
                  "perl-hash", "sqlite3-insert")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("off_build")
    parser.add_argument("on_build")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="")
    parser.add_argument("--callgrind", action="store_true")
    args = parser.parse_args()
    workload_dir = os.path.join(args.on_build, "bench", "workloads")
    jobs = [(n, [os.path.join(workload_dir, argv[0])] + argv[1:], None)
            for n, argv, _ in bench.WORKLOADS]
    jobs += [(n, argv, stdin) for n, argv, stdin, _ in bench.REAL_PROGRAMS if shutil.which(argv[0])]
    if args.only:
        keep = set(args.only.split(","))
        jobs = [j for j in jobs if j[0] in keep]
    on_lib = os.path.join(args.on_build, ".libs", "libpalloc.so")
    cases = [("out", os.path.join(args.off_build, ".libs", "libpalloc.so")),
             ("in", on_lib),
             ("loaded", os.path.join(args.on_build, ".libs", "libpalloc-lttng.so") + " " + on_lib)]
    launcher = os.path.join(workload_dir, "measure")
    times = {}
    if args.callgrind:
        jobs = [j for j in jobs if j[0] in CALLGRIND_JOBS or args.only]
        args.rounds = 0
        for name, argv, stdin in jobs:
            for case, preload in cases:
                times[(name, case)] = [bench.callgrind_instructions(argv, preload, stdin)]
    for r in range(args.rounds):
        for name, argv, stdin in jobs:
            order = list(cases)
            random.Random(r * 7919 + len(name)).shuffle(order)
            for case, preload in order:
                elapsed, _, code, _, errors, _ = bench.run_once(launcher, argv, stdin, preload)
                if code != 0:
                    sys.exit(f"suite: {name} ({case}) exited {code}: {errors[-300:]!r}")
                times.setdefault((name, case), []).append(elapsed)
    unit = "Minstr" if args.callgrind else "s"
    scale = 1e-6 if args.callgrind else 1.0
    print(f"{'workload':16} {'out ' + unit:>11} {'in ' + unit:>11} {'loaded ' + unit:>11} "
          f"{'in/out':>8} {'loaded/out':>10}")
    in_ratios, loaded_ratios = [], []
    for name, _, _ in jobs:
        out, inn, loaded = (statistics.median(times[(name, c)]) for c in ("out", "in", "loaded"))
        in_ratios.append(inn / out)
        loaded_ratios.append(loaded / out)
        print(f"{name:16} {out * scale:11.3f} {inn * scale:11.3f} {loaded * scale:11.3f} "
              f"{inn / out:8.4f} {loaded / out:10.4f}")
    print(f"{'geomean':16} {'':11} {'':11} {'':11} {bench.geomean(in_ratios):8.4f} "
          f"{bench.geomean(loaded_ratios):10.4f}")


if __name__ == "__main__":
    main()
