# lttng-daemon.sh: the session daemon of the tracing tests, sourced after tap-sh.sh.
#   lttng_daemon_up   use the session daemon that answers, or start one; a daemon the test
#                     started is stopped when the test exits (even by bail), so that make
#                     check leaves no daemon (nor its consumer daemons) behind.
# The two tests that trace (lttng/tests/t-trace.sh, tools/palloc-trace/t-palloc-trace.sh) run
# one after the other (tools/palloc-trace/Makemodule.am orders them), so that neither stops a
# daemon the other is using. A daemon that was running before make check is left alone.
started_daemon=

# Where lttng-sessiond writes its pid: root's daemon in /var/run/lttng, a user's in
# $LTTNG_HOME/.lttng (LTTNG_HOME defaults to $HOME).
lttng_daemon_pidfile() {
  if [ "$(id -u)" -eq 0 ]; then
    echo /var/run/lttng/lttng-sessiond.pid
  else
    echo "${LTTNG_HOME:-$HOME}/.lttng/lttng-sessiond.pid"
  fi
}

lttng_daemon_down() {
  [ -n "$started_daemon" ] || return 0
  kill "$started_daemon" 2>/dev/null
  waited=0
  while kill -0 "$started_daemon" 2>/dev/null && [ $waited -lt 100 ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  started_daemon=
}

lttng_daemon_up() {
  lttng list >/dev/null 2>&1 && return 0
  lttng-sessiond --daemonize >/dev/null 2>&1 || bail "no session daemon and none could be started"
  started_daemon=$(cat "$(lttng_daemon_pidfile)" 2>/dev/null)
  case $started_daemon in
  '' | *[!0-9]*) started_daemon=; bail "a session daemon started but left no pid file" ;;
  esac
  trap lttng_daemon_down EXIT
}
