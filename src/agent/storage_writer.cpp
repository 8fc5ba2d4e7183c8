#include "agent/storage_writer.hpp"

#include <sqlite3.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "collector/protocol.hpp"
#include "platform/resources.hpp"

namespace daemoneye::agent {

namespace {

// An estimate of what a queued row costs in memory: its strings plus the
// fixed part of the structures around them.
std::size_t bytes_of(const storage::StoredEvent& e) {
  const auto& c = e.correlation;
  std::size_t n = sizeof(e) + e.topic.size() + e.kind.size() + e.collector.size() + e.task_id.size() +
                  e.payload.size() + e.message_id.size() + c.correlation_id.size() + c.parent_correlation_id.size() +
                  c.root_correlation_id.size() + c.workflow_stage.size() + c.source_process.size();
  for (const auto& [k, v] : c.tags) n += k.size() + v.size() + 64;
  return n;
}

std::size_t bytes_of(const storage::TaskRecord& t) {
  return sizeof(t) + t.task_id.size() + t.type.size() + t.domain.size() + t.status.size() + t.collector.size() +
         t.error.size() + t.correlation_id.size() + t.root_correlation_id.size();
}

// Errors that are about the rows themselves: retrying the same rows cannot
// succeed. Everything else (full, read-only, locked, busy, I/O, corrupt,
// cannot open) is a condition of the database that may clear.
bool refused_for_content(const std::error_code& ec) {
  if (ec.category() != storage::sqlite_category()) return false;
  switch (ec.value()) {
    case SQLITE_TOOBIG:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return true;
    default:
      return false;
  }
}

// Resident memory is handed back once a burst of this many queued bytes has drained.
constexpr std::size_t kTrimAfterBytes = 8u << 20;

}  // namespace

StorageWriter::StorageWriter(const std::string& path, std::chrono::hours retention, StorageLimits limits,
                             Committed committed, std::function<void()> room)
    : path_(path),
      retention_(retention),
      limits_(limits),
      committed_(std::move(committed)),
      room_(std::move(room)),
      store_(storage::EventStore::open(path, storage::EventStore::Mode::read_write)),
      thread_([this] { run(); }) {}

StorageWriter::~StorageWriter() { stop(); }

void StorageWriter::submit(std::vector<storage::StoredEvent> events, std::vector<storage::TaskRecord> tasks,
                           std::vector<std::string> confirm, Written written) {
  if (events.empty() && tasks.empty() && confirm.empty() && !written) return;
  Work w{std::move(events), std::move(tasks), std::move(confirm), std::move(written), 0, false};
  w.bytes = sizeof(Work);
  for (const auto& e : w.events) w.bytes += bytes_of(e);
  for (const auto& t : w.tasks) w.bytes += bytes_of(t);
  for (const auto& id : w.confirm) w.bytes += id.size() + sizeof(id);
  {
    std::lock_guard lock(mu_);
    if (status_.state == "failing" && w.written) {
      // Whoever waits learns at once that the store is failing.
      w.written(Outcome{false, status_.error});
      w.answered = true;
    }
    status_.queued_events += w.events.size();
    status_.queued_bytes += w.bytes;
    if (!full_ && (status_.queued_events >= limits_.max_queued_events ||
                   status_.queued_bytes >= limits_.max_queued_bytes)) {
      full_ = true;
      ++status_.full_episodes;
    }
    queue_.push_back(std::move(w));
  }
  cv_.notify_one();
}

bool StorageWriter::full() const {
  std::lock_guard lock(mu_);
  return full_;
}

StorageStatus StorageWriter::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

void StorageWriter::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool StorageWriter::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [&] { return stopping_; });
}

void StorageWriter::reopen() {
  store_.reset();
  try {
    store_.emplace(storage::EventStore::open(path_, storage::EventStore::Mode::read_write));
  } catch (const std::exception& e) {
    spdlog::debug("reopening the event store: {}", e.what());
  }
}

std::optional<std::pair<std::string, bool>> StorageWriter::write(std::deque<Work>& work) {
  if (!store_) return std::pair<std::string, bool>{"the database cannot be opened", false};
  const auto outcome = [&](const storage::Result<storage::EventStore::Written>& r)
      -> std::optional<std::pair<std::string, bool>> {
    if (!r) return std::pair<std::string, bool>{r.describe(), refused_for_content(r.error())};
    std::lock_guard lock(mu_);
    status_.events_written += r->events;
    status_.duplicates_skipped += r->duplicates;
    status_.tasks_written += r->tasks;
    return std::nullopt;
  };
  // The common case under light load: no copies.
  if (work.size() == 1) return outcome(store_->write(work.front().events, work.front().tasks));
  std::vector<storage::StoredEvent> events;
  std::vector<storage::TaskRecord> tasks;
  std::size_t ne = 0, nt = 0;
  for (const auto& w : work) {
    ne += w.events.size();
    nt += w.tasks.size();
  }
  events.reserve(ne);
  tasks.reserve(nt);
  // Moved in and moved back, so a failed attempt keeps the rows for the next.
  for (auto& w : work) {
    std::move(w.events.begin(), w.events.end(), std::back_inserter(events));
    std::move(w.tasks.begin(), w.tasks.end(), std::back_inserter(tasks));
  }
  auto r = store_->write(events, tasks);
  std::size_t ei = 0, ti = 0;
  for (auto& w : work) {
    for (auto& e : w.events) e = std::move(events[ei++]);
    for (auto& t : w.tasks) t = std::move(tasks[ti++]);
  }
  return outcome(r);
}

