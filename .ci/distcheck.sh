#!/usr/bin/env bash
# .ci/distcheck.sh: `make distcheck` as an unprivileged user, on a copy of the tree.
#
# As root, distcheck misses tests that write into the (read-only) source folder and install
# paths hard-coded to the system: CI runs as root, so the whole of autoreconf, configure and
# distcheck runs here as nobody:nogroup (setpriv) in a copy of the tree that nobody owns.
# Installs what it needs with apt-get; ends with one line starting ".ci/distcheck.sh: PASS"
# or ".ci/distcheck.sh: FAIL", and a non-zero exit status on failure.
#
# Environment: DISTCHECK_USER (default nobody), DISTCHECK_GROUP (default nogroup),
# KEEP=1 keeps the work folder, JOBS (default 2), DISTCHECK_ARGS: more arguments for
# `make distcheck` (e.g. DISTCHECK_ARGS="TESTS='tools/t-palloc-run.sh'" for a quick try;
# CI runs the whole suite).
set -uo pipefail
cd "$(dirname "$0")/.."
me=.ci/distcheck.sh
user=${DISTCHECK_USER:-nobody}
group=${DISTCHECK_GROUP:-nogroup}
jobs=${JOBS:-2}
start=$(date +%s)

fail() {
  echo "$me: FAIL: $* ($(( $(date +%s) - start )) s)"
  exit 1
}
. .ci/lib.sh

# What autoreconf, the build and the tests need (the tests skip what is missing, but CI
# should run them all).
ci_need build-essential autoconf automake libtool pkg-config groff man-db
command -v setpriv >/dev/null || fail "setpriv (util-linux) is missing"

work=$(mktemp -d /tmp/palloc-distcheck.XXXXXX) || fail "mktemp"
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "$me: kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

ci_copy_tree "$work" || fail "copying the tree"
chown -R "$user:$group" "$work" || fail "chown $user:$group"

log=$work/distcheck.log
# The environment of a user's session: nobody's login shell is nologin, and a SHELL left
# unset gets it (bash fills SHELL in from the password file), which tests that run
# ${SHELL:-/bin/sh} then cannot use.
echo "$me: make distcheck as $user:$group in $work (log: $log)"
setpriv --reuid="$user" --regid="$group" --clear-groups \
  env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$work" TMPDIR="$work" LC_ALL=C.UTF-8 SHELL=/bin/bash \
  sh -c "cd '$work' && autoreconf -fi && mkdir build && cd build && ../configure -q &&
         make -j$jobs distcheck ${DISTCHECK_ARGS:-}" >"$log" 2>&1
status=$?
if [ $status -ne 0 ]; then
  grep -E '^(FAIL|ERROR|XPASS):' "$log" | head -20
  tail -40 "$log"
  KEEP=1
  fail "make distcheck as $user exited $status"
fi
grep -A3 'archives ready for distribution' "$log"
echo "$me: PASS: make distcheck as $user ($(( $(date +%s) - start )) s)"
