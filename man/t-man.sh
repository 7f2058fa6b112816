#!/bin/sh
# t-man.sh: every manual page in man/ formats without a warning (groff -ww, then
# man --warnings, which lintian runs), and every page that is a `.so` link names a page that
# exists (TAP). A page whose only line is `.so man3/PAGE` is a link.
set -u
srcdir=${top_srcdir:-$(dirname "$0")/..}/man
tmp=${TMPDIR:-/tmp}/t-man.$$
trap 'rm -f "$tmp"' EXIT

if ! command -v groff >/dev/null 2>&1; then
  echo "1..0 # SKIP groff is not installed"
  exit 0
fi
have_man=no
command -v man >/dev/null 2>&1 && have_man=yes

pages=""
links=""
for file in "$srcdir"/*.[1-8]; do
  if [ "$(wc -l <"$file")" -eq 1 ] && grep -q '^\.so ' "$file"; then
    links="$links ${file##*/}"
  else
    pages="$pages ${file##*/}"
  fi
done

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

echo "1..$(( $(echo $pages | wc -w) * 2 + $(echo $links | wc -w) ))"
for page in $pages; do
  LC_ALL=C.UTF-8 groff -ww -man -z -Tutf8 "$srcdir/$page" >"$tmp" 2>&1
  status=$?
  [ $status -eq 0 ] && [ ! -s "$tmp" ]
  result "groff -ww -man: $page has no warning" $?
  if [ $have_man = yes ]; then
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
  target=$(sed -n 's/^\.so man[1-8]\/\(.*\)$/\1/p' "$srcdir/$link")
  [ -n "$target" ] && [ -f "$srcdir/$target" ]
  status=$?
  echo "$link: $(cat "$srcdir/$link")" >"$tmp"
  result ".so link $link names an existing page (${target:-none})" $status
done
exit $failed
