#pragma once
// A real, full daemoneye-agent for multi-process tests: it hosts the broker
// and supervises real collector processes (procmond, netmond, fsmond,
// perfmond from the build's bin/ directory), configured by a TOML file the
// test writes. Plus the ways a test looks at it: the agent's answers on
// control.agent.* (asked over a short-lived client connection, no child
// process) and its SQLite event store (opened read-only beside the agent).

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "process.hpp"
#include "storage/event_store.hpp"

namespace daemoneye::testing {

// Path of a collector program under test ("procmond", ...; set by CMake).
std::string collector_binary(const std::string& type);

// An endpoint of the platform's local kind for an agent under test: a named
// pipe unique to this test process on Windows, DIR/run/bus.sock elsewhere.
std::string local_endpoint(const TempDir& dir);

// One request to the agent on `topic` over a fresh client connection; the
// reply parsed as JSON, or nullopt when nobody answers within `timeout`.
std::optional<nlohmann::json> agent_request(const std::string& socket, const std::string& topic,
                                            const std::string& payload,
                                            std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Calls `pred` every `interval` until it holds or `timeout` passes. For
// conditions that are costly to evaluate (a request to the agent, a
// database query), where wait_until's 5 ms would load the system under test.
bool poll_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = std::chrono::milliseconds(50));

// `daemoneye-agent --config DIR/agent.toml --socket ENDPOINT (local_endpoint)
// --database DIR/state/events.db --log-level debug`. The collectors it
// starts log to the same stderr file (they inherit it).
class AgentProcess {
 public:
  // Writes `toml` as the configuration and starts the agent; returns once
  // it answers control.agent.collectors (its coordinator runs). Throws
  // std::runtime_error, with the agent's log, if it exits or does not
  // answer within 30 s.
  AgentProcess(const TempDir& dir, const std::string& toml);
  // Stops the agent (SIGTERM, SIGKILL after 15 s; on Windows the stop event,
  // then TerminateProcess), then kills by pid (kill_pid) any collector
  // process it reported that still runs (one the test stopped with SIGSTOP
  // ignores the agent's SIGTERM and its own parent-death signal), so a
  // failed test leaves nothing behind.
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  const std::string& socket() const noexcept { return socket_; }
  const std::string& database() const noexcept { return database_; }
  const std::string& config_path() const noexcept { return config_; }
  Process& process() noexcept { return *proc_; }
  int pid() const noexcept { return proc_->pid(); }
  // When the agent first answered: its coordinator had started by then.
  std::chrono::steady_clock::time_point answered_at() const noexcept { return answered_at_; }

  // Replaces the configuration file (for a SIGHUP reload).
  void write_config(const std::string& toml) const;

  // The agent's control.agent.collectors document (what `daemoneye-cli
  // collectors --json` prints); every pid in it is remembered for the
  // clean-up.
  std::optional<nlohmann::json> collectors();
  // Polls collectors() until `pred` holds for a document; the last one is
  // left in `last` (if given).
  bool wait_collectors(const std::function<bool(const nlohmann::json&)>& pred, std::chrono::milliseconds timeout,
                       nlohmann::json* last = nullptr);

  // The agent's stderr (its log and its collectors'), and its last `n` lines.
  std::string log() const { return proc_->err(); }
  std::string log_tail(std::size_t n) const;

  // Stops the agent with SIGTERM; its exit code, or -1 if it was still
  // running after `grace` (then it was killed).
  int stop(std::chrono::milliseconds grace);

 private:
  void remember_pids(const nlohmann::json& list);
  void kill_leftovers();

  std::string socket_;
  std::string database_;
  std::string config_;
  std::unique_ptr<Process> proc_;
  std::chrono::steady_clock::time_point answered_at_{};
  std::set<int> seen_pids_;
};

// --- reading control.agent.collectors documents ----------------------------------

// The entry with this id, or nullptr.
const nlohmann::json* find_collector(const nlohmann::json& list, const std::string& id);
// Ids of the entries of `type` (all if empty), in document order.
std::vector<std::string> collector_ids(const nlohmann::json& list, const std::string& type = {});
// True when the entry runs and has sent a heartbeat from its current process
// (so it has joined its queue group).
bool is_live(const nlohmann::json& collector);
// True when exactly `count` entries of `type` exist and all are live.
bool all_live(const nlohmann::json& list, const std::string& type, std::size_t count);
// A number field of an entry, or `fallback` when the entry or field is missing.
std::int64_t field(const nlohmann::json& list, const std::string& id, const char* key, std::int64_t fallback = -1);

// --- reading the event store --------------------------------------------------------

// Every task record (nullopt while the database cannot be read, e.g. not
// created yet).
std::optional<std::vector<storage::TaskRecord>> stored_tasks(const std::string& db,
                                                             const std::string& correlation = {});
// Every stored event matching `q` (its limit is ignored: all rows).
std::optional<std::vector<storage::StoredEvent>> stored_events(const std::string& db, storage::EventQuery q);

}  // namespace daemoneye::testing
