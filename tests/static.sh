#!/bin/sh
# static.sh LIB: a program linked statically with LIB.a (tests/static-prog.c) links, although
# it defines functions named as palloc's internal ones and calls mallopt; it runs on palloc
# (the backend's name, malloc counted by palloc's statistics), its own functions are the ones
# called, and threads, a forked child and the heap checker find everything intact.
set -u
lib=$1
archive=$top_builddir/.libs/$lib.a
echo "1..9"
. "$top_srcdir/tests/tap-sh.sh"
expect() { grep -qxF "$1" "$tmp/out"; verdict "$2 ($1)" $?; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! ${CC:-cc} -static -pthread -I"$top_srcdir/include" -o "$tmp/prog" \
     "$top_srcdir/tests/static-prog.c" "$archive" 2> "$tmp/link"; then
  bail "a program linked with -static and $lib.a does not link: $(head -3 "$tmp/link" | tr '\n' ' ')"
fi
ok "a program linked with -static and $lib.a links"
"$tmp/prog" > "$tmp/out" 2>&1
verdict "it exits 0" $?
sed 's/^/# /' "$tmp/out"
expect "backend $PALLOC_TEST_BACKEND" "palloc's $PALLOC_TEST_BACKEND backend serves it"
expect "own names 12345 -7 0x5eed" "the program's page_size, backend_check_heap and tcache_get are the ones called"
expect "mallopt 1 0" "mallopt answers as glibc's"
expect "malloc counted 1, usable 1, text static" "malloc is palloc's: counted in its statistics"
expect "threads intact 1" "4 threads' blocks intact"
expect "fork child 1" "a forked child allocates, frees and finds its heap sound"
expect "heap 0" "palloc_check_heap() finds the heap sound"
exit $failed
