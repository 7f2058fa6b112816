#!/bin/sh
# vg-planted.sh BACKEND: run tests/valgrind/vg-planted-BACKEND (vg-planted.c, linked with
# libpalloc-BACKEND) under valgrind's memcheck twice per planted error:
#   palloc     --soname-synonyms=somalloc=NONE: palloc serves the program and describes its
#              blocks with client requests (lib/util/vg.h);
#   memcheck   plain valgrind: memcheck replaces palloc's malloc with its own (the reference).
# Each case must report, with palloc serving it, exactly what memcheck's own malloc reports (the
# error kinds, sizes, "N bytes after a block of size M", leaks, error count), and the line the
# case is planted for. The program prints how many calls palloc served: > 0 in the palloc run,
# 0 in the reference run (else the comparison would compare memcheck with itself).
# Environment: top_builddir, top_srcdir, VALGRIND (set by make check).
set -u
backend=$1
prog=$top_builddir/tests/valgrind/vg-planted-$backend
vg=${VALGRIND:-valgrind}
out=$top_builddir/tests/valgrind/out-$backend
rm -rf "$out"
mkdir -p "$out"
if [ ! -x "$prog" ]; then
  echo "Bail out! $prog was not built"
  exit 1
fi

# The lines of a memcheck log that say what was found, without pids and addresses.
findings() {
  grep -E 'Invalid (read|write|free)|Conditional jump|uninitialised value|bytes (inside|after|before) a block|definitely lost: [1-9]|indirectly lost: [1-9]|ERROR SUMMARY' "$1" |
    sed -E 's/^==[0-9]+== +//; s/0x[0-9A-Fa-f]+/ADDR/g; s/ \(suppressed:.*//'
}

served() { sed -n 's/^palloc served \([0-9]*\) calls.*/\1/p' "$1"; }

cases="leak uaf overflow underflow uninit realloc clean"
set -- $cases
echo "1..$#"
n=0
for c in $cases; do
  n=$((n + 1))
  case $c in
    leak) expect='definitely lost: 40 bytes in 1 blocks' ;;
    uaf) expect="Address ADDR is 5 bytes inside a block of size 40 free'd" ;;
    overflow) expect="Address ADDR is 0 bytes after a block of size 24 alloc'd" ;;
    underflow) expect="Address ADDR is 1 bytes before a block of size 100 alloc'd" ;;
    uninit) expect='Conditional jump or move depends on uninitialised value(s)' ;;
    realloc) expect="Address ADDR is 0 bytes after a block of size 10 alloc'd" ;;
    clean) expect='ERROR SUMMARY: 0 errors from 0 contexts' ;;
  esac
  "$vg" --leak-check=full --soname-synonyms=somalloc=NONE "$prog" "$c" >"$out/$c.palloc.log" 2>&1
  "$vg" --leak-check=full "$prog" "$c" >"$out/$c.memcheck.log" 2>&1
  findings "$out/$c.palloc.log" >"$out/$c.palloc"
  findings "$out/$c.memcheck.log" >"$out/$c.memcheck"
  by_palloc=$(served "$out/$c.palloc.log")
  by_memcheck=$(served "$out/$c.memcheck.log")
  problem=""
  [ "${by_palloc:-0}" -gt 0 ] || problem="palloc did not serve the program ($by_palloc calls)"
  [ "${by_memcheck:-1}" -eq 0 ] || problem="$problem; memcheck's own malloc did not serve the reference run"
  cmp -s "$out/$c.palloc" "$out/$c.memcheck" || problem="$problem; reports differ from memcheck's own malloc"
  grep -qF "$expect" "$out/$c.palloc" || problem="$problem; no '$expect'"
  if [ -z "$problem" ]; then
    echo "ok $n - $c ($backend): $(tr '\n' ';' <"$out/$c.palloc")"
  else
    echo "not ok $n - $c ($backend): ${problem#; }"
    echo "# palloc:"; sed 's/^/#   /' "$out/$c.palloc"
    echo "# memcheck's own malloc:"; sed 's/^/#   /' "$out/$c.memcheck"
  fi
done
