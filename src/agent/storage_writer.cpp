#include "agent/storage_writer.hpp"

#include <spdlog/spdlog.h>

#include "collector/protocol.hpp"

namespace daemoneye::agent {

StorageWriter::StorageWriter(const std::string& path, std::chrono::hours retention)
    : path_(path),
      retention_(retention),
      store_(storage::EventStore::open(path, storage::EventStore::Mode::read_write)),
      thread_([this] { run(); }) {}

StorageWriter::~StorageWriter() { stop(); }

void StorageWriter::submit(std::vector<storage::StoredEvent> events, std::vector<storage::TaskRecord> tasks,
                           std::function<void()> written) {
  if (events.empty() && tasks.empty() && !written) return;
  {
    std::lock_guard lock(mu_);
    queue_.push_back({std::move(events), std::move(tasks), std::move(written)});
  }
  cv_.notify_one();
}

void StorageWriter::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t StorageWriter::events_written() const {
  std::lock_guard lock(mu_);
  return written_;
}

std::uint64_t StorageWriter::write_errors() const {
  std::lock_guard lock(mu_);
  return errors_;
}

void StorageWriter::run() {
  auto next_prune = std::chrono::steady_clock::now();
  for (;;) {
    std::deque<Work> work;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::minutes(1), [&] { return stopping_ || !queue_.empty(); });
      work.swap(queue_);
      if (work.empty() && stopping_) return;
    }
    std::vector<storage::StoredEvent> events;
    for (auto& w : work) {
      events.insert(events.end(), std::make_move_iterator(w.events.begin()), std::make_move_iterator(w.events.end()));
    }
    std::uint64_t failed = 0;
    if (!events.empty()) {
      if (auto r = store_.append(events); !r) {
        spdlog::error("storing {} results in {}: {}", events.size(), path_, r.describe());
        ++failed;
      }
    }
    for (auto& w : work) {
      for (const auto& t : w.tasks) {
        if (auto r = store_.record_task(t); !r) {
          spdlog::error("storing task {}: {}", t.task_id, r.describe());
          ++failed;
        }
      }
    }
    {
      std::lock_guard lock(mu_);
      if (failed == 0) written_ += events.size();
      errors_ += failed;
    }
    for (auto& w : work) {
      if (w.written) w.written();
    }
    if (std::chrono::steady_clock::now() >= next_prune) {
      next_prune = std::chrono::steady_clock::now() + std::chrono::hours(1);
      const auto cutoff = collector::protocol::now_unix_ns() -
                          std::chrono::duration_cast<std::chrono::nanoseconds>(retention_).count();
      if (auto r = store_.prune(cutoff); r && *r > 0) spdlog::info("pruned {} stored rows past the retention", *r);
    }
  }
}

}  // namespace daemoneye::agent
