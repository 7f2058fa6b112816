#!/usr/bin/env bash
# .ci/packaging.sh: the Debian packages, from a copy of the tree, as a user would get them.
#
#  1. source package (dpkg-source -b) and lintian on its .dsc;
#  2. binary packages (dpkg-buildpackage -us -uc -b) and lintian on the .changes
#     (--pedantic shown; errors and warnings fail);
#  3. apt-get install ./*.deb; a program built with `cc prog.c $(pkg-config --cflags --libs
#     palloc)` runs on palloc (palloc_backend_name() answers), and so do the palloc-mmap and
#     palloc-sbrk modules; palloc-run is on PATH and serves a program; the man pages are found;
#  4. apt-get purge, and no file of the packages is left.
# Must run as root (CI does); installs its own apt dependencies. Ends with one line starting
# ".ci/packaging.sh: PASS" or ".ci/packaging.sh: FAIL", non-zero exit status on failure.
#
# Environment: KEEP=1 keeps the work folder. DEB_BUILD_OPTIONS defaults to "nocheck": .ci/run
# has just run `make check` on the same source, and the suite takes minutes; set
# DEB_BUILD_OPTIONS= (empty) to run it inside the package build as Debian's builders do.
set -uo pipefail
cd "$(dirname "$0")/.."
me=.ci/packaging.sh
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
fail() {
  echo "$me: FAIL: $* ($(elapsed) s)"
  exit 1
}
step() { echo "=== $me: $* ($(elapsed) s)"; }
. .ci/lib.sh

[ "$(id -u)" -eq 0 ] || fail "must run as root (apt-get install and purge)"

# ---- Dependencies: the tools, and the source package's Build-Depends ----------------------
packages="build-essential dpkg-dev debhelper lintian pkg-config groff-base man-db
  liblttng-ust-dev libbabeltrace2-dev libdw-dev libglib2.0-dev"
ci_need $packages
dpkg-checkbuilddeps debian/control || fail "Build-Depends of debian/control not installed (update \$packages here)"

