#pragma once
// The control-plane messages between the agent and its collectors: what
// travels on control.collector.* and control.health.* and how task results
// are marked. Payloads are JSON objects; correlation metadata travels in the
// bus envelope, never in the payload. Shared by the collector runtime and
// the agent so both sides read and write one schema (docs/collectors.md).
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <daemoneye/collector/event_source.hpp>

namespace daemoneye::collector::protocol {

// Headers on every result message of a task run.
inline constexpr std::string_view kHeaderTaskId = "task-id";
inline constexpr std::string_view kHeaderRunId = "run-id";
inline constexpr std::string_view kHeaderCollector = "collector-id";
// The record kind that closes a task run (events.<domain>.task-complete).
inline constexpr std::string_view kTaskCompleteKind = "task-complete";

// control.collector.task.<domain> and its queue group "<type>-workers".
std::string task_topic(std::string_view domain);
std::string queue_group(std::string_view collector_type);
// events.<domain>.<kind>
std::string event_topic(std::string_view domain, std::string_view kind);

// On control.collector.registration: sent after every (re)connect, and with
// state "deregistered" on a graceful exit.
struct Registration {
  std::string collector_id;
  std::string type;
  std::string domain;
  std::string state = "registered";  // registered | deregistered
  std::int64_t pid = 0;
  Capabilities capabilities;
  std::vector<std::string> task_types;
  std::string task_topic;
  std::string queue_group;
  std::string version;
  std::int64_t started_ns = 0;
};

// On control.health.heartbeat.<collector-id>, every heartbeat interval, from
// the collector process itself.
struct Heartbeat {
  std::string collector_id;
  std::string type;
  std::int64_t pid = 0;
  std::string state = "running";  // running | paused | stopping
  std::uint64_t sequence = 0;
  std::uint32_t interval_ms = 0;
  std::uint64_t tasks_in_flight = 0;  // received and not yet completed
  std::uint64_t tasks_done = 0;
  std::uint64_t tasks_failed = 0;
  std::uint64_t events_published = 0;
  std::uint64_t config_version = 0;
  std::string current_task;           // id of the task running now, or empty
  std::int64_t busy_since_ns = 0;     // when current_task started (0: idle)
  std::uint64_t rss_bytes = 0;
  std::int64_t uptime_ms = 0;
  // Durable delivery (all 0 unless the agent started the collector with it).
  std::uint64_t unconfirmed = 0;        // published, not yet confirmed committed by the agent
  std::uint64_t unconfirmed_bytes = 0;
  std::uint64_t confirmed = 0;
  std::uint64_t resent = 0;             // sent again after a reconnect
  std::uint64_t replayed = 0;           // sent again from the spool of an earlier instance
  std::uint64_t spool_errors = 0;       // messages that could not be spooled (kept in memory only)
  std::uint64_t backpressure_waits = 0; // times a source waited for the window
  std::uint64_t backpressure_ms = 0;    // time sources spent waiting
  std::map<std::string, std::uint64_t> source;  // the source's own counters (EventSource::counters)
};

// On control.collector.lifecycle (broadcast). `target` is empty or "*" for
// every collector, a collector type, or one collector id.
struct LifecycleCommand {
  std::string command;  // pause | resume | shutdown
  std::string target;
};

// On control.collector.config.<type> (broadcast, or direct to one collector).
struct ConfigUpdate {
  std::uint64_t version = 0;
  std::string settings = "{}";  // JSON object, passed to EventSource::configure
};

// The last message of a task run, on events.<domain>.task-complete.
struct Completion {
  std::string task_id;
  std::string run_id;
  std::string task_type;
  std::string collector_id;
  std::string status;  // to_string(TaskStatus::Code), or "expired" when the deadline had passed
  std::string detail;
  std::uint64_t records = 0;
  std::uint32_t delivery_count = 1;
  std::int64_t started_ns = 0;
  std::int64_t finished_ns = 0;
};

// Task payloads on the task topics (the correlation is in the envelope).
std::string encode(const Task& task);
std::optional<Task> decode_task(std::string_view json);

std::string encode(const Registration& r);
std::optional<Registration> decode_registration(std::string_view json);
std::string encode(const Heartbeat& h);
std::optional<Heartbeat> decode_heartbeat(std::string_view json);
std::string encode(const LifecycleCommand& c);
std::optional<LifecycleCommand> decode_lifecycle(std::string_view json);
std::string encode(const ConfigUpdate& c);
std::optional<ConfigUpdate> decode_config(std::string_view json);
std::string encode(const Completion& c);
std::optional<Completion> decode_completion(std::string_view json);

// Whether a lifecycle command addresses this collector.
bool targets(const LifecycleCommand& c, std::string_view collector_id, std::string_view type);

// A random identifier (UUID version 4 text) for correlation and task ids.
std::string new_id();

std::int64_t to_unix_ns(std::chrono::system_clock::time_point t);
std::chrono::system_clock::time_point from_unix_ns(std::int64_t ns);
std::int64_t now_unix_ns();

}  // namespace daemoneye::collector::protocol
