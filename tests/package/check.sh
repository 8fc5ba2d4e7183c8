#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds tests/package/consumer
# against it with find_package(DaemonEyeEventBus CONFIG), and runs it against
# a broker from the same build; then runs the consumer's own collector (on the
# installed collector-core), gives it a task and checks its result arrives.
# Usage: check.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
WORK=$(mktemp -d)
AGENT_PID=
COLLECTOR_PID=
cleanup() {
  [ -n "$COLLECTOR_PID" ] && kill "$COLLECTOR_PID" 2>/dev/null
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
cmake --install "$BUILD" --prefix "$WORK/prefix" >/dev/null
cmake -S "$SRC/tests/package/consumer" -B "$WORK/build" -DCMAKE_PREFIX_PATH="$WORK/prefix" >/dev/null
cmake --build "$WORK/build" >/dev/null
export DAEMONEYE_SOCKET="$WORK/run/bus.sock"
"$BUILD/bin/daemoneye-agent" --broker-only --log-level warn &
AGENT_PID=$!
for _ in $(seq 200); do [ -S "$DAEMONEYE_SOCKET" ] && break; sleep 0.05; done
"$WORK/build/consumer"

CLI="$BUILD/bin/daemoneye-cli"
"$WORK/build/consumer_collector" --id hostmond-1 --log-level warn &
COLLECTOR_PID=$!
"$CLI" sub 'events.host.#' -v --count 2 --timeout 20 --name result-watcher >"$WORK/results" &
SUB_PID=$!
for _ in $(seq 200); do
  stats=$("$CLI" stats --json)
  grep -q hostmond-workers <<<"$stats" && grep -q result-watcher <<<"$stats" && break
  sleep 0.05
done
"$CLI" pub control.collector.task.host '{"id":"task-1","type":"hostname"}' --confirm >/dev/null
wait "$SUB_PID"
grep -q '^events.host.hostname {"hostname":' "$WORK/results"
grep -q '^events.host.task-complete .*"status":"ok"' "$WORK/results"
echo "package consumer and collector work"
