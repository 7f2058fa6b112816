#!/bin/sh
# t-man.sh: every manual page formats without a warning (groff -ww, then man --warnings),
# and every .so link names a page that exists (TAP).
set -u
srcdir=${top_srcdir:-$(dirname "$0")/..}/man
pages="palloc.3 palloc-run.1"
links="palloc_backend_name.3 palloc_check_heap.3 palloc_stats_get.3 palloc_stats_print.3
  palloc_function_name.3"
tmp=${TMPDIR:-/tmp}/t-man.$$
trap 'rm -f "$tmp"' EXIT

if ! command -v groff >/dev/null 2>&1; then
  echo "1..0 # SKIP groff is not installed"
  exit 0
fi
have_man=no
command -v man >/dev/null 2>&1 && have_man=yes

n=0
failed=0
result() { # DESCRIPTION STATUS: one TAP line; on failure show what was printed
  n=$((n + 1))
  if [ "$2" -eq 0 ]; then
    echo "ok $n - $1"
  else
    failed=1
    echo "not ok $n - $1"
    sed 's/^/# /' "$tmp"
  fi
}

count=$(( $(echo $pages | wc -w) * 2 + $(echo $links | wc -w) ))
echo "1..$count"
for page in $pages; do
  LC_ALL=C.UTF-8 groff -ww -man -z -Tutf8 "$srcdir/$page" >"$tmp" 2>&1
  status=$?
  [ $status -eq 0 ] && [ ! -s "$tmp" ]
  result "groff -ww -man: $page has no warning" $?
  if [ $have_man = yes ]; then
    # What lintian runs on installed pages.
    LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z \
      "$srcdir/$page" 2>"$tmp" >/dev/null
    status=$?
    [ $status -eq 0 ] && [ ! -s "$tmp" ]
    result "man --warnings: $page has no warning" $?
  else
    n=$((n + 1))
    echo "ok $n # SKIP man-db is not installed"
  fi
done
for link in $links; do
  target=$(sed -n 's/^\.so man3\/\(.*\)$/\1/p' "$srcdir/$link")
  [ -n "$target" ] && [ -f "$srcdir/$target" ] && [ "$(wc -l <"$srcdir/$link")" -eq 1 ]
  status=$?
  echo "$link -> ${target:-?}" >"$tmp"
  result ".so link $link names an existing page ($target)" $status
done
exit $failed
