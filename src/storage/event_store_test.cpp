#include "storage/event_store.hpp"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "platform/files.hpp"
#include "process.hpp"

namespace daemoneye::storage {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kT0 = 1'795'860'000 * kSecond;  // 2026-11-28T10:00:00Z

StoredEvent event(std::int64_t t, std::string topic, std::string corr, std::string parent = {}, std::string root = {}) {
  StoredEvent e;
  e.time_ns = t;
  e.topic = std::move(topic);
  e.kind = "process";
  e.collector = "procmond-1";
  e.correlation.correlation_id = std::move(corr);
  e.correlation.parent_correlation_id = std::move(parent);
  e.correlation.root_correlation_id = std::move(root);
  e.payload = R"({"pid":1})";
  return e;
}

TaskRecord task(std::string id, std::int64_t submitted, std::string corr, std::string root) {
  TaskRecord t;
  t.task_id = std::move(id);
  t.type = "enumerate_processes";
  t.domain = "process";
  t.status = "ok";
  t.collector = "procmond-1";
  t.submitted_ns = submitted;
  t.completed_ns = submitted + kSecond;
  t.records = 3;
  t.correlation_id = std::move(corr);
  t.root_correlation_id = std::move(root);
  return t;
}

std::vector<std::string> topics(const std::vector<StoredEvent>& events) {
  std::vector<std::string> v;
  for (const auto& e : events) v.push_back(e.topic);
  return v;
}

// A plain sqlite3 connection, to look at the file as an investigator would.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      throw std::runtime_error("raw open failed");
    }
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string msg = err != nullptr ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(sql + ": " + msg);
    }
  }
  // The first column of the first row as text ("<null>" for NULL).
  std::string text(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) throw std::runtime_error(sql);
    std::string out = "<none>";
    if (sqlite3_step(st) == SQLITE_ROW) {
      const auto* p = sqlite3_column_text(st, 0);
      out = p != nullptr ? reinterpret_cast<const char*>(p) : "<null>";
    }
    sqlite3_finalize(st);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

class EventStoreTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  std::string path_ = dir_.file("state/daemoneye/events.db");
  EventStore store_ = EventStore::open(path_, EventStore::Mode::read_write);

  void append(const std::vector<StoredEvent>& events) {
    auto r = store_.append(events);
    ASSERT_TRUE(r) << r.describe();
  }
  std::vector<StoredEvent> query(const EventQuery& q) {
    auto r = store_.query(q);
    EXPECT_TRUE(r) << r.describe();
    return r ? *r : std::vector<StoredEvent>{};
  }
  std::vector<std::string> query_topics(const EventQuery& q) { return topics(query(q)); }
};

TEST_F(EventStoreTest, RoundTripKeepsEveryFieldIncludingTagsAndCorrelation) {
  StoredEvent e;
  e.id = 999;  // ignored: the store assigns ids
  e.time_ns = kT0 + 123456789;
  e.topic = "events.process.process";
  e.kind = "process";
  e.collector = "procmond-1";
  e.task_id = "task-42";
  e.correlation = {"corr-child",
                   "corr-parent",
                   "corr-root",
                   std::numeric_limits<std::uint64_t>::max(),
                   "enumerate",
                   "daemoneye-agent",
                   {{"host", "web-1"}, {"quote", "a \"b\" ü"}}};
  e.payload = R"({"pid":4242,"name":"sshd","cmdline":["/usr/sbin/sshd","-D"],"ünïcode":"✓"})";
  append({e});

  const auto got = query({});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_GT(got[0].id, 0);
  EXPECT_EQ(got[0].time_ns, e.time_ns);
  EXPECT_EQ(got[0].topic, e.topic);
  EXPECT_EQ(got[0].kind, e.kind);
  EXPECT_EQ(got[0].collector, e.collector);
  EXPECT_EQ(got[0].task_id, e.task_id);
  EXPECT_EQ(got[0].correlation, e.correlation);
  EXPECT_EQ(got[0].payload, e.payload);
}

TEST_F(EventStoreTest, EmptyOptionalFieldsAreStoredAsNullAndReadBackEmpty) {
  append({event(kT0, "events.process.process", "")});
  RawDb raw(path_);
  EXPECT_EQ(raw.text("SELECT quote(task_id) || quote(correlation_id) || quote(parent_correlation_id) || "
                     "quote(root_correlation_id) || quote(workflow_stage) || quote(source_process) FROM events"),
            "NULLNULLNULLNULLNULLNULL");
  EXPECT_EQ(raw.text("SELECT tags FROM events"), "{}");
  const auto got = query({});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].task_id.empty());
  EXPECT_TRUE(got[0].correlation.empty());
}

