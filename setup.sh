#!/bin/sh
# setup.sh: the first command of the README's Quick start, on a fresh Debian 12 machine as root.
# Installs what the build, the tests and `make bench` need (the peer allocators it compares
# palloc with: jemalloc, tcmalloc, mimalloc), builds palloc in this folder, then runs a real
# program (python3) under palloc and shows palloc's own report of serving it.
set -eu
cd "$(dirname "$0")"

packages="build-essential autoconf automake libtool pkg-config valgrind gdb python3 perl git
  sqlite3 liblttng-ust-dev lttng-tools babeltrace2 libbabeltrace2-dev python3-bt2 clang groff
  man-db libdw-dev libglib2.0-dev libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup.sh: installing$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

[ -x configure ] || ./autogen.sh
[ -f Makefile ] || ./configure
make -j"$(nproc)"

echo "setup.sh: python3 under palloc (LD_PRELOAD=.libs/libpalloc.so PALLOC_STATS=1):"
LD_PRELOAD="$PWD/.libs/libpalloc.so" PALLOC_STATS=1 \
  python3 -c 'import json; print("python3 says:", len(json.dumps({str(i): [i] * 8 for i in range(100000)})))'