work=$(mktemp -d /tmp/palloc-packaging.XXXXXX) || fail "mktemp"
installed=""
cleanup() {
  # A failure after the install purges the packages, so that they cannot mislead what runs next.
  if [ -n "$installed" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $installed >/dev/null 2>&1
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "$me: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

lintian_check() { # what: lintian over FILE; fails on an error or a warning
  local what=$1 file=$2 out
  out=$(lintian --info --display-info --display-experimental --pedantic --fail-on error,warning \
    "$file" 2>&1)
  local status=$?
  out=$(printf '%s\n' "$out" | grep -v '^running with root privileges is not recommended!$')
  if [ -n "$out" ]; then printf '%s\n' "$out" | sed "s/^/lintian ($what): /"; fi
  [ $status -eq 0 ] || fail "lintian on the $what reports errors or warnings"
  echo "lintian ($what): $(printf '%s\n' "$out" | grep -c '^[EWIPX]: ') tags, no error or warning"
}

# ---- 1. Source package ---------------------------------------------------------------------
step "source package"
ci_copy_tree "$work/src/palloc" || fail "copying the tree"
(cd "$work/src" && dpkg-source -b palloc) >"$work/source.log" 2>&1 ||
  { cat "$work/source.log"; fail "dpkg-source -b"; }
dsc=$(ls "$work"/src/palloc_*.dsc)
lintian_check "source package" "$dsc"

# ---- 2. Binary packages --------------------------------------------------------------------
step "dpkg-buildpackage -us -uc -b"
ci_copy_tree "$work/bin/palloc" || fail "copying the tree"
export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS-nocheck}
echo "DEB_BUILD_OPTIONS=$DEB_BUILD_OPTIONS"
build_start=$(date +%s)
(cd "$work/bin/palloc" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 ||
  { grep -E '^(FAIL|ERROR):' "$work/build.log"; tail -40 "$work/build.log"; KEEP=1
    fail "dpkg-buildpackage (log: $work/build.log)"; }
build_time=$(( $(date +%s) - build_start ))
echo "dpkg-buildpackage: ${build_time} s"
# A new exported function only warns in dpkg-gensymbols: say it here, with the diff.
if grep -q '^dpkg-gensymbols: warning' "$work/build.log"; then
  echo "$me: note: debian/libpalloc0.symbols does not match the library; dpkg-gensymbols says:"
  awk '/^dpkg-gensymbols: warning/ {p = 1} p && /^(make|   dh_)/ {exit} p' "$work/build.log" | head -30
fi
changes=$(ls "$work"/bin/palloc_*.changes)
lintian_check "binary packages" "$changes"
debs=$(ls "$work"/bin/*.deb)
# The runtime package must never pull in liblttng-ust (the probe library has its own package).
runtime_deps=$(dpkg-deb -f "$work"/bin/libpalloc0_*.deb Depends)
dpkg-deb -x "$work"/bin/libpalloc0_*.deb "$work/runtime" || fail "dpkg-deb -x libpalloc0"
needed=$(find "$work/runtime" -name '*.so.*' -type f -exec readelf -d {} + | grep NEEDED | sort -u)
case "$runtime_deps $needed" in
  *lttng*) fail "libpalloc0 depends on LTTng: Depends: $runtime_deps; $needed" ;;
esac
[ -n "$needed" ] || fail "no NEEDED entry found in the libraries of libpalloc0"
echo "libpalloc0 Depends: $runtime_deps; its libraries need:" $(echo "$needed" | sed 's/.*\[\(.*\)\]/\1/')
pkgs=$(for d in $debs; do dpkg-deb -f "$d" Package; done)
echo "packages:" $pkgs

# ---- 3. Install and use --------------------------------------------------------------------
step "apt-get install ./*.deb"
# A leftover from an earlier run would hide what this install does.
for p in $pkgs; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -Eq " (installed|config-files|half-)"; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $pkgs >/dev/null 2>&1
    break
  fi
done
(cd "$work/bin" && DEBIAN_FRONTEND=noninteractive apt-get install -y ./*.deb) >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "apt-get install ./*.deb"; }
installed=$pkgs
for p in $pkgs; do dpkg -L "$p"; done | sort -u >"$work/files"

step "using the installed packages"
mkdir -p "$work/use"
cat >"$work/use/prog.c" <<'EOF'
#include <palloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
  char *p = malloc(100);
  if (p == NULL)
    return 1;
  strcpy(p, "hello");
  struct palloc_stats stats;
  palloc_stats_get(&stats);
  printf("palloc_backend_name: %s\n", palloc_backend_name());
  printf("live_bytes: %llu\n", (unsigned long long)stats.live_bytes);
  free(p);
  return palloc_check_heap() != 0 || stats.calls[PALLOC_FN_MALLOC] == 0;
}
EOF
use_module() { # MODULE BACKEND: build prog.c with pkg-config MODULE; it must run on BACKEND
  local module=$1 backend=$2 flags out
  flags=$(pkg-config --cflags --libs "$module") || fail "pkg-config --cflags --libs $module"
  # shellcheck disable=SC2086
  cc -Wall -Werror -o "$work/use/prog-$module" "$work/use/prog.c" $flags ||
    fail "cc prog.c \$(pkg-config --cflags --libs $module)"
  out=$(cd / && "$work/use/prog-$module") || fail "the program built with $module failed: $out"
  case $out in
    *"palloc_backend_name: $backend"*) echo "cc prog.c \$(pkg-config --cflags --libs $module) [$flags]: ${out%%$'\n'*}" ;;
    *) fail "the program built with $module printed: $out" ;;
  esac
}
use_module palloc mmap
# (No `ldd | grep -q` under pipefail: grep quitting early would fail the pipe now and then.)
deps=$(ldd "$work/use/prog-palloc")
case $deps in
  *"libpalloc.so.0 => /lib/"*|*"libpalloc.so.0 => /usr/lib/"*) ;;
  *) fail "the program is not linked with the installed libpalloc.so.0: $deps" ;;
esac
for backend in mmap sbrk; do
  if pkg-config --exists "palloc-$backend"; then
    use_module "palloc-$backend" "$backend"
  elif [ "$backend" = mmap ]; then
    fail "pkg-config module palloc-mmap is not installed"
  else
    echo "pkg-config module palloc-$backend is not installed: not tried"
  fi
done

[ "$(command -v palloc-run)" = /usr/bin/palloc-run ] || fail "palloc-run is not /usr/bin/palloc-run on PATH"
out=$(cd / && palloc-run --stats -- true 2>&1)
case $out in
  *"palloc: statistics (backend mmap)"*) echo "palloc-run --stats -- true: ${out%%$'\n'*}" ;;
  *) fail "palloc-run --stats -- true printed: $out" ;;
esac
for lib in /usr/lib/*/palloc/libpalloc-*.so.0; do
  case $lib in *lttng*) continue ;; esac
  backend=${lib##*/libpalloc-}
  backend=${backend%.so.0}
  out=$(cd / && palloc-run --backend="$backend" --stats -- true 2>&1)
  case $out in
    *"palloc: statistics (backend $backend)"*) echo "palloc-run --backend=$backend --stats -- true: ${out%%$'\n'*}" ;;
    *) fail "palloc-run --backend=$backend --stats -- true printed: $out" ;;
  esac
done
out=$(palloc-trace --version 2>&1) || fail "palloc-trace --version failed: $out"
out=$(palloc-trace /nonexistent 2>&1) && fail "palloc-trace on a missing folder succeeded"
echo "palloc-trace is installed; on a missing folder it says: $out"
for page in palloc.3 palloc_check_heap.3 palloc-run.1 palloc-trace.1; do
  man -w "${page%.*}" >/dev/null 2>&1 || fail "man page ${page} not found by man -w"
done
echo "man -w finds palloc(3), palloc_check_heap(3), palloc-run(1), palloc-trace(1)"

# ---- 4. Purge ------------------------------------------------------------------------------
step "apt-get purge"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $pkgs >"$work/purge.log" 2>&1 ||
  { cat "$work/purge.log"; fail "apt-get purge"; }
installed=""
for p in $pkgs; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
  case $status in ""|*not-installed*) ;; *) fail "package $p is still there after purge: $status" ;; esac
done
left=""
while read -r f; do
  [ "$f" = /. ] && continue
  [ -e "$f" ] || [ -L "$f" ] || continue
  # A folder that stays is left to others (/usr/lib/<triplet>, ...) unless it is palloc's own.
  if [ -d "$f" ] && [ ! -L "$f" ]; then
    case $f in *palloc*) ;; *) continue ;; esac
  fi
  left="$left $f"
done <"$work/files"
[ -z "$left" ] || fail "left behind after purge:$left"
echo "apt-get purge removed all $(wc -l <"$work/files") paths of the packages"

echo "$me: PASS: packages built in ${build_time} s, lintian clean, installed, used, purged ($(elapsed) s)"
