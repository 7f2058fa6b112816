#!/usr/bin/env python3
"""bench/pair_cost.py: what one cached malloc/free pair costs under each allocator.

For every allocator bench/run.py knows (glibc, the peers that are installed, both palloc
backends), runs bench/trace-cost/pairs.c's loop of small malloc/free pairs (16..256 bytes,
each malloc paired with the free of the block allocated LIVE pairs earlier: a thread's
steady state; with LIVE = 0 mimalloc empties and refills its pages every pair, ~1800
instructions, which says nothing about its cached path):
  instructions per pair  callgrind's count for 2N pairs minus its count for N pairs, over N
                         (start-up cancels out; the count does not drift on a noisy machine)
  ns per pair            the median of 5 runs of 10N pairs, wall time
and prints a table, also written to OUT/pairs.csv. Needs valgrind for the first column.
Usage: pair_cost.py --builddir BUILD [--out DIR] [--pairs N]
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402  (the allocator list and the preload paths)

LIVE = 64


def compile_pairs(workdir):
    binary = os.path.join(workdir, "pairs")
    subprocess.run(["cc", "-O2", "-o", binary, os.path.join(HERE, "trace-cost", "pairs.c")], check=True)
    return binary


def preload_env(preload):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    return env


def instructions(binary, preload, pairs):
    return run.callgrind_instructions([binary, str(pairs), str(LIVE)], preload)


def ns_per_pair(binary, preload, pairs):
    runs = [float(subprocess.run([binary, str(pairs * 10), str(LIVE)], env=preload_env(preload), check=True,
                                 capture_output=True, text=True).stdout) for _ in range(5)]
    return statistics.median(runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builddir", required=True)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--pairs", type=int, default=200000)
    args = parser.parse_args()
    have_valgrind = shutil.which("valgrind") is not None
    if not have_valgrind:
        print("note: valgrind not installed; instruction counts skipped", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        binary = compile_pairs(workdir)
        for name, preload in run.allocators(args.builddir, ""):
            count = None
            if have_valgrind:
                count = (instructions(binary, preload, 2 * args.pairs) -
                         instructions(binary, preload, args.pairs)) / args.pairs
            rows.append((name, count, ns_per_pair(binary, preload, args.pairs)))
    print(f"\ncached malloc/free pair (16..256 bytes, {LIVE} live, one thread)  {'instructions':>12}  {'ns':>8}")
    for name, count, ns in rows:
        shown = f"{count:.1f}" if count is not None else "-"
        print(f"  {name:<58} {shown:>12}  {ns:>8.2f}")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "pairs.csv"), "w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(["allocator", "instructions_per_pair", "ns_per_pair"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
