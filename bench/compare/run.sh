#!/usr/bin/env bash
# The broker comparison, in one command:
#
#   bench/compare/run.sh [--quick]
#
# Installs what is missing (Debian 12 packages, with sudo when not root),
# builds the agent and the comparison programs in Release, starts NATS,
# Mosquitto (a unix socket and a TCP listener), a ZeroMQ XSUB/XPUB proxy and
# our broker, each reachable only through loopback or sockets in a private
# temporary directory, runs the same scenarios through each (plus the
# no-broker floor), stops every process it started by its pid, and prints
# one table, also saved to $OUT.
#
#   --quick       1 s per scenario instead of 5 s, one run instead of REPEAT
#   REPEAT        runs per row, reported as medians (default 3)
#   BUILD_DIR     build directory (default: <repo>/build-bench, preset "bench")
#   OUT           where the table is saved (default: bench/compare/results-latest.txt)
#
# The numbers mean something only on an otherwise quiet machine.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$REPO/build-bench}"
OUT="${OUT:-$HERE/results-latest.txt}"
DURATION_MS=5000
REPEAT="${REPEAT:-3}"
case "${1:-}" in
  --quick) DURATION_MS=1000; REPEAT=1 ;;
  "") ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac
# A run takes its duration plus set-up (10 s at most; 100,000 background
# subscriptions take longer) and draining (3 s).
ROW_TIMEOUT=$(((DURATION_MS / 1000 + 60) * REPEAT))
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

# --- packages and build -----------------------------------------------------

ensure_packages() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  echo "Installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
  ensure_packages make nats-server libnats-dev mosquitto libmosquitto-dev libzmq3-dev
  make -C "$REPO" --no-print-directory deps  # the project's own build dependencies
  (cd "$REPO" && cmake --preset bench -B "$BUILD_DIR" -DDAEMONEYE_BUILD_COMPARE=ON >/dev/null)
  cmake --build "$BUILD_DIR" -j 2 --target daemoneye-agent procmond netmond fsmond perfmond daemoneye-compare zmq-proxy
}

# --- brokers ----------------------------------------------------------------

TMP=""
PIDS=()

# Every process this script started, by pid: TERM, 5 s of grace, then KILL.
stop_all() {
  local pid alive
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=""
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$TMP" ]; then rm -rf "$TMP"; fi
}