TEST_F(EventStoreTest, PayloadStaysJsonTextForJsonExtract) {
  append({event(kT0, "events.process.process", "c")});
  RawDb raw(path_);
  EXPECT_EQ(raw.text("SELECT json_extract(payload, '$.pid') FROM events"), "1");
  EXPECT_EQ(raw.text("SELECT typeof(payload) FROM events"), "text");
}

TEST_F(EventStoreTest, CorrelationFilterMatchesTheEventItsChildrenAndTheWholeRootWorkflow) {
  append({event(kT0 + 1, "a.root", "R", "", "R"), event(kT0 + 2, "a.child", "C1", "R", "R"),
          event(kT0 + 3, "a.grandchild", "C2", "C1", "R"), event(kT0 + 4, "b.other", "X", "", "X")});
  EventQuery q;
  q.correlation = "R";
  EXPECT_EQ(query_topics(q), (std::vector<std::string>{"a.root", "a.child", "a.grandchild"}));
  q.correlation = "C1";
  EXPECT_EQ(query_topics(q), (std::vector<std::string>{"a.child", "a.grandchild"})) << "itself and its children";
  q.correlation = "C2";
  EXPECT_EQ(query_topics(q), (std::vector<std::string>{"a.grandchild"}));
  q.correlation = "X";
  EXPECT_EQ(query_topics(q), (std::vector<std::string>{"b.other"}));
  q.correlation = "nope";
  EXPECT_TRUE(query_topics(q).empty());
}

TEST_F(EventStoreTest, TaskIdFilterSelectsTheTasksEvents) {
  auto a = event(kT0, "x.a", "c");
  a.task_id = "t1";
  auto b = event(kT0 + 1, "x.b", "c");
  b.task_id = "t2";
  append({a, b});
  EventQuery q;
  q.task_id = "t2";
  EXPECT_EQ(query_topics(q), (std::vector<std::string>{"x.b"}));
}

TEST_F(EventStoreTest, TimeWindowIsHalfOpenAndTopicPrefixIsAPlainPrefix) {
  append({event(kT0, "events.process.process", "c"), event(kT0 + kSecond, "events.network.flow", "c"),
          event(kT0 + 2 * kSecond, "events.process.exit", "c"), event(kT0 + 3 * kSecond, "events.processes.x", "c")});
  EventQuery q;
  q.since_ns = kT0 + kSecond;
  q.until_ns = kT0 + 3 * kSecond;
  EXPECT_EQ(query_topics(q), (std::vector<std::string>{"events.network.flow", "events.process.exit"}));
  q = {};
  q.topic_prefix = "events.process.";
  EXPECT_EQ(query_topics(q), (std::vector<std::string>{"events.process.process", "events.process.exit"}));
  q.topic_prefix = "events.process";
  EXPECT_EQ(query_topics(q).size(), 3u);
  q.topic_prefix = "events.%";
  EXPECT_TRUE(query_topics(q).empty()) << "no LIKE wildcards";
}

TEST_F(EventStoreTest, LimitOffsetAndNewestFirstPageThroughResults) {
  std::vector<StoredEvent> events;
  for (int i = 0; i < 10; ++i) events.push_back(event(kT0 + i, "t." + std::to_string(i), "c"));
  // Equal times keep insertion order.
  events.push_back(event(kT0 + 9, "t.9b", "c"));
  append(events);
  EventQuery q;
  q.limit = 3;
  q.offset = 2;
  EXPECT_EQ(query_topics(q), (std::vector<std::string>{"t.2", "t.3", "t.4"}));
  q.newest_first = true;
  q.offset = 0;
  EXPECT_EQ(query_topics(q), (std::vector<std::string>{"t.9b", "t.9", "t.8"}));
  q = {};
  q.limit = 0;
  EXPECT_EQ(query(q).size(), 11u) << "limit 0 is no limit";
  q.limit = 5;
  q.offset = 10;
  EXPECT_EQ(query_topics(q), (std::vector<std::string>{"t.9b"}));
}

