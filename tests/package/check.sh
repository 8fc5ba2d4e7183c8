#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds tests/package/consumer
# against it with find_package(DaemonEyeEventBus CONFIG), and runs it against
# a broker from the same build. Usage: check.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
WORK=$(mktemp -d)
AGENT_PID=
cleanup() { [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cmake --install "$BUILD" --prefix "$WORK/prefix" >/dev/null
cmake -S "$SRC/tests/package/consumer" -B "$WORK/build" -DCMAKE_PREFIX_PATH="$WORK/prefix" >/dev/null
cmake --build "$WORK/build" >/dev/null
export DAEMONEYE_SOCKET="$WORK/run/bus.sock"
"$BUILD/bin/daemoneye-agent" --broker-only --log-level warn &
AGENT_PID=$!
for _ in $(seq 200); do [ -S "$DAEMONEYE_SOCKET" ] && break; sleep 0.05; done
"$WORK/build/consumer"
