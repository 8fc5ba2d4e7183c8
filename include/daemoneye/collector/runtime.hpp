#pragma once
// collector-core: the runtime that turns an EventSource into a collector
// process on the bus. It
//   - connects as client name <collector-id> (reconnecting when the session
//     is lost, restoring its subscriptions and registering again),
//   - registers on control.collector.registration with the source's
//     capabilities and task types, and deregisters on a graceful exit,
//   - joins queue group "<type>-workers" on control.collector.task.<domain>
//     with manual ack, runs each task on its task thread and acknowledges it
//     only after the task's results and its completion were sent, so a task
//     held by a collector that dies is redelivered to another member,
//   - publishes results on events.<domain>.<kind>, each with a child
//     correlation of the task's (parent = task's id, same root, increasing
//     sequence numbers, the task's workflow stage, this collector's id),
//   - sends heartbeats on control.health.heartbeat.<collector-id>,
//   - obeys control.collector.lifecycle (pause, resume, shutdown) and applies
//     control.collector.config.<type> between tasks,
//   - with `durable` (what the agent asks of the collectors it starts): gives
//     every result and event the message id <collector-id>/<epoch>/<seq>,
//     keeps it (in memory, and spooled under `state_dir`) until the agent
//     confirms it committed on control.collector.durable.<collector-id>,
//     resends what is unconfirmed after a reconnect and, from the spool, in
//     the next instance after a crash; sources block in emit() while the
//     unconfirmed window is full (backpressure, never loss).
// The protocol is documented in docs/collectors.md.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <daemoneye/collector/event_source.hpp>

namespace daemoneye::collector {

struct RuntimeOptions {
  std::string collector_id;  // unique on the bus; empty: "<type>-<pid>"
  std::string endpoint;      // empty: eventbus::resolve_endpoint()
  std::string token_file;    // TCP endpoints: the broker's token file; empty: eventbus::token_file_for()
  std::chrono::milliseconds heartbeat_interval{1000};
  std::uint32_t prefetch = 4;      // tasks held at once (the manual-ack window)
  std::string strategy;            // queue group strategy when creating the group:
                                   // round-robin | least-loaded | random (empty: the group's)
  std::string initial_config = "{}";  // JSON object applied before the first task
  std::string log_level = "info";
  // Durable delivery (see above). The window bounds what is unconfirmed:
  // a source emitting past it waits for confirmations.
  bool durable = false;
  std::string state_dir;  // spool directory; empty: unconfirmed messages live in memory only
  std::size_t max_unconfirmed_msgs = 65536;
  std::size_t max_unconfirmed_bytes = 16u << 20;
};

// Runs `source` until SIGINT/SIGTERM or a lifecycle "shutdown", then leaves
// gracefully. Returns the process exit code (0 after a graceful exit, 1 when
// the bus could not be reached at start).
int run(std::unique_ptr<EventSource> source, const RuntimeOptions& options);

// A collector's whole main: parses the standard command line (--id,
// --socket, --token-file, --heartbeat-ms, --prefetch, --strategy, --config, --log-level,
// --durable, --state-dir, --max-unconfirmed-msgs, --max-unconfirmed-bytes)
// and calls run(). Start-up errors are reported as one line on stderr.
int main(int argc, char** argv, std::unique_ptr<EventSource> source);

}  // namespace daemoneye::collector