TEST_F(EventStoreTest, ForEachStopsWhenTheVisitorSaysSo) {
  append({event(kT0, "a", "c"), event(kT0 + 1, "b", "c"), event(kT0 + 2, "c", "c")});
  std::vector<std::string> seen;
  auto r = store_.for_each_event({}, [&](const StoredEvent& e) {
    seen.push_back(e.topic);
    return seen.size() < 2;
  });
  ASSERT_TRUE(r) << r.describe();
  EXPECT_EQ(*r, 2u);
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
}

TEST_F(EventStoreTest, AppendIsAllOrNothing) {
  RawDb raw(path_);
  raw.exec(
      "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.topic = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END");
  auto r = store_.append(std::vector<StoredEvent>{event(kT0, "good", "c"), event(kT0 + 1, "bad", "c")});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::error_code(SQLITE_CONSTRAINT, sqlite_category()));
  EXPECT_NE(r.describe().find("refused"), std::string::npos) << r.describe();
  EXPECT_EQ(store_.count_events().value(), 0) << "the good event was rolled back with the bad one";
  append({event(kT0, "good", "c")});
  EXPECT_EQ(store_.count_events().value(), 1) << "the store is usable after a failed batch";
}

TEST_F(EventStoreTest, RecordTaskStoresATaskExactlyOnce) {
  auto t = task("task-1", kT0, "c1", "r1");
  t.error = "";
  t.attempts = 2;
  auto first = store_.record_task(t);
  ASSERT_TRUE(first) << first.describe();
  EXPECT_TRUE(*first);
  auto again = t;
  again.status = "failed";
  again.error = "late duplicate";
  auto second = store_.record_task(again);
  ASSERT_TRUE(second) << second.describe();
  EXPECT_FALSE(*second) << "a task is recorded once";

  const auto all = store_.tasks({});
  ASSERT_TRUE(all) << all.describe();
  ASSERT_EQ(all->size(), 1u);
  const TaskRecord& got = all->front();
  EXPECT_EQ(got.task_id, "task-1");
  EXPECT_EQ(got.type, t.type);
  EXPECT_EQ(got.domain, t.domain);
  EXPECT_EQ(got.status, "ok") << "the first record stays";
  EXPECT_EQ(got.collector, t.collector);
  EXPECT_EQ(got.error, "");
  EXPECT_EQ(got.attempts, 2u);
  EXPECT_EQ(got.submitted_ns, t.submitted_ns);
  EXPECT_EQ(got.completed_ns, t.completed_ns);
  EXPECT_EQ(got.records, 3u);
  EXPECT_EQ(got.correlation_id, "c1");
  EXPECT_EQ(got.root_correlation_id, "r1");
}

TEST_F(EventStoreTest, TaskQueriesFilterByCorrelationOrRootTaskAndTime) {
  for (const auto& t : {task("t1", kT0, "c1", "r1"), task("t2", kT0 + kSecond, "c2", "r1"),
                        task("t3", kT0 + 2 * kSecond, "c3", "r3")}) {
    ASSERT_TRUE(store_.record_task(t));
  }
  const auto ids = [&](const EventQuery& q) {
    std::vector<std::string> v;
    const auto tasks = store_.tasks(q);
    EXPECT_TRUE(tasks) << tasks.describe();
    if (tasks) {
      for (const auto& t : *tasks) v.push_back(t.task_id);
    }
    return v;
  };
  EventQuery q;
  q.correlation = "r1";
  EXPECT_EQ(ids(q), (std::vector<std::string>{"t1", "t2"}));
  q.correlation = "c2";
  EXPECT_EQ(ids(q), (std::vector<std::string>{"t2"}));
  q = {};
  q.task_id = "t3";
  EXPECT_EQ(ids(q), (std::vector<std::string>{"t3"}));
  q = {};
  q.since_ns = kT0 + kSecond;
  q.newest_first = true;
  q.topic_prefix = "ignored.for.tasks";
  EXPECT_EQ(ids(q), (std::vector<std::string>{"t3", "t2"}));
}

TEST_F(EventStoreTest, DatabaseIsInWalModeWithPrivatePermissions) {
  RawDb raw(path_);
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.text("PRAGMA user_version"), std::to_string(EventStore::kSchemaVersion));
#ifdef _WIN32
  GTEST_SKIP() << "Windows: the database inherits its directory's ACL (see event_store.hpp); no mode bits to check";
