#include "agent/distributor.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "collector/protocol.hpp"

namespace daemoneye::agent {

namespace protocol = collector::protocol;

namespace {
// How many finished task ids are remembered to recognise duplicates.
constexpr std::size_t kFinishedMemory = 65536;
}  // namespace

TaskDistributor::TaskDistributor(const CollectorRegistry& registry, const Settings& settings, Publish publish)
    : registry_(registry), settings_(settings), publish_(std::move(publish)) {}

std::uint32_t TaskDistributor::prefetch(const std::string& collector_type) const {
  for (const auto& c : settings_.collectors) {
    if (c.type == collector_type) return c.prefetch;
  }
  return CollectorSpec{}.prefetch;  // a collector type the agent does not run itself
}

std::variant<TaskEntry, std::string> TaskDistributor::submit(TaskRequest request, bool discovering) {
  if (request.type.empty()) return std::string("a task needs a type");
  if (tasks_.size() >= settings_.max_pending_tasks) {
    return "too many tasks pending (" + std::to_string(tasks_.size()) + ")";
  }
  TaskEntry e;
  e.task.id = protocol::new_id();
  e.task.type = std::move(request.type);
  e.task.args = std::move(request.args);
  e.task.priority = request.priority;
  const auto deadline = request.deadline.count() > 0 ? request.deadline : settings_.task_deadline;
  e.deadline = Clock::now() + deadline;
  e.task.deadline = std::chrono::system_clock::now() + deadline;
  e.origin = request.origin;
  e.requires_caps = request.requires_caps;
  e.submitted_ns = protocol::now_unix_ns();
  e.order = next_order_++;
  // The task's own correlation: its id is the task id, so every result's
  // parent names the task; a task outside any workflow is its own root.
  auto& c = e.task.correlation;
  c = std::move(request.correlation);
  c.correlation_id = e.task.id;
  if (c.root_correlation_id.empty()) c.root_correlation_id = e.task.id;
  if (c.workflow_stage.empty()) c.workflow_stage = "collection";
  c.source_process = "daemoneye-agent";
  if (!route(e) && !discovering) {
    return "no collector offers task type '" + e.task.type + "'" +
           (e.requires_caps.empty() ? std::string() : " with the required capabilities");
  }
  const std::string id = e.task.id;
  auto [it, inserted] = tasks_.emplace(id, std::move(e));
  dispatch();
  return it->second;
}

bool TaskDistributor::route(TaskEntry& e) {
  if (!e.collector_type.empty()) return true;
  const auto routes = registry_.routes_for(e.task.type, e.requires_caps);
  if (routes.empty()) return false;
  e.collector_type = routes.front().collector_type;
  e.task_topic = routes.front().task_topic;
  return true;
}

void TaskDistributor::dispatch() {
  // In flight per collector type, and the candidates in priority order.
  std::map<std::string, std::size_t> busy;
  std::vector<TaskEntry*> waiting;
  for (auto& [id, e] : tasks_) {
    if (e.dispatched || e.confirming) {
      ++busy[e.collector_type];
    } else if (route(e)) {
      waiting.push_back(&e);
    }
  }
  std::sort(waiting.begin(), waiting.end(), [](const TaskEntry* a, const TaskEntry* b) {
    return a->task.priority != b->task.priority ? a->task.priority > b->task.priority : a->order < b->order;
  });
  for (TaskEntry* e : waiting) {
    const std::size_t window =
        std::max<std::size_t>(1, registry_.live_members(e->collector_type)) * prefetch(e->collector_type);
    auto& n = busy[e->collector_type];
    if (n >= window) continue;
    ++n;
    e->confirming = true;
    const std::string id = e->task.id;
    publish_(*e, [this, id](bool delivered) {
      const auto it = tasks_.find(id);
      if (it == tasks_.end()) return;  // finished or expired meanwhile
      it->second.confirming = false;
      it->second.dispatched = delivered;
      // Not taken (no group exists yet, e.g. before the first collector of
      // its type joined): it waits here and is tried again.
      if (!delivered) spdlog::debug("task {} not taken yet; will retry", id);
    });
  }
}

std::optional<TaskEntry> TaskDistributor::complete(const std::string& task_id) {
  const auto it = tasks_.find(task_id);
  if (it == tasks_.end()) {
    if (finished_.count(task_id)) ++duplicates_;
    return std::nullopt;
  }
  TaskEntry e = std::move(it->second);
  tasks_.erase(it);
  remember_finished(task_id);
  ++completed_;
  dispatch();
  return e;
}

std::vector<TaskEntry> TaskDistributor::expire(Clock::time_point now) {
  std::vector<TaskEntry> out;
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    if (now >= it->second.deadline) {
      remember_finished(it->first);
      out.push_back(std::move(it->second));
      it = tasks_.erase(it);
      ++expired_;
    } else {
      ++it;
    }
  }
  if (!out.empty()) dispatch();
  return out;
}

void TaskDistributor::remember_finished(const std::string& id) {
  if (finished_order_.size() < kFinishedMemory) {
    finished_order_.push_back(id);
  } else {
    finished_.erase(finished_order_[finished_head_]);
    finished_order_[finished_head_] = id;
    finished_head_ = (finished_head_ + 1) % kFinishedMemory;
  }
  finished_.insert(id);
}

std::size_t TaskDistributor::pending() const {
  return static_cast<std::size_t>(
      std::count_if(tasks_.begin(), tasks_.end(), [](const auto& p) { return !p.second.dispatched; }));
}

std::size_t TaskDistributor::in_flight() const { return tasks_.size() - pending(); }

}  // namespace daemoneye::agent
