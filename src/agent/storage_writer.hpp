#pragma once
// Writes aggregated results to the forensic store on a thread of its own, so
// that SQLite never delays the bus.
//
// Contract:
//   - Everything submitted is written in order; what arrives while a
//     transaction runs goes into the next one, so writes batch under load.
//     One submission's events and task records commit together or not at all.
//   - The queue is bounded (StorageSettings): full() turns true at the bound and
//     the owner stops taking events (the agent pauses its results intake);
//     `room` is called once the queue has drained to half the bound. submit()
//     itself never blocks and never drops.
//   - A failed write (disk full, read-only, locked, corrupt, I/O error) is
//     held and retried with backoff, reopening the database, until it
//     succeeds: the condition is logged once when it starts and once when it
//     clears, and reported by status(). Only a batch the database refuses
//     for its content (too big, a constraint) is finally dropped, after it
//     was retried alone; such drops are counted and logged.
//   - Each submission's `written` is called exactly once: with stored=true
//     after its commit, or with stored=false and the error at its first
//     failed attempt or, submitted while the store is failing, at once from
//     submit() (it stays queued and is retried all the same).
//   - `committed` receives the confirmation ids of every submission that was
//     committed, or finally dropped, once per transaction.
//
// Threading: submit(), full() and status() may be called from any thread;
// stop() from one. The callbacks run on the writer's thread (`written`
// also on submit()'s caller's, see above).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/settings.hpp"
#include "storage/event_store.hpp"

namespace daemoneye::agent {

using StorageLimits = StorageSettings;

// What the writer is doing, for operators (status and metrics).
struct StorageStatus {
  std::string state = "ok";  // ok | failing
  std::string error;         // the last failure while failing
  std::int64_t failing_since_ns = 0;
  std::size_t queued_events = 0;  // waiting for a transaction (held back while failing)
  std::size_t queued_bytes = 0;
  std::uint64_t events_written = 0;
  std::uint64_t duplicates_skipped = 0;  // events whose message id was already stored
  std::uint64_t tasks_written = 0;
  std::uint64_t failed_attempts = 0;     // transactions that failed (each retry counts)
  std::uint64_t dropped_events = 0;      // finally refused by the database (see above)
  std::uint64_t dropped_tasks = 0;
  std::uint64_t full_episodes = 0;       // times the queue reached its bound
};

class StorageWriter {
 public:
  struct Outcome {
    bool stored = false;
    std::string error;
  };
  using Written = std::function<void(const Outcome&)>;
  using Committed = std::function<void(std::vector<std::string> confirm_ids)>;

  // Opens (creating) the database; throws std::runtime_error on failure.
  StorageWriter(const std::string& path, std::chrono::hours retention, StorageLimits limits, Committed committed,
                std::function<void()> room);
  ~StorageWriter();  // stop()
  StorageWriter(const StorageWriter&) = delete;
  StorageWriter& operator=(const StorageWriter&) = delete;

  // Queues rows for the next transaction; `confirm` names the bus messages
  // (collector message ids) that these rows make durable.
  void submit(std::vector<storage::StoredEvent> events, std::vector<storage::TaskRecord> tasks,
              std::vector<std::string> confirm = {}, Written written = {});
  // True while the queue is at its bound.
  bool full() const;
  // Writes what is queued (one last attempt if the store is failing), then
  // ends the thread. Idempotent.
  void stop();

  const std::string& path() const { return path_; }
  StorageStatus status() const;

 private:
  struct Work {
    std::vector<storage::StoredEvent> events;
    std::vector<storage::TaskRecord> tasks;
    std::vector<std::string> confirm;
    Written written;
    std::size_t bytes = 0;
    bool answered = false;
  };
  void run();
  // One transaction over `work`; nullopt on success, else the error and
  // whether the data itself was refused.
  std::optional<std::pair<std::string, bool>> write(std::deque<Work>& work);
  void finish(std::deque<Work>& work, bool stored, const std::string& error);
  void fail(std::deque<Work>& work, const std::string& error);
  bool sleep_for(std::chrono::milliseconds d);  // false when stopping
  void reopen();

  std::string path_;
  std::chrono::hours retention_;
  StorageLimits limits_;
  Committed committed_;
  std::function<void()> room_;
  std::optional<storage::EventStore> store_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Work> queue_;
  bool stopping_ = false;
  bool full_ = false;
  std::size_t drained_since_trim_ = 0;
  StorageStatus status_;
  std::thread thread_;
};

}  // namespace daemoneye::agent