#endif
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0027, 0u) << "no access for others, no writes for the group";
  ASSERT_EQ(::stat(dir_.file("state/daemoneye").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0027, 0u) << "created directories are 0750";
}

TEST_F(EventStoreTest, ReadOnlyHandleSeesRowsCommittedByAWriter) {
  auto reader = EventStore::open(path_, EventStore::Mode::read_only);
  EXPECT_EQ(reader.count_events().value(), 0);
  append({event(kT0, "a", "c")});
  EXPECT_EQ(reader.count_events().value(), 1);
  append({event(kT0 + 1, "b", "c")});
  auto got = reader.query({});
  ASSERT_TRUE(got) << got.describe();
  EXPECT_EQ(topics(*got), (std::vector<std::string>{"a", "b"}));

  auto w = reader.append(std::vector<StoredEvent>{event(kT0, "x", "c")});
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error(), std::error_code(SQLITE_READONLY, sqlite_category()));
  EXPECT_FALSE(reader.record_task(task("t", kT0, "", "")));
  EXPECT_FALSE(reader.prune(kT0 + kSecond));
}

TEST_F(EventStoreTest, ReopeningKeepsTheDataAndTheSchema) {
  append({event(kT0, "a", "c")});
  store_ = EventStore::open(path_, EventStore::Mode::read_write);
  EXPECT_EQ(store_.count_events().value(), 1);
}

TEST_F(EventStoreTest, PruneDeletesOlderEventsAndTasksAndNeverReusesIds) {
  append({event(kT0, "old", "c"), event(kT0 + 10 * kSecond, "new", "c")});
  ASSERT_TRUE(store_.record_task(task("old-task", kT0, "c", "c")));
  ASSERT_TRUE(store_.record_task(task("new-task", kT0 + 10 * kSecond, "c", "c")));
  auto pruned = store_.prune(kT0 + 5 * kSecond);
  ASSERT_TRUE(pruned) << pruned.describe();
  EXPECT_EQ(*pruned, 2u) << "one event and one task";
  EXPECT_EQ(query_topics({}), (std::vector<std::string>{"new"}));
  EXPECT_EQ(store_.tasks({}).value().size(), 1u);
  EXPECT_EQ(store_.prune(kT0 + 5 * kSecond).value(), 0u);

  const std::int64_t last_id = query({}).back().id;
  ASSERT_EQ(store_.prune(kT0 + 60 * kSecond).value(), 2u);
  append({event(kT0 + 70 * kSecond, "later", "c")});
  EXPECT_GT(query({}).front().id, last_id);
}

TEST(EventStoreOpen, NewerSchemaVersionIsRefused) {
  testing::TempDir dir;
  const std::string path = dir.file("events.db");
  { auto s = EventStore::open(path, EventStore::Mode::read_write); }
  RawDb(path).exec("PRAGMA user_version = 99");
  for (auto mode : {EventStore::Mode::read_write, EventStore::Mode::read_only}) {
    try {
      (void)EventStore::open(path, mode);
      ADD_FAILURE() << "opened a database of a newer schema";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("schema version 99 is newer"), std::string::npos) << e.what();
    }
  }
}

TEST(EventStoreOpen, ForeignSqliteFileIsRefusedAndLeftUnchanged) {
  testing::TempDir dir;
  const std::string path = dir.file("other.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE mine(x)", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  EXPECT_THROW((void)EventStore::open(path, EventStore::Mode::read_write), std::runtime_error);
  EXPECT_THROW((void)EventStore::open(path, EventStore::Mode::read_only), std::runtime_error);
  RawDb raw(path);
  EXPECT_EQ(raw.text("SELECT count(*) FROM sqlite_schema"), "1");
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "delete");
}

TEST(EventStoreOpen, NotADatabaseFailsWithAClearMessage) {
  testing::TempDir dir;
  const std::string path = dir.file("junk.db");
  std::ofstream(path) << std::string(4096, 'x');
  try {
    (void)EventStore::open(path, EventStore::Mode::read_only);
    ADD_FAILURE() << "opened junk";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not a database"), std::string::npos) << e.what();
  }
}

