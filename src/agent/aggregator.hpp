#pragma once
// The result aggregator. Collectors send each task's records and then a
// completion; records are held per task run until the run's completion
// arrives, so only one run of a task (the first to complete) is ever
// aggregated: records of a run cut short by a crash, and duplicate runs
// after a redelivery, are discarded by task id.
//
// Completed task results are then grouped by one of the design's three
// strategies:
//   stream       each result is emitted the moment it completes;
//   batch        results are collected until batch_size of them or
//                batch_timeout has passed, then emitted together;
//   correlation  the parts of one workflow (tasks sharing a root
//                correlation id) are collected until every expected part
//                arrived or the workflow's timeout passed; what is missing
//                is named in the aggregate.
//
// Threading: used on the agent's I/O thread only.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <daemoneye/eventbus/message.hpp>

#include "agent/registry.hpp"
#include "agent/settings.hpp"

namespace daemoneye::agent {

struct ResultRecord {
  std::string topic;
  std::string kind;
  std::string payload;  // JSON object
  eventbus::Correlation correlation;
  std::int64_t time_ns = 0;
  std::string message_id;  // the collector's; confirmed once this record is stored or discarded
};

struct TaskResult {
  std::string task_id;
  std::string type;
  std::string collector_type;
  std::string collector;  // id of the collector whose run counted
  std::string status;     // ok | failed | unsupported | invalid-argument | cancelled | expired
  std::string detail;
  std::uint32_t attempts = 1;
  std::int64_t submitted_ns = 0;
  std::int64_t completed_ns = 0;
  eventbus::Correlation correlation;  // the task's own
  std::vector<ResultRecord> records;
  std::vector<std::string> confirm;  // message ids besides the records' (the completion's)
};

struct Aggregate {
  Aggregation strategy = Aggregation::stream;
  std::vector<TaskResult> results;
  // Correlation aggregates only.
  std::string workflow;       // workflow name
  std::string root_id;        // its root correlation id
  bool complete = true;
  std::vector<std::string> missing;  // "task-type (task id)" of parts that never completed
  std::int64_t started_ns = 0;
};

class ResultAggregator {
 public:
  using Sink = std::function<void(Aggregate&&)>;

  ResultAggregator(const AggregationSettings& settings, Sink sink);

  // A result record of some run (message with a run-id header). False when
  // the run already holds its maximum and the record was not kept.
  bool add_record(const std::string& run_id, const std::string& task_id, ResultRecord record);
  // Hands out (and forgets) the records of a run.
  std::vector<ResultRecord> take_run(const std::string& run_id);
  // Drops every buffered run of a task (after it finished one way or
  // another); the value is the message ids of the records dropped.
  std::vector<std::string> discard_task(const std::string& task_id);

  // Opens a workflow whose results are aggregated by correlation.
  void open_workflow(const std::string& root_id, const std::string& name,
                     std::vector<std::pair<std::string, std::string>> parts /* task id, type */,
                     Clock::time_point deadline);
  bool has_workflow(const std::string& root_id) const { return workflows_.count(root_id) != 0; }

  // A finished task result, to be aggregated by `strategy` (correlation: by
  // its root correlation id, which must name an open workflow).
  void add(TaskResult result, Aggregation strategy);

  // Emits batches and workflows whose time is up.
  void tick(Clock::time_point now);
  // Emits everything held (at shutdown).
  void flush_all();

  std::size_t buffered_runs() const { return runs_.size(); }

 private:
  struct Run {
    std::string task_id;
    std::vector<ResultRecord> records;
  };
  struct Workflow {
    std::string name;
    std::vector<std::pair<std::string, std::string>> parts;
    std::map<std::string, TaskResult> done;  // by task id
    Clock::time_point deadline;
    std::int64_t started_ns = 0;
  };

  void emit_batch();
  void emit_workflow(std::map<std::string, Workflow>::iterator it, bool timed_out);

  AggregationSettings settings_;
  Sink sink_;
  std::map<std::string, Run> runs_;  // by run id
  std::vector<TaskResult> batch_;
  Clock::time_point batch_started_{};
  std::map<std::string, Workflow> workflows_;  // by root correlation id
};

}  // namespace daemoneye::agent
