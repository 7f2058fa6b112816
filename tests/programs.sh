#!/bin/sh
# programs.sh LIB: real programs (python3, sqlite3, perl, gcc, git) run under
# LD_PRELOAD=LIB.so give the same output, stderr and exit status as under glibc's malloc, and
# palloc's PALLOC_STATS=1 report at exit shows palloc served their allocations.
set -u
lib=$1
so=$top_builddir/.libs/$lib.so
n=0
failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset LD_PRELOAD PALLOC_STATS PALLOC_CHECK

# The workloads: each prints something that depends on everything it computed.
py_work() {
  python3 -c '
import hashlib, json, threading
d = {}
for i in range(200000):
    d[str(i)] = bytes(i % 251 for _ in range(i % 64))
    if i % 3 == 0:
        del d[str(i // 2)]
blob = json.dumps({k: len(v) for k, v in d.items()}, sort_keys=True).encode()
out = []
def work(n):
    out.append(sum(len(str(list(range(j)))) for j in range(n)))
ts = [threading.Thread(target=work, args=(300 + i,)) for i in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
print(len(d), hashlib.sha256(blob).hexdigest(), sorted(out))
'
}
sqlite_work() {
  sqlite3 :memory: <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000)
INSERT INTO t(k, v) SELECT printf('key%05d', x % 7919), zeroblob(x % 300) FROM c;
CREATE INDEX tk ON t(k);
DELETE FROM t WHERE id % 3 = 0;
SELECT count(*), count(DISTINCT k), sum(length(v)) FROM t;
SELECT k, count(*) FROM t GROUP BY k ORDER BY count(*) DESC, k LIMIT 5;
SQL
}
perl_work() {
  perl -e '
my %h; my @a;
for my $i (1 .. 200000) { $h{"k$i"} = "v" x ($i % 97); push @a, $i * 7 % 1000 if $i % 5 == 0; }
delete $h{"k$_"} for grep { $_ % 2 } 1 .. 200000;
my $s = 0; $s += length($h{$_}) for keys %h;
print scalar(keys %h), " $s ", join(",", (sort { $a <=> $b } @a)[0 .. 9]), "\n";
'
}
gcc_work() {
  cat > "$tmp/prog.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
struct node { struct node *next; int value; };
static int sum(const struct node *n) { int s = 0; for (; n; n = n->next) s += n->value; return s; }
int main(int argc, char **argv) {
  struct node *head = NULL;
  for (int i = 0; i < argc * 1000; i++) {
    struct node *n = malloc(sizeof *n);
    n->value = i; n->next = head; head = n;
  }
  printf("%d %s\n", sum(head), argv[0]);
  return 0;
}
C
  gcc -O2 -S -o - "$tmp/prog.c" && gcc -O2 -o "$tmp/prog" "$tmp/prog.c" && "$tmp/prog" x y
}
git_work() {
  repo=$tmp/repo-$1
  rm -rf "$repo"
  mkdir -p "$repo"
  (
    cd "$repo" || exit 1
    export GIT_AUTHOR_NAME=palloc GIT_AUTHOR_EMAIL=palloc@example.org
    export GIT_COMMITTER_NAME=palloc GIT_COMMITTER_EMAIL=palloc@example.org
    export GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' GIT_COMMITTER_DATE='2026-01-01T00:00:00Z'
    export GIT_CONFIG_NOSYSTEM=1 HOME=$repo
    git init -q -b main . || exit 1
    for i in 1 2 3 4 5 6; do
      seq 1 $((i * 2000)) | sed "s/^/line $i /" > "file$i.txt"
      git add "file$i.txt"
      git commit -q -m "commit $i"
    done
    git log --stat --format='%H %s'
    git diff HEAD~3 --stat
    git gc -q && git count-objects -v | grep -v size
    git rev-parse HEAD
  )
}

for prog in python3 sqlite3 perl gcc git; do
  if ! command -v "$prog" > /dev/null 2>&1; then
    ok 1 "$prog is installed (apt-get install $prog)"
    continue
  fi
  case $prog in
    python3) work=py_work ;;
    sqlite3) work=sqlite_work ;;
    perl) work=perl_work ;;
    gcc) work=gcc_work ;;
    git) work=git_work ;;
  esac
  $work glibc > "$tmp/out.glibc" 2> "$tmp/err.glibc"
  status_glibc=$?
  LD_PRELOAD=$so PALLOC_STATS=1 $work palloc > "$tmp/out.palloc" 2> "$tmp/err.palloc"
  status_palloc=$?
  ok "$([ $status_glibc = 0 ] && [ $status_palloc = $status_glibc ] && echo 0 || echo 1)" \
    "$prog: exit status $status_palloc under palloc, $status_glibc under glibc"
  cmp -s "$tmp/out.glibc" "$tmp/out.palloc"
  ok $? "$prog: output identical to glibc's ($(wc -c < "$tmp/out.glibc") bytes)"
  grep -v '^palloc: ' "$tmp/err.palloc" | cmp -s "$tmp/err.glibc" -
  ok $? "$prog: stderr identical to glibc's apart from palloc's report"
  mallocs=$(sed -n 's/^palloc: *calls\.malloc[ :=]*\([0-9][0-9]*\)$/\1/p' "$tmp/err.palloc" | sort -n | tail -1)
  ok "$([ "${mallocs:-0}" -gt 0 ] && echo 0 || echo 1)" \
    "$prog: PALLOC_STATS=1 report shows palloc served it (largest calls.malloc ${mallocs:-none})"
  if [ "$(sed -n '$=' "$tmp/out.glibc")" -le 12 ]; then
    sed 's/^/# /' "$tmp/out.palloc"
  fi
  if ! cmp -s "$tmp/out.glibc" "$tmp/out.palloc"; then
    diff "$tmp/out.glibc" "$tmp/out.palloc" | head -20 | sed 's/^/# /'
  fi
  grep -v '^palloc: ' "$tmp/err.palloc" | diff "$tmp/err.glibc" - | head -10 | sed 's/^/# /'
done
# PALLOC_CHECK=N (palloc.h): the heap checker runs every N calls inside a real program, which
# must still produce the same output.
if command -v python3 > /dev/null 2>&1; then
  py_work > "$tmp/out.glibc" 2>&1
  LD_PRELOAD=$so PALLOC_CHECK=97 py_work > "$tmp/out.check" 2>&1
  status=$?
  cmp -s "$tmp/out.glibc" "$tmp/out.check"
  ok "$([ $? = 0 ] && [ $status = 0 ] && echo 0 || echo 1)" \
    "python3 with PALLOC_CHECK=97 (heap checked every 97 calls): same output, exit 0 ($status)"
  head -5 "$tmp/out.check" | grep '^palloc: ' | sed 's/^/# /'
fi
echo "1..$n"
exit $failed
