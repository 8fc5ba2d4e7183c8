#pragma once
// What the full agent coordinates, as configured in the [agent], [health],
// [supervisor], [aggregation], [[collectors]] and [[schedule]] tables of its
// TOML file. Every field has a default, so the agent runs with no file:
// 2 x procmond and one each of netmond, fsmond and perfmond, with a
// schedule of periodic collection (default_settings()).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace daemoneye::agent {

using std::chrono::milliseconds;

struct CollectorSpec {
  std::string type;          // procmond | netmond | fsmond | perfmond (the program and its access role)
  std::uint32_t instances = 1;
  std::string path;          // executable; empty: <directory of daemoneye-agent>/<type>
  std::vector<std::string> args;  // extra command-line arguments
  std::string settings = "{}";    // JSON object sent to every instance as its configuration
  std::string strategy = "round-robin";  // of its queue group
  std::uint32_t prefetch = 4;     // tasks each instance holds at once
  // Each instance's window of results published and not yet confirmed
  // committed by the agent; a source emitting past it waits.
  std::uint32_t max_unconfirmed_msgs = 65536;
  std::uint64_t max_unconfirmed_bytes = 16u << 20;
};

struct SupervisorSettings {
  milliseconds backoff_initial{500};
  milliseconds backoff_max{30000};
  // More than `restart_budget` restarts within `budget_window` and the
  // collector is marked failed and left stopped (reported, never restarted
  // in a loop).
  std::uint32_t restart_budget = 5;
  milliseconds budget_window{60000};
  milliseconds stable_after{30000};     // a run this long resets the backoff
  milliseconds stop_grace{5000};        // SIGTERM, then SIGKILL after this
  milliseconds startup_timeout{10000};  // spawned but not registered: killed
};

struct HealthSettings {
  milliseconds heartbeat_interval{1000};  // what collectors are told to use
  std::uint32_t heartbeat_misses = 3;     // silent this many intervals: failed
  milliseconds task_hang_timeout{120000}; // one task running longer: hung
};

struct ScheduleEntry {
  std::string task;  // task type or workflow name
  std::map<std::string, std::string> args;
  milliseconds interval{60000};
  int priority = 0;
};

enum class Aggregation : std::uint8_t { stream, batch, correlation };

struct AggregationSettings {
  Aggregation scheduled = Aggregation::batch;  // for scheduled single tasks
  std::uint32_t batch_size = 32;               // task results per batch
  milliseconds batch_timeout{2000};
  milliseconds correlation_timeout{30000};     // a workflow's parts must arrive within this
};

// The queue into the event store ([storage]). At its bound the agent stops
// taking results from the bus until the queue has drained to half.
struct StorageSettings {
  std::size_t max_queued_events = 200000;
  std::size_t max_queued_bytes = 64u << 20;  // estimated memory of the queued rows
  milliseconds retry_initial{250};           // a failed write is retried after this, doubling
  milliseconds retry_max{5000};
  std::chrono::microseconds write_delay{0};  // testing aid: a slow disk (sleep this per row written)
};

struct Settings {
  std::vector<CollectorSpec> collectors;
  SupervisorSettings supervisor;
  HealthSettings health;
  AggregationSettings aggregation;
  std::vector<ScheduleEntry> schedule;
  std::string database;                   // empty: storage::default_database_path(); "none": no storage
  // Collectors' spools (<state_dir>/<collector-id>). Empty: "spool" beside
  // the database; "none": unconfirmed results are kept in memory only.
  std::string state_dir;
  StorageSettings storage;
  std::chrono::hours retention{24 * 7};   // stored results older than this are pruned
  milliseconds task_deadline{60000};      // default deadline of a task
  std::uint32_t max_pending_tasks = 10000;
  // The broker's token file ([broker] token_file, --token-file), for the
  // agent's own clients and the collectors it starts when its endpoint is
  // TCP; empty: token_file_for()'s default. Set by the agent, not read from
  // the tables above.
  std::string token_file;
};

// The embedded defaults.
Settings default_settings();

// Reads the coordination tables of the TOML file at `path` over `out`
// (a [[collectors]] or [[schedule]] list in the file replaces the default
// list). Throws std::runtime_error "FILE: what is wrong".
void load_settings(const std::string& path, Settings& out);

const char* to_string(Aggregation a);

}  // namespace daemoneye::agent
