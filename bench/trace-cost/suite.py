#!/usr/bin/env python3
"""suite.py: bench/run.py's workloads with tracing compiled out, compiled in, and loaded.

    bench/trace-cost/suite.py OFF_BUILD ON_BUILD [--rounds 5] [--only churn,server]

OFF_BUILD is configured with --disable-lttng, ON_BUILD with LTTng-UST. Every workload runs
under OFF_BUILD's libpalloc.so ("out"), ON_BUILD's ("in": call sites compiled in, nothing
loaded) and ON_BUILD's with libpalloc-lttng.so preloaded and no session ("loaded"), rounds
interleaved in a shuffled order so that drift on a shared machine hits each alike. Prints the
median wall time of each and the ratios in/out and loaded/out, with their geometric means.
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("off_build")
    parser.add_argument("on_build")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="")
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
    for r in range(args.rounds):
        for name, argv, stdin in jobs:
            order = list(cases)
            random.Random(r * 7919 + len(name)).shuffle(order)
            for case, preload in order:
                elapsed, _, code, _, errors = bench.run_once(launcher, argv, stdin, preload)
                if code != 0:
                    sys.exit(f"suite: {name} ({case}) exited {code}: {errors[-300:]!r}")
                times.setdefault((name, case), []).append(elapsed)
    print(f"{'workload':16} {'out s':>8} {'in s':>8} {'loaded s':>9} {'in/out':>7} {'loaded/out':>10}")
    in_ratios, loaded_ratios = [], []
    for name, _, _ in jobs:
        out, inn, loaded = (statistics.median(times[(name, c)]) for c in ("out", "in", "loaded"))
        in_ratios.append(inn / out)
        loaded_ratios.append(loaded / out)
        print(f"{name:16} {out:8.3f} {inn:8.3f} {loaded:9.3f} {inn / out:7.3f} {loaded / out:10.3f}")
    print(f"{'geomean':16} {'':8} {'':8} {'':9} {bench.geomean(in_ratios):7.3f} "
          f"{bench.geomean(loaded_ratios):10.3f}")


if __name__ == "__main__":
    main()