void StorageWriter::finish(std::deque<Work>& work, bool stored, const std::string& error) {
  std::vector<std::string> confirm;
  std::size_t events = 0, bytes = 0, tasks = 0;
  for (auto& w : work) {
    if (!w.answered && w.written) w.written(Outcome{stored, error});
    events += w.events.size();
    tasks += w.tasks.size();
    bytes += w.bytes;
    if (confirm.empty()) {
      confirm = std::move(w.confirm);
    } else {
      std::move(w.confirm.begin(), w.confirm.end(), std::back_inserter(confirm));
    }
  }
  work.clear();
  if (!confirm.empty() && committed_) committed_(std::move(confirm));
  bool room = false, trim = false;
  {
    std::lock_guard lock(mu_);
    if (!stored) {
      status_.dropped_events += events;
      status_.dropped_tasks += tasks;
    }
    status_.queued_events -= std::min(status_.queued_events, events);
    status_.queued_bytes -= std::min(status_.queued_bytes, bytes);
    if (full_ && status_.queued_events <= limits_.max_queued_events / 2 &&
        status_.queued_bytes <= limits_.max_queued_bytes / 2) {
      full_ = false;
      room = true;
    }
    drained_since_trim_ += bytes;
    trim = status_.queued_bytes == 0 && queue_.empty() && drained_since_trim_ >= kTrimAfterBytes;
    if (trim) drained_since_trim_ = 0;
  }
  if (room && room_) room_();
  if (trim) platform::release_free_memory();
}

void StorageWriter::fail(std::deque<Work>& work, const std::string& error) {
  std::size_t held = 0;
  bool first = false;
  {
    std::lock_guard lock(mu_);
    ++status_.failed_attempts;
    first = status_.state != "failing";
    if (first) {
      status_.state = "failing";
      status_.failing_since_ns = collector::protocol::now_unix_ns();
    }
    status_.error = error;
    held = status_.queued_events;
  }
  if (first) {
    spdlog::error("event store {} failing: {}; holding {} results and retrying (the bus keeps running)", path_,
                  error, held);
  }
  // Whoever waits for these rows, or for rows queued behind them, learns
  // now that they are not stored yet.
  for (auto& w : work) {
    if (!w.answered && w.written) w.written(Outcome{false, error});
    w.answered = true;
  }
  std::lock_guard lock(mu_);
  for (auto& w : queue_) {
    if (!w.answered && w.written) w.written(Outcome{false, error});
    w.answered = true;
  }
}

void StorageWriter::run() {
  auto next_prune = std::chrono::steady_clock::now();
  auto backoff = limits_.retry_initial;
  std::deque<Work> batch;  // taken from the queue and not yet finished
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      if (batch.empty()) {
        cv_.wait_for(lock, std::chrono::minutes(1), [&] { return stopping_ || !queue_.empty(); });
        batch.swap(queue_);
      }
      stopping = stopping_;
    }
    if (batch.empty()) {
      if (stopping) return;
    } else {
      if (limits_.write_delay.count() > 0) {
        std::size_t rows = 0;
        for (const auto& w : batch) rows += w.events.size() + w.tasks.size();
        std::this_thread::sleep_for(limits_.write_delay * static_cast<std::int64_t>(rows));
      }
      auto err = write(batch);
      if (err && err->second) {
        // Some submission's rows are refused: find it by writing each
        // alone; the others are stored (or held, if the store fails now).
        std::deque<Work> held;
        for (auto& w : batch) {
          std::deque<Work> one;
          one.push_back(std::move(w));
          auto e = write(one);
          if (!e) {
            finish(one, true, {});
          } else if (e->second) {
            spdlog::error("event store {} refused {} results and {} task records for good, dropped: {}", path_,
                          one.front().events.size(), one.front().tasks.size(), e->first);
            finish(one, false, e->first);
          } else {
            held.push_back(std::move(one.front()));
            err = e;
          }
        }
        batch.swap(held);
        if (batch.empty()) err.reset();
      }
      if (!err) {
        finish(batch, true, {});
        backoff = limits_.retry_initial;
        std::string was;
        std::int64_t since = 0;
        {
          std::lock_guard lock(mu_);
          if (status_.state == "failing") {
            was = status_.error;
            since = status_.failing_since_ns;
            status_.state = "ok";
            status_.error.clear();
            status_.failing_since_ns = 0;
          }
        }
        if (!was.empty()) {
          spdlog::warn("event store {} recovered after {} s ({}); writing what was held back", path_,
                       (collector::protocol::now_unix_ns() - since) / 1'000'000'000, was);
        }
      } else {
        fail(batch, err->first);
        if (stopping || !sleep_for(backoff)) {
          // One last attempt with everything still queued.
          {
            std::lock_guard lock(mu_);
            std::move(queue_.begin(), queue_.end(), std::back_inserter(batch));
            queue_.clear();
          }
          reopen();
          if (write(batch)) {
            std::size_t n = 0;
            for (const auto& w : batch) n += w.events.size();
            spdlog::error("event store {}: {} results not stored at shutdown ({}); collectors resend what they "
                          "published on their next start",
                          path_, n, err->first);
            return;
          }
          finish(batch, true, {});
          continue;
        }
        backoff = std::min(backoff * 2, limits_.retry_max);
        reopen();
        continue;
      }
    }
    if (std::chrono::steady_clock::now() >= next_prune && store_) {
      next_prune = std::chrono::steady_clock::now() + std::chrono::hours(1);
      const auto cutoff = collector::protocol::now_unix_ns() -
                          std::chrono::duration_cast<std::chrono::nanoseconds>(retention_).count();
      if (auto r = store_->prune(cutoff); r && *r > 0) spdlog::info("pruned {} stored rows past the retention", *r);
    }
  }
}

}  // namespace daemoneye::agent
