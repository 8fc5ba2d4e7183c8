#pragma once
// Writes aggregated results to the forensic store on a thread of its own, so
// that SQLite never delays the bus. Everything queued is written in order;
// what arrives while a transaction runs is written in the next one, so
// writes batch naturally under load. Results older than the retention are
// pruned once an hour.
//
// Threading: submit() may be called from any thread; stop() from one.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/event_store.hpp"

namespace daemoneye::agent {

class StorageWriter {
 public:
  // Opens (creating) the database; throws std::runtime_error on failure.
  StorageWriter(const std::string& path, std::chrono::hours retention);
  ~StorageWriter();  // stop()
  StorageWriter(const StorageWriter&) = delete;
  StorageWriter& operator=(const StorageWriter&) = delete;

  // Queues rows for the next transaction. `written`, if given, is called on
  // the writer's thread once they are committed (or failed to be).
  void submit(std::vector<storage::StoredEvent> events, std::vector<storage::TaskRecord> tasks,
              std::function<void()> written = {});
  // Writes what is queued, then ends the thread. Idempotent.
  void stop();

  const std::string& path() const { return path_; }
  std::uint64_t events_written() const;
  std::uint64_t write_errors() const;

 private:
  struct Work {
    std::vector<storage::StoredEvent> events;
    std::vector<storage::TaskRecord> tasks;
    std::function<void()> written;
  };
  void run();

  std::string path_;
  std::chrono::hours retention_;
  storage::EventStore store_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Work> queue_;
  bool stopping_ = false;
  std::uint64_t written_ = 0;
  std::uint64_t errors_ = 0;
  std::thread thread_;
};

}  // namespace daemoneye::agent
