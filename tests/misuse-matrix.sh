#!/bin/sh
# misuse-matrix.sh: the README's misuse table. Runs every program of tests/misuse_cases.c
# (tests/misuse-run CASE) under glibc, jemalloc, tcmalloc, mimalloc and palloc's two
# libraries with LD_PRELOAD, and prints a markdown table of what each allocator did:
#   caught   killed by SIGABRT with a message on stderr (palloc's: a "palloc: ..." line)
#   abort    killed by SIGABRT without a message
#   crash    killed by another signal (SIGSEGV, SIGBUS, ...) or timed out
#   silent   exited 0: the misuse went unnoticed
#   n/a      the case cannot run under this C library (free_sized is missing)
#
#   tests/misuse-matrix.sh BUILDDIR        (or: make misuse-matrix, in the build folder)
#
# PALLOC_CHECK_FREE_SIZED=1 is set for every run (it is palloc's option for that row; the
# others ignore it). A peer that is not installed is left out with a note on stderr.
set -u
builddir=${1:?usage: misuse-matrix.sh BUILDDIR}
run=$builddir/tests/misuse-run
[ -x "$run" ] || { echo "misuse-matrix.sh: $run not built (make check or make misuse-matrix)" >&2; exit 1; }
multiarch=/usr/lib/x86_64-linux-gnu
names=""
libs=""
add() { # NAME LIBRARY ('' for the C library's own malloc)
  if [ -z "$2" ] || [ -f "$2" ]; then
    names="$names $1"
    libs="$libs ${2:-none}"
  else
    echo "note: $1 not installed ($2); left out" >&2
  fi
}
add glibc ""
add jemalloc $multiarch/libjemalloc.so.2
add tcmalloc $multiarch/libtcmalloc_minimal.so.4
add mimalloc $multiarch/libmimalloc.so.2
add palloc-mmap "$builddir/.libs/libpalloc-mmap.so"
add palloc-sbrk "$builddir/.libs/libpalloc-sbrk.so"

# outcome LIB CASE: one word for what the case did under LIB.
outcome() {
  err=$(mktemp)
  if [ "$1" = none ]; then
    PALLOC_CHECK_FREE_SIZED=1 timeout 20 "$run" "$2" >/dev/null 2>"$err"
  else
    LD_PRELOAD=$1 PALLOC_CHECK_FREE_SIZED=1 timeout 20 "$run" "$2" >/dev/null 2>"$err"
  fi
  status=$?
  case $status in
    0) word=silent ;;
    77) word=n/a ;;
    134) if [ -s "$err" ]; then word=caught; else word=abort; fi ;;
    *) word=crash ;;
  esac
  rm -f "$err"
  echo "$word"
}

printf '| misuse |'
for n in $names; do printf ' %s |' "$n"; done
printf '\n|---|'
for n in $names; do printf -- '---|'; done
printf '\n'
"$run" --list | while IFS="	" read -r name label; do
  printf '| %s |' "$label"
  for lib in $libs; do
    printf ' %s |' "$(outcome "$lib" "$name")"
  done
  printf '\n'
done
