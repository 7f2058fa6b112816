#!/bin/sh
# run-test.sh: run one variant of palloc's tests; the TAP driver calls it with the test's name,
# .../tests/v/AREA.LIB.MODE.tap (tests/Makemodule.am lists them):
#   AREA  a C test area (argv[1] of tests/palloc-tests) or a script tests/AREA.sh
#   LIB   libpalloc-mmap, libpalloc-sbrk or libpalloc (the configured default backend)
#   MODE  linked (tests/palloc-tests-LIB), preload (tests/palloc-tests under LD_PRELOAD), unit
#         (the backend's own test, backends/BACKEND/test_BACKEND_backend), os (backends/os.c's
#         own test, backends/test_os) or
#         script (tests/AREA.sh LIB), fuzz (tests/fuzz/run-fuzz.sh BACKEND) or valgrind
#         (tests/valgrind/vg-planted.sh BACKEND)
# Environment (set by make check): top_builddir, top_srcdir, PALLOC_DEFAULT_BACKEND, and
# PALLOC_TEST_UNDER_VALGRIND=1 with VALGRIND for make check-valgrind.
# By hand, from the build folder:
#   top_builddir=$PWD top_srcdir=/path/to/src PALLOC_DEFAULT_BACKEND=mmap \
#     sh /path/to/src/tests/run-test.sh tests/v/api.libpalloc-mmap.preload.tap
set -u
name=$(basename "$1" .tap)
area=${name%%.*}
rest=${name#*.}
lib=${rest%%.*}
mode=${rest#*.}
case $lib in
  libpalloc) backend=${PALLOC_DEFAULT_BACKEND:?} ;;
  libpalloc-*) backend=${lib#libpalloc-} ;;
  *) echo "Bail out! $1: no library in the test name"; exit 1 ;;
esac
so=$top_builddir/.libs/$lib.so
if [ ! -f "$so" ]; then
  echo "Bail out! $so was not built"
  exit 1
fi
PALLOC_TEST_BACKEND=$backend
PALLOC_TEST_MODE=$mode
PALLOC_TEST_LIB=$so
export PALLOC_TEST_BACKEND PALLOC_TEST_MODE PALLOC_TEST_LIB
unset PALLOC_STATS PALLOC_CHECK

# A hang is a failure, not a stuck build: every test has a deadline (longer for make stress).
limit=$((300 * ${PALLOC_TEST_STRESS:-1}))
wrap=""
if [ "${PALLOC_TEST_UNDER_VALGRIND:-}" = 1 ]; then
  limit=1800
  # Loops are divided by PALLOC_TEST_SLOW under valgrind.
  PALLOC_TEST_SLOW=${PALLOC_TEST_SLOW:-20}
  export PALLOC_TEST_SLOW
  # memcheck replaces malloc & co. with its own unless told that no other library is an
  # allocator (somalloc=NONE); without it palloc would not run at all, and ptest_init()
  # would bail out ("a call of malloc was not counted").
  wrap="${VALGRIND:-valgrind} --quiet --error-exitcode=1 --soname-synonyms=somalloc=NONE"
  wrap="$wrap --suppressions=$top_srcdir/tests/valgrind/check-valgrind.supp"
fi

case $mode in
  linked)
    exec timeout -k 10 $limit $wrap "$top_builddir/tests/palloc-tests-$lib" "$area" ;;
  preload)
    LD_PRELOAD=$so
    export LD_PRELOAD
    exec timeout -k 10 $limit $wrap "$top_builddir/tests/palloc-tests" "$area" ;;
  unit)
    exec timeout -k 10 $limit $wrap "$top_builddir/backends/$backend/test_${backend}_backend" ;;
  os)
    exec timeout -k 10 $limit $wrap "$top_builddir/backends/test_os" ;;
  script)
    exec timeout -k 10 $limit /bin/sh "$top_srcdir/tests/$area.sh" "$lib" ;;
  fuzz)
    exec timeout -k 10 $limit /bin/sh "$top_srcdir/tests/fuzz/run-fuzz.sh" "$backend" ;;
  valgrind)
    exec timeout -k 10 $limit /bin/sh "$top_srcdir/tests/valgrind/vg-planted.sh" "$backend" ;;
  *)
    echo "Bail out! $1: unknown mode $mode"
    exit 1 ;;
esac
