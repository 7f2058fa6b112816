# .ci/lib.sh: what .ci/distcheck.sh and .ci/packaging.sh share (sourced, bash).
# The sourcing script sets `me` and defines fail MESSAGE (prints its verdict and exits).

# ci_need PACKAGE...: apt-get install those of the Debian packages that are not installed.
ci_need() {
  local missing="" p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing="$missing $p"
  done
  [ -n "$missing" ] || return 0
  echo "$me: installing$missing"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; } ||
    fail "apt-get install$missing"
}

# ci_copy_tree DEST: the tracked files as they are in the work tree (committed or not), into
# DEST: no build output, even one that .gitignore misses (a file not yet added to git is
# left out too). Outside git (a dist tarball), everything.
ci_copy_tree() {
  mkdir -p "$1" || return 1
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached |
      tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$1" -xf -
  else
    cp -a . "$1/"
  fi
}
