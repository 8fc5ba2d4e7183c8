#include "agent/aggregator.hpp"

#include "collector/protocol.hpp"

namespace daemoneye::agent {

namespace {
// A run whose completion never comes (its collector died) is dropped with
// its task; this bounds a single run meanwhile.
constexpr std::size_t kMaxRecordsPerRun = 1'000'000;
}  // namespace

ResultAggregator::ResultAggregator(const AggregationSettings& settings, Sink sink)
    : settings_(settings), sink_(std::move(sink)) {}

bool ResultAggregator::add_record(const std::string& run_id, const std::string& task_id, ResultRecord record) {
  auto& run = runs_[run_id];
  run.task_id = task_id;
  if (run.records.size() >= kMaxRecordsPerRun) return false;
  run.records.push_back(std::move(record));
  return true;
}

std::vector<ResultRecord> ResultAggregator::take_run(const std::string& run_id) {
  const auto it = runs_.find(run_id);
  if (it == runs_.end()) return {};
  auto records = std::move(it->second.records);
  runs_.erase(it);
  return records;
}

std::vector<std::string> ResultAggregator::discard_task(const std::string& task_id) {
  std::vector<std::string> ids;
  std::erase_if(runs_, [&](const auto& p) {
    if (p.second.task_id != task_id) return false;
    for (const auto& r : p.second.records) {
      if (!r.message_id.empty()) ids.push_back(r.message_id);
    }
    return true;
  });
  return ids;
}

void ResultAggregator::open_workflow(const std::string& root_id, const std::string& name,
                                     std::vector<std::pair<std::string, std::string>> parts,
                                     Clock::time_point deadline) {
  auto& w = workflows_[root_id];
  w.name = name;
  w.parts = std::move(parts);
  w.deadline = deadline;
  w.started_ns = collector::protocol::now_unix_ns();
}

void ResultAggregator::add(TaskResult result, Aggregation strategy) {
  switch (strategy) {
    case Aggregation::stream: {
      Aggregate a;
      a.strategy = Aggregation::stream;
      a.results.push_back(std::move(result));
      sink_(std::move(a));
      return;
    }
    case Aggregation::batch:
      if (batch_.empty()) batch_started_ = Clock::now();
      batch_.push_back(std::move(result));
      if (batch_.size() >= settings_.batch_size) emit_batch();
      return;
    case Aggregation::correlation: {
      const auto it = workflows_.find(result.correlation.root_correlation_id);
      if (it == workflows_.end()) {
        // Its workflow already closed (timed out): the late part still
        // counts as a result of its own.
        add(std::move(result), Aggregation::stream);
        return;
      }
      const std::string id = result.task_id;
      it->second.done.emplace(id, std::move(result));
      if (it->second.done.size() >= it->second.parts.size()) emit_workflow(it, false);
      return;
    }
  }
}

void ResultAggregator::tick(Clock::time_point now) {
  if (!batch_.empty() && now - batch_started_ >= settings_.batch_timeout) emit_batch();
  for (auto it = workflows_.begin(); it != workflows_.end();) {
    auto next = std::next(it);
    if (now >= it->second.deadline) emit_workflow(it, true);
    it = next;
  }
}

void ResultAggregator::flush_all() {
  if (!batch_.empty()) emit_batch();
  while (!workflows_.empty()) emit_workflow(workflows_.begin(), true);
}

void ResultAggregator::emit_batch() {
  Aggregate a;
  a.strategy = Aggregation::batch;
  a.results = std::move(batch_);
  batch_.clear();
  sink_(std::move(a));
}

void ResultAggregator::emit_workflow(std::map<std::string, Workflow>::iterator it, bool timed_out) {
  Aggregate a;
  a.strategy = Aggregation::correlation;
  a.workflow = it->second.name;
  a.root_id = it->first;
  a.started_ns = it->second.started_ns;
  for (const auto& [task_id, type] : it->second.parts) {
    auto done = it->second.done.find(task_id);
    if (done == it->second.done.end()) {
      a.missing.push_back(type + " (" + task_id + ")");
    } else {
      a.results.push_back(std::move(done->second));
    }
  }
  a.complete = a.missing.empty();
  (void)timed_out;
  workflows_.erase(it);
  sink_(std::move(a));
}

}  // namespace daemoneye::agent
