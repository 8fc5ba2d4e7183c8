#include "agent/storage_writer.hpp"

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "process.hpp"

namespace daemoneye::agent {
namespace {

using namespace std::chrono_literals;

storage::StoredEvent event(const std::string& id, const std::string& topic = "events.filesystem.created") {
  storage::StoredEvent e;
  e.time_ns = 1;
  e.topic = topic;
  e.kind = "created";
  e.collector = "fsmond-1";
  e.payload = R"({"path":"/x"})";
  e.message_id = id;
  return e;
}

void exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 10s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}

struct Recorder {
  std::mutex mu;
  std::vector<std::string> confirmed;
  std::atomic<int> rooms{0};
  std::size_t count() {
    std::lock_guard lock(mu);
    return confirmed.size();
  }
};

class StorageWriterTest : public ::testing::Test {
 protected:
  std::unique_ptr<StorageWriter> make(StorageSettings limits = {}) {
    limits.retry_initial = 20ms;
    limits.retry_max = 100ms;
    return std::make_unique<StorageWriter>(
        path_, std::chrono::hours(24 * 365 * 100), limits,
        [this](std::vector<std::string> ids) {
          std::lock_guard lock(rec_.mu);
          rec_.confirmed.insert(rec_.confirmed.end(), ids.begin(), ids.end());
        },
        [this] { ++rec_.rooms; });
  }
  testing::TempDir dir_;
  std::string path_ = dir_.file("events.db");
  Recorder rec_;
};

TEST_F(StorageWriterTest, ConfirmsAndAnswersOnlyAfterTheCommit) {
  auto w = make();
  std::atomic<int> answered{0};
  std::atomic<bool> stored{false};
  w->submit({event("c/1/1"), event("c/1/2")}, {}, {"c/1/1", "c/1/2"}, [&](const StorageWriter::Outcome& o) {
    stored = o.stored;
    ++answered;
  });
  ASSERT_TRUE(eventually([&] { return rec_.count() == 2; }));
  EXPECT_EQ(answered.load(), 1);
  EXPECT_TRUE(stored.load());
  // The same ids again (a resend): confirmed again, stored once.
  w->submit({event("c/1/1")}, {}, {"c/1/1"});
  ASSERT_TRUE(eventually([&] { return rec_.count() == 3; }));
  const auto st = w->status();
  EXPECT_EQ(st.events_written, 2u);
  EXPECT_EQ(st.duplicates_skipped, 1u);
  EXPECT_EQ(st.queued_events, 0u);
  EXPECT_EQ(st.state, "ok");
}

TEST_F(StorageWriterTest, AFailingStoreHoldsTheRowsAnswersAtOnceAndRecoversByItself) {
  auto w = make();
  w->submit({event("c/1/1")}, {}, {"c/1/1"});
  ASSERT_TRUE(eventually([&] { return rec_.count() == 1; }));
  exec(path_, "ALTER TABLE events RENAME TO events_away");
  std::atomic<int> answered{0};
  std::string error;
  std::mutex mu;
  w->submit({event("c/1/2"), event("c/1/3")}, {}, {"c/1/2", "c/1/3"}, [&](const StorageWriter::Outcome& o) {
    std::lock_guard lock(mu);
    EXPECT_FALSE(o.stored);
    error = o.error;
    ++answered;
  });
  ASSERT_TRUE(eventually([&] { return answered.load() == 1; }));
  ASSERT_TRUE(eventually([&] { return w->status().failed_attempts >= 2; })) << "retried";
  auto st = w->status();
  EXPECT_EQ(st.state, "failing");
  EXPECT_FALSE(st.error.empty());
  EXPECT_EQ(st.queued_events, 2u) << "held back, not dropped";
  EXPECT_EQ(rec_.count(), 1u) << "nothing confirmed that is not committed";
  exec(path_, "ALTER TABLE events_away RENAME TO events");
  ASSERT_TRUE(eventually([&] { return rec_.count() == 3; }));
  st = w->status();
  EXPECT_EQ(st.state, "ok");
  EXPECT_EQ(st.events_written, 3u);
  EXPECT_EQ(st.queued_events, 0u);
  EXPECT_EQ(st.dropped_events, 0u);
  EXPECT_EQ(answered.load(), 1) << "answered once";
}

TEST_F(StorageWriterTest, RowsTheDatabaseRefusesAreDroppedCountedAndConfirmedTheRestStored) {
  auto w = make(StorageSettings{.write_delay = 30ms});
  exec(path_,
       "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.topic = 'bad' BEGIN SELECT RAISE(ABORT, 'no'); END");
  std::atomic<int> bad_answer{-1};
  // Both land in one transaction (the delay holds the writer).
  w->submit({event("c/1/1")}, {}, {"c/1/1"});
  w->submit({event("c/1/2", "bad")}, {}, {"c/1/2"},
            [&](const StorageWriter::Outcome& o) { bad_answer = o.stored ? 1 : 0; });
  w->submit({event("c/1/3")}, {}, {"c/1/3"});
  ASSERT_TRUE(eventually([&] { return rec_.count() == 3; }));
  const auto st = w->status();
  EXPECT_EQ(st.events_written, 2u);
  EXPECT_EQ(st.dropped_events, 1u);
  EXPECT_EQ(bad_answer.load(), 0);
  EXPECT_EQ(st.state, "ok");
}

TEST_F(StorageWriterTest, TheQueueIsBoundedAndSaysWhenThereIsRoomAgain) {
  StorageSettings limits;
  limits.max_queued_events = 100;
  limits.write_delay = 20ms;
  auto w = make(limits);
  for (int i = 0; i < 12; ++i) {
    std::vector<storage::StoredEvent> batch;
    std::vector<std::string> ids;
    for (int j = 0; j < 10; ++j) {
      const std::string id = "c/1/" + std::to_string(i * 10 + j);
      batch.push_back(event(id));
      ids.push_back(id);
    }
    w->submit(std::move(batch), {}, std::move(ids));
  }
  EXPECT_TRUE(w->full());
  EXPECT_EQ(w->status().full_episodes, 1u);
  ASSERT_TRUE(eventually([&] { return rec_.rooms.load() == 1; }));
  EXPECT_FALSE(w->full());
  ASSERT_TRUE(eventually([&] { return rec_.count() == 120; }));
  EXPECT_EQ(w->status().events_written, 120u);
}

}  // namespace
}  // namespace daemoneye::agent
