# tap-sh.sh: TAP output for the shell tests, sourced after they print their plan ("1..N").
#   ok TEXT / not_ok TEXT   the next test passed / failed (failed=1 remembers a failure)
#   verdict TEXT STATUS     ok when STATUS is 0, else not_ok
#   bail TEXT               "Bail out!" and exit 1 (the test cannot run at all)
# The script ends with `exit $failed`.
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }
verdict() { if [ "$2" -eq 0 ]; then ok "$1"; else not_ok "$1"; fi; }
bail() { echo "Bail out! $*"; exit 1; }
