#!/usr/bin/env bash
# The main job: run the full agent with its default collectors (2 x procmond,
# netmond, fsmond, perfmond as separate processes) and show them working:
# registered collectors, tasks flowing through queue groups, results
# aggregated and stored, queried back by correlation id. It keeps running
# (printing the collectors every 15 s) until Ctrl-C, or for DEMO_SECONDS.
# Socket and database live in a temporary directory; every process is
# stopped by pid.
set -euo pipefail
BUILD_DIR=${1:-build}
AGENT="$BUILD_DIR/bin/daemoneye-agent"
CLI="$BUILD_DIR/bin/daemoneye-cli"
WORK=$(mktemp -d /tmp/daemoneye-demo.XXXXXX)
export DAEMONEYE_SOCKET="$WORK/run/eventbus.sock"
export DAEMONEYE_DB="$WORK/events.db"
AGENT_PID=""
TAIL_PID=""
cleanup() {
  [ -n "$TAIL_PID" ] && kill "$TAIL_PID" 2>/dev/null || true
  if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
    kill -TERM "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo; stop_agent; exit 0' INT TERM
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cli() { echo "\$ daemoneye-cli $*"; "$CLI" "$@"; }

stop_agent() {
  step "Stopping the agent (SIGTERM): it stops every collector, then the broker"
  [ -n "$TAIL_PID" ] && kill "$TAIL_PID" 2>/dev/null || true
  TAIL_PID=""
  local pids
  pids=$("$CLI" collectors --json 2>/dev/null | grep -o '"pid":[0-9]*' | cut -d: -f2 || true)
  kill -TERM "$AGENT_PID"
  wait "$AGENT_PID" && echo "agent exited 0"
  AGENT_PID=""
  local left=0
  for p in $pids; do kill -0 "$p" 2>/dev/null && left=$((left + 1)); done
  echo "collector processes left: $left; socket file: $([ -e "$DAEMONEYE_SOCKET" ] && echo present || echo removed)"
}

step "Starting daemoneye-agent: broker + 5 collector processes (socket $DAEMONEYE_SOCKET)"
"$AGENT" --log-level info 2>"$WORK/agent.log" &
AGENT_PID=$!
for _ in $(seq 100); do [ -S "$DAEMONEYE_SOCKET" ] && break; sleep 0.05; done
[ -S "$DAEMONEYE_SOCKET" ] || { cat "$WORK/agent.log"; exit 1; }
for _ in $(seq 100); do
  [ "$("$CLI" collectors --json 2>/dev/null | grep -o '"registered":"registered"' | wc -l)" -ge 5 ] && break
  sleep 0.1
done
echo "-- the agent's log so far (registrations, configuration, first scheduled tasks):"
sed 's/^/   /' "$WORK/agent.log" | grep -E "registered|started|aggregated|storing" | cut -c1-160

step "The collectors: separate processes, each with its capabilities and heartbeat"
cli collectors
echo; ps -o pid,ppid,rss,cmd --ppid "$AGENT_PID" | cut -c1-120

step "An on-demand task, routed by capability to the procmond queue group"
cli task enumerate-processes name=daemoneye | head -12

step "A workflow across procmond and netmond, aggregated by correlation"
OUT=$("$CLI" task investigate-process pid="$AGENT_PID")
echo "\$ daemoneye-cli task investigate-process pid=$AGENT_PID"
echo "$OUT" | head -16
CORR=$(echo "$OUT" | awk '/^correlation/ {print $2; exit}')

step "Everything that workflow touched, from the SQLite store"
cli events --correlation "$CORR" --limit 8 | cut -c1-200
echo; cli events --tasks --correlation "$CORR" | cut -c1-200

step "Live: the agent's log (scheduled tasks, batches, heartbeat-driven health); Ctrl-C stops"
tail -n 0 -f "$WORK/agent.log" | grep --line-buffered -E "aggregated|workflow|restart|killing|expired|registered" &
TAIL_PID=$!
END=$(( $(date +%s) + ${DEMO_SECONDS:-1000000000} ))
while [ "$(date +%s)" -lt "$END" ]; do
  sleep 15 &
  wait $! || true
  [ "$(date +%s)" -ge "$END" ] && break
  echo; "$CLI" collectors; echo
done
stop_agent
