#!/usr/bin/env bash
# The main job, for now: start the broker (daemoneye-agent --broker-only) and
# show separate processes exchanging messages through it: pub/sub with
# wildcards, a load-balanced queue group, request/reply, and the broker's
# metrics. Everything runs under a temporary directory and is stopped by pid.
set -euo pipefail
BUILD_DIR=${1:-build}
AGENT="$BUILD_DIR/apps/daemoneye-agent/daemoneye-agent"
CLI="$BUILD_DIR/apps/daemoneye-cli/daemoneye-cli"
WORK=$(mktemp -d /tmp/daemoneye-demo.XXXXXX)
export DAEMONEYE_SOCKET="$WORK/run/eventbus.sock"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting the broker: daemoneye-agent --broker-only (socket $DAEMONEYE_SOCKET)"
"$AGENT" --broker-only --log-level info 2>"$WORK/agent.log" &
AGENT_PID=$!
pids+=("$AGENT_PID")
for _ in $(seq 100); do [ -S "$DAEMONEYE_SOCKET" ] && break; sleep 0.05; done
[ -S "$DAEMONEYE_SOCKET" ] || { cat "$WORK/agent.log"; exit 1; }
ls -l "$DAEMONEYE_SOCKET"

step "Two subscriber processes: 'events.#' and 'events.process.+'"
"$CLI" sub 'events.#' -v --count 6 --timeout 10 --name all-events >"$WORK/sub-all.out" &
pids+=($!); SUB_ALL=$!
"$CLI" sub 'events.process.+' -v --count 3 --timeout 10 --name process-events >"$WORK/sub-proc.out" &
pids+=($!); SUB_PROC=$!
until "$CLI" stats --json | grep -q '"process-events"'; do sleep 0.05; done

step "A publisher process sends 3 process events and 3 network events"
"$CLI" pub events.process.spawned 'pid {n} spawned' --count 3 --confirm
"$CLI" pub events.network.connection 'connection {n} opened' --count 3 --confirm
wait "$SUB_ALL" "$SUB_PROC"
echo "-- subscriber 'events.#' received:"; sed 's/^/   /' "$WORK/sub-all.out"
echo "-- subscriber 'events.process.+' received:"; sed 's/^/   /' "$WORK/sub-proc.out"

step "Queue group: 3 worker processes share 9 tasks round-robin, with manual ack"
for w in 1 2 3; do
  "$CLI" sub control.collector.task.process --queue procmond-workers --ack --count 3 --timeout 10 \
    --name "worker-$w" >"$WORK/worker-$w.out" &
  pids+=($!); eval "W$w=$!"
done
until [ "$("$CLI" stats --json | grep -o '"procmond-workers"' | wc -l)" -ge 3 ]; do sleep 0.05; done
"$CLI" pub control.collector.task.process 'task {n}' --count 9 --confirm
wait "$W1" "$W2" "$W3"
for w in 1 2 3; do echo "-- worker-$w: $(tr '\n' ' ' <"$WORK/worker-$w.out")"; done

step "Request/reply: an echo service process answers a request"
"$CLI" reply svc.echo --count 1 --timeout 10 --name echo-service &
pids+=($!); REPLY=$!
until "$CLI" stats --json | grep -q '"echo-service"'; do sleep 0.05; done
echo "-- reply: $("$CLI" request svc.echo 'hello broker' --timeout 2000)"
wait "$REPLY"

step "The broker's metrics (daemoneye-cli stats)"
"$CLI" stats

step "Stopping the broker with SIGTERM"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" && echo "agent exited 0"
[ -e "$DAEMONEYE_SOCKET" ] && echo "socket still present!" || echo "socket file removed"
