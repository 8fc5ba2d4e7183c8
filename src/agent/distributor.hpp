#pragma once
// The task distributor: accepts tasks (scheduled, on demand, or as parts of
// a workflow), routes each by the capability it requires to the queue group
// of a collector type that offers it, and tracks it until its first
// completion or its deadline. Higher priorities are dispatched first; each
// collector type gets at most (live members x prefetch) tasks at once, the
// rest wait here, so priorities still matter under load.
//
// Redelivery after a collector failure is the broker's job (tasks go to a
// manual-ack queue group); the distributor only needs to recognise the
// duplicate completions that redelivery may cause, by task id.
//
// Threading: used on the agent's I/O thread only.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <daemoneye/collector/event_source.hpp>

#include "agent/registry.hpp"
#include "agent/settings.hpp"

namespace daemoneye::agent {

enum class Origin : std::uint8_t { scheduled, request, workflow };

struct TaskRequest {
  std::string type;
  std::map<std::string, std::string> args;
  int priority = 0;
  std::chrono::milliseconds deadline{0};  // 0: the configured default
  collector::Capabilities requires_caps;  // beyond what the task type implies
  Origin origin = Origin::request;
  eventbus::Correlation correlation;      // parent/root/stage for workflow parts; ids are filled in
};

struct TaskEntry {
  collector::Task task;  // id, type, args, priority, deadline, correlation
  Origin origin = Origin::request;
  collector::Capabilities requires_caps;
  std::string collector_type;  // empty until routed
  std::string task_topic;
  bool dispatched = false;
  bool confirming = false;     // a publish awaits the broker's confirmation
  Clock::time_point deadline{};
  std::int64_t submitted_ns = 0;
  std::uint64_t order = 0;     // FIFO among equal priorities
};

class TaskDistributor {
 public:
  // Publishes a task to its topic; calls `done(true)` when the broker took
  // it (some queue group holds it), `done(false)` otherwise.
  using Publish = std::function<void(const TaskEntry&, std::function<void(bool)> done)>;

  TaskDistributor(const CollectorRegistry& registry, const Settings& settings, Publish publish);

  // Accepts a task: its id, or why not (no collector offers the type, too
  // many pending). A type nobody offers yet is accepted while `discovering`
  // (collectors still starting), and waits for them.
  std::variant<TaskEntry, std::string> submit(TaskRequest request, bool discovering);

  // Sends what the windows allow, best priority first.
  void dispatch();

  // The first completion of a task ends it: returns its entry. Later ones
  // (duplicates after a redelivery, or a task that already expired) return
  // nullopt.
  std::optional<TaskEntry> complete(const std::string& task_id);

  // Tasks past their deadline, removed from tracking.
  std::vector<TaskEntry> expire(Clock::time_point now);

  bool finished(const std::string& task_id) const { return finished_.count(task_id) != 0; }
  // Pending, in flight or recently finished: a task this agent gave out.
  bool known(const std::string& task_id) const { return tasks_.count(task_id) != 0 || finished(task_id); }
  std::size_t pending() const;
  std::size_t in_flight() const;
  std::uint64_t completed() const { return completed_; }
  std::uint64_t expired() const { return expired_; }
  std::uint64_t duplicates() const { return duplicates_; }

 private:
  bool route(TaskEntry& e);
  std::uint32_t prefetch(const std::string& collector_type) const;
  void remember_finished(const std::string& id);

  const CollectorRegistry& registry_;
  const Settings& settings_;
  Publish publish_;
  std::map<std::string, TaskEntry> tasks_;   // by task id: pending and in flight
  std::set<std::string> finished_;            // recently finished ids (bounded)
  std::vector<std::string> finished_order_;
  std::size_t finished_head_ = 0;
  std::uint64_t next_order_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t expired_ = 0;
  std::uint64_t duplicates_ = 0;
};

}  // namespace daemoneye::agent