# A TCP port on 127.0.0.1 that nothing listens on (yet).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_ready NAME PID CHECK...: until CHECK succeeds, for 10 s at most.
wait_ready() {
  local name=$1 pid=$2
  shift 2
  for _ in $(seq 100); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || { echo "$name exited while starting (logs in $TMP)" >&2; tail -5 "$TMP"/*.log "$TMP"/mosquitto/*.log >&2 || true; exit 1; }
    sleep 0.1
  done
  echo "$name did not become ready within 10 s" >&2
  exit 1
}

start_daemoneye() {
  "$BIN/daemoneye-agent" --broker-only --database none --socket "$TMP/daemoneye.sock" --log-level warn \
    >"$TMP/daemoneye.log" 2>&1 &
  DAEMONEYE_PID=$!
  PIDS+=("$DAEMONEYE_PID")
  wait_ready daemoneye-agent "$DAEMONEYE_PID" test -S "$TMP/daemoneye.sock"
  sleep 1
  IDLE_RSS_KIB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMONEYE_PID/status")
}

# The whole product: the broker inside the agent with its default
# collectors (2 x procmond, netmond, fsmond, perfmond) working alongside.
start_agent() {
  "$BIN/daemoneye-agent" --database "$TMP/events.db" --socket "$TMP/agent.sock" --log-level warn \
    >"$TMP/agent.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
  wait_ready daemoneye-agent "$AGENT_PID" test -S "$TMP/agent.sock"
  sleep 2  # the collectors register and take their first scheduled tasks
}

start_nats() {
  NATS_PORT=$(free_port)
  nats-server -a 127.0.0.1 -p "$NATS_PORT" -l "$TMP/nats.log" &
  NATS_PID=$!
  PIDS+=("$NATS_PID")
  wait_ready nats-server "$NATS_PID" tcp_open "$NATS_PORT"
}

# Mosquitto drops root for its "mosquitto" user, which must be able to
# create its socket and log in a directory of its own.
start_mosquitto() {
  local dir="$TMP/mosquitto"
  MOSQUITTO_PORT=$(free_port)
  mkdir "$dir"
  if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then chown mosquitto "$dir"; fi
  # No per-client queue limits (messages beyond them are dropped silently)
  # and no in-flight limit: the run measures speed, not shedding.
  cat >"$dir/mosquitto.conf" <<EOF
persistence false
allow_anonymous true
log_dest file $dir/mosquitto.log
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages 0
set_tcp_nodelay true
listener 0 $dir/mosquitto.sock
listener $MOSQUITTO_PORT 127.0.0.1
EOF
  mosquitto -c "$dir/mosquitto.conf" &
  MOSQUITTO_PID=$!
  PIDS+=("$MOSQUITTO_PID")
  wait_ready mosquitto "$MOSQUITTO_PID" test -S "$dir/mosquitto.sock"
  wait_ready mosquitto "$MOSQUITTO_PID" tcp_open "$MOSQUITTO_PORT"
}

start_zmq() {
  "$BIN/zmq-proxy" "ipc://$TMP/xsub" "ipc://$TMP/xpub" 2>"$TMP/zmq-proxy.log" &
  ZMQ_PID=$!
  PIDS+=("$ZMQ_PID")
  wait_ready zmq-proxy "$ZMQ_PID" test -S "$TMP/xpub"
}

# --- scenarios --------------------------------------------------------------

HEADER_DONE=""

# row PEER ARGS...: one table row (after the table's header, the first time).
row() {
  local peer=$1 out status=0
  shift
  out=$(timeout -k 5 "$ROW_TIMEOUT" "$BIN/daemoneye-compare" --peer "$peer" --duration-ms "$DURATION_MS" \
          --repeat "$REPEAT" ${HEADER_DONE:+--no-header} "$@" 2>>"$TMP/compare.log") || status=$?
  if [ "$status" -ne 0 ]; then
    echo "| $peer | | $* | | | failed (exit $status; 124: timed out) | | | | | |"
    tail -3 "$TMP/compare.log" >&2
  else
    echo "$out"
    HEADER_DONE=1
  fi
}

# Every peer but the floor: PEER ENDPOINT ARGS... (ENDPOINT may be several words).
brokers() {
  row daemoneye --endpoint "$TMP/daemoneye.sock" --broker-pid "$DAEMONEYE_PID" "$@"
  row nats --endpoint "nats://127.0.0.1:$NATS_PORT" --broker-pid "$NATS_PID" "$@"
  row mosquitto --endpoint "$TMP/mosquitto/mosquitto.sock" --broker-pid "$MOSQUITTO_PID" "$@"
  row mosquitto --endpoint "127.0.0.1:$MOSQUITTO_PORT" --broker-pid "$MOSQUITTO_PID" "$@"
  row zmq --endpoint "ipc://$TMP/xsub" --xpub "ipc://$TMP/xpub" --broker-pid "$ZMQ_PID" "$@"
}

table() {
  local size
  for size in 64 1024; do
    row floor --scenario latency --size "$size"
    brokers --scenario latency --size "$size"
  done
  for size in 64 1024; do
    row floor --scenario latency --size "$size" --rate 10000
    brokers --scenario latency --size "$size" --rate 10000
  done
  row floor --scenario throughput --size 64
  brokers --scenario throughput --size 64
  brokers --scenario fanout --size 64 --clients 4
  brokers --scenario queue --size 64 --clients 3
  # Our broker's own costs: a subscriber that stops reading under a flood,
  # and routing with 10 and with 100,000 other subscriptions held.
  local ours=(--endpoint "$TMP/daemoneye.sock" --broker-pid "$DAEMONEYE_PID")
  row daemoneye "${ours[@]}" --scenario flood --size 64 --rate 100000
  row daemoneye "${ours[@]}" --scenario throughput --size 64 --noise 10
  row daemoneye "${ours[@]}" --scenario throughput --size 64 --noise 100000
  # The seed's bar, with the agent and its collectors running.
  start_agent
  local agent=(--label "daemoneye-agent + 5 collectors" --endpoint "$TMP/agent.sock" --broker-pid "$AGENT_PID")
  row daemoneye "${agent[@]}" --scenario latency --size 64
  row daemoneye "${agent[@]}" --scenario latency --size 64 --rate 2000
  row daemoneye "${agent[@]}" --scenario latency --size 1024 --rate 5000
}

notes() {
  cat <<EOF

$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, Linux $(uname -r), $((DURATION_MS / 1000)) s per run, medians of $REPEAT run(s) per row.
daemoneye-agent --broker-only idle: ${IDLE_RSS_KIB} KiB resident.
nats-server $(nats-server --version | sed 's/.* v//'), mosquitto $(dpkg-query -W -f='${Version}' mosquitto), libzmq $(pkg-config --modversion libzmq).
latency: round trip (pinger -> broker -> echo client -> broker -> pinger); at a --rate, counted from each
  message's intended send time. Other scenarios: one way, publisher -> subscriber, at most 4096 in flight.
msgs/s: delivered per second (fanout: over all subscribers). broker CPU%: the broker process's CPU time
  over wall time during the run (100 = one core); zmq's broker is zmq-proxy.
floor: no broker, two processes over an AF_UNIX socketpair. nats: core NATS (queue groups at most once);
  latency rows write each publish at once (libnats "send ASAP"), others batch. mosquitto: MQTT 5, QoS 0;
  queue = shared subscription at QoS 1. zmq: PUB/SUB through an XSUB/XPUB proxy (no acks, no queue groups).
+N subs: N other subscriptions held at the broker during the run. flood: 100,000 msg/s offered to a
  subscriber that stops reading; the broker's resident memory before and at its peak.
daemoneye-agent + 5 collectors: the full agent (2 x procmond, netmond, fsmond, perfmond) on its own socket.
EOF
}

main() {
  build >&2  # stdout is for the table
  BIN="$BUILD_DIR/bin"
  TMP=$(mktemp -d)
  chmod 711 "$TMP"  # the mosquitto user passes through to its own directory
  trap stop_all EXIT
  trap 'exit 130' INT TERM
  start_daemoneye
  start_nats
  start_mosquitto
  start_zmq
  { table; notes; } | tee "$OUT"
}

main
