#!/bin/sh
# benchtargets.sh: bench/targets.py's self-test (TAP): the targets' verdicts that bench/run.py
# prints, judged on synthetic runs whose answers are known (met, not met, round counts).
exec python3 "$top_srcdir/bench/targets.py" --self-test