TEST(EventStoreOpen, BadPathFailsWithAOneLineMessageNamingThePath) {
  testing::TempDir dir;
  std::ofstream(dir.file("plainfile")) << "x";
  const std::string path = dir.file("plainfile/sub/events.db");
  try {
    (void)EventStore::open(path, EventStore::Mode::read_write);
    ADD_FAILURE() << "opened under a regular file";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("not a directory"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(EventStoreOpen, MissingDatabaseReadOnlySaysSo) {
  testing::TempDir dir;
  const std::string path = dir.file("absent.db");
  try {
    (void)EventStore::open(path, EventStore::Mode::read_only);
    ADD_FAILURE() << "opened a missing database";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "no event database at " + path);
  }
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "read-only open creates nothing";
}

TEST(DefaultDatabasePath, PosixStateDirectoryIsVarLibForRootThenXdgStateThenHome) {
  using platform::detail::posix_state_directory;
  EXPECT_EQ(posix_state_directory(true, "DaemonEye", "/srv/state", "/home/op"), "/var/lib/daemoneye");
  EXPECT_EQ(posix_state_directory(false, "DaemonEye", "/srv/state", "/home/op"), "/srv/state/daemoneye");
  EXPECT_EQ(posix_state_directory(false, "DaemonEye", "", "/home/op"), "/home/op/.local/state/daemoneye");
  EXPECT_EQ(posix_state_directory(false, "DaemonEye", "relative/state", "/home/op"), "/home/op/.local/state/daemoneye")
      << "a relative XDG_STATE_HOME is ignored, as the XDG spec says";
  EXPECT_EQ(posix_state_directory(false, "DaemonEye", "", ""), "") << "no home directory: no default";
}

TEST(DefaultDatabasePath, WindowsStateDirectoryIsProgramDataWhenPrivilegedElseLocalAppData) {
  using platform::detail::windows_state_directory;
  EXPECT_EQ(windows_state_directory(true, "DaemonEye", "C:\\ProgramData", "C:\\Users\\op\\AppData\\Local"),
            "C:\\ProgramData\\DaemonEye");
  EXPECT_EQ(windows_state_directory(false, "DaemonEye", "C:\\ProgramData", "C:\\Users\\op\\AppData\\Local"),
            "C:\\Users\\op\\AppData\\Local\\DaemonEye");
  EXPECT_EQ(windows_state_directory(false, "DaemonEye", "C:\\ProgramData", ""), "")
      << "no local application data: no default";
}

TEST(DefaultConfigDirectories, PosixUserConfigThenEtcUnlessRoot) {
  using platform::detail::posix_config_directories;
  using Dirs = std::vector<std::string>;
  EXPECT_EQ(posix_config_directories(true, "DaemonEye", "/srv/config", "/root"), Dirs{"/etc/daemoneye"});
  EXPECT_EQ(posix_config_directories(false, "DaemonEye", "/srv/config", "/home/op"),
            (Dirs{"/srv/config/daemoneye", "/etc/daemoneye"}));
  EXPECT_EQ(posix_config_directories(false, "DaemonEye", "relative", "/home/op"),
            (Dirs{"/home/op/.config/daemoneye", "/etc/daemoneye"}));
  EXPECT_EQ(posix_config_directories(false, "DaemonEye", "", ""), Dirs{"/etc/daemoneye"});
}

TEST(DefaultConfigDirectories, WindowsLocalAppDataOverridesProgramDataUnlessPrivileged) {
  using platform::detail::windows_config_directories;
  using Dirs = std::vector<std::string>;
  EXPECT_EQ(windows_config_directories(true, "DaemonEye", "C:\\ProgramData", "C:\\Users\\op\\AppData\\Local"),
            Dirs{"C:\\ProgramData\\DaemonEye"});
  EXPECT_EQ(windows_config_directories(false, "DaemonEye", "C:\\ProgramData", "C:\\Users\\op\\AppData\\Local"),
            (Dirs{"C:\\Users\\op\\AppData\\Local\\DaemonEye", "C:\\ProgramData\\DaemonEye"}));
  EXPECT_EQ(windows_config_directories(false, "DaemonEye", "C:\\ProgramData", ""), Dirs{"C:\\ProgramData\\DaemonEye"});
}

TEST(DefaultDatabasePath, IsEventsDbInTheStateDirectory) {
  const std::string saved = platform::environment_variable("DAEMONEYE_DB");
  platform::set_environment_variable("DAEMONEYE_DB", "");
  const std::string dir = platform::state_directory("DaemonEye");
  if (!dir.empty()) {
    EXPECT_EQ(default_database_path(), platform::join_path(dir, "events.db"));
  } else {
    EXPECT_THROW(default_database_path(), std::runtime_error);
  }
  platform::set_environment_variable("DAEMONEYE_DB", saved);
}

TEST(DefaultDatabasePath, DaemoneyeDbEnvironmentVariableIsUsed) {
  const std::string saved = platform::environment_variable("DAEMONEYE_DB");
  platform::set_environment_variable("DAEMONEYE_DB", "/tmp/daemoneye-test/events.db");
  EXPECT_EQ(default_database_path(), "/tmp/daemoneye-test/events.db");
  platform::set_environment_variable("DAEMONEYE_DB", saved);
}

TEST_F(EventStoreTest, AnEventWhoseMessageIdIsStoredIsNotStoredAgain) {
  auto a = event(kT0, "events.filesystem.created", "c1");
  a.message_id = "fsmond-1/7/1";
  auto b = event(kT0 + 1, "events.filesystem.created", "c2");
  b.message_id = "fsmond-1/7/2";
  auto first = store_.write(std::vector<StoredEvent>{a, b}, {});
  ASSERT_TRUE(first) << first.describe();
  EXPECT_EQ(first->events, 2u);
  EXPECT_EQ(first->duplicates, 0u);
  // A resend of both (after a reconnect) with one new event and two events
  // that carry no message id at all.
  auto c = event(kT0 + 2, "events.filesystem.deleted", "c3");
  c.message_id = "fsmond-1/7/3";
  auto plain1 = event(kT0 + 3, "x", "c4");
  auto plain2 = event(kT0 + 4, "x", "c5");
  auto again = store_.write(std::vector<StoredEvent>{a, b, c, plain1, plain2}, {});
  ASSERT_TRUE(again) << again.describe();
  EXPECT_EQ(again->events, 3u);
  EXPECT_EQ(again->duplicates, 2u);
  EXPECT_EQ(store_.count_events().value(), 5);
  auto rows = store_.query({});
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 5u);
  EXPECT_EQ((*rows)[0].message_id, "fsmond-1/7/1");
  EXPECT_EQ((*rows)[2].message_id, "fsmond-1/7/3");
  EXPECT_EQ((*rows)[3].message_id, "");
}

TEST_F(EventStoreTest, WriteStoresEventsAndTasksInOneTransaction) {
  RawDb raw(path_);
  raw.exec("CREATE TRIGGER refuse BEFORE INSERT ON tasks WHEN NEW.task_id = 'bad' BEGIN SELECT RAISE(ABORT, 'no'); END");
  auto r = store_.write(std::vector<StoredEvent>{event(kT0, "a", "c")},
                        std::vector<TaskRecord>{task("good", kT0, "c", "r"), task("bad", kT0, "c", "r")});
  ASSERT_FALSE(r);
  EXPECT_EQ(store_.count_events().value(), 0) << "the events were rolled back with the failed task record";
  auto ok = store_.write(std::vector<StoredEvent>{event(kT0, "a", "c")},
                         std::vector<TaskRecord>{task("good", kT0, "c", "r"), task("good", kT0, "c", "r")});
  ASSERT_TRUE(ok) << ok.describe();
  EXPECT_EQ(ok->events, 1u);
  EXPECT_EQ(ok->tasks, 1u) << "a task id already stored is skipped";
}

TEST(EventStoreOpen, AVersion1DatabaseIsMigratedKeepingItsRows) {
  testing::TempDir dir;
  const std::string path = dir.file("events.db");
  {
    auto store = EventStore::open(path, EventStore::Mode::read_write);
    ASSERT_TRUE(store.append(std::vector<StoredEvent>{event(kT0, "old", "c")}));
  }
  {
    // Back to what version 1 wrote.
    RawDb raw(path);
    raw.exec("DROP INDEX events_message_id; ALTER TABLE events DROP COLUMN message_id; PRAGMA user_version = 1");
  }
  auto store = EventStore::open(path, EventStore::Mode::read_write);
  RawDb raw(path);
  EXPECT_EQ(raw.text("PRAGMA user_version"), "2");
  auto e = event(kT0 + 1, "new", "c");
  e.message_id = "m-1";
  ASSERT_TRUE(store.append(std::vector<StoredEvent>{e, e}));
  EXPECT_EQ(store.count_events().value(), 2) << "the old row and one copy of the new one";
}

}  // namespace
}  // namespace daemoneye::storage
