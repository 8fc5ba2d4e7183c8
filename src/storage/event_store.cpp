#include "storage/event_store.hpp"

#include <map>
#include <stdexcept>
#include <utility>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "platform/files.hpp"
#include "storage/sqlite.hpp"

namespace daemoneye::storage {

using detail::Database;
using detail::ResetGuard;
using detail::Statement;

namespace {

constexpr int kBusyTimeoutMs = 5000;

// Version 1. AUTOINCREMENT so an event id, once quoted in a report, never
// names another event after a prune. Empty optional strings are NULL.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE events(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ns INTEGER NOT NULL,
  topic TEXT NOT NULL,
  kind TEXT NOT NULL,
  collector TEXT NOT NULL,
  task_id TEXT,
  correlation_id TEXT,
  parent_correlation_id TEXT,
  root_correlation_id TEXT,
  sequence INTEGER NOT NULL DEFAULT 0,
  workflow_stage TEXT,
  source_process TEXT,
  tags TEXT NOT NULL DEFAULT '{}',
  payload TEXT NOT NULL);
CREATE INDEX events_correlation_id ON events(correlation_id);
CREATE INDEX events_parent_correlation_id ON events(parent_correlation_id);
CREATE INDEX events_root_correlation_id ON events(root_correlation_id);
CREATE INDEX events_task_id ON events(task_id);
CREATE INDEX events_time_ns ON events(time_ns);
CREATE TABLE tasks(
  task_id TEXT PRIMARY KEY NOT NULL,
  type TEXT NOT NULL,
  domain TEXT NOT NULL,
  status TEXT NOT NULL,
  collector TEXT NOT NULL,
  error TEXT,
  attempts INTEGER NOT NULL,
  submitted_ns INTEGER NOT NULL,
  completed_ns INTEGER NOT NULL,
  records INTEGER NOT NULL,
  correlation_id TEXT,
  root_correlation_id TEXT);
CREATE INDEX tasks_correlation_id ON tasks(correlation_id);
CREATE INDEX tasks_root_correlation_id ON tasks(root_correlation_id);
CREATE INDEX tasks_submitted_ns ON tasks(submitted_ns);
PRAGMA user_version = 1;
)sql";

// Version 2: the bus message id of each event, unique, so that a collector
// resending what the agent had already committed (after a reconnect or a
// restart) never makes a second row. Rows without an id (written by version
// 1, or published without one) are NULL, which the unique index allows many of.
constexpr const char* kMigrateV2 = R"sql(
ALTER TABLE events ADD COLUMN message_id TEXT;
CREATE UNIQUE INDEX events_message_id ON events(message_id);
PRAGMA user_version = 2;
)sql";
static_assert(EventStore::kSchemaVersion == 2, "write the migration and the new schema text");

constexpr const char* kEventColumns =
    "id, time_ns, topic, kind, collector, task_id, correlation_id, parent_correlation_id, root_correlation_id, "
    "sequence, workflow_stage, source_process, tags, payload, message_id";
constexpr const char* kTaskColumns =
    "task_id, type, domain, status, collector, error, attempts, submitted_ns, completed_ns, records, correlation_id, "
    "root_correlation_id";

constexpr const char* kInsertEvent =
    "INSERT INTO events(time_ns, topic, kind, collector, task_id, correlation_id, parent_correlation_id, "
    "root_correlation_id, sequence, workflow_stage, source_process, tags, payload, message_id) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) ON CONFLICT DO NOTHING";
// Only a duplicate task_id is ignored; any other failure still reports.
constexpr const char* kInsertTask =
    "INSERT INTO tasks(task_id, type, domain, status, collector, error, attempts, submitted_ns, completed_ns, "
    "records, correlation_id, root_correlation_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
    "ON CONFLICT(task_id) DO NOTHING";

[[noreturn]] void fail_open(const std::string& path, const std::string& reason) {
  throw std::runtime_error(fmt::format("cannot open event database {}: {}", path, reason));
}

// Creates the missing directories of `dir`, with mode 0750 (before umask) on
// POSIX, inheriting their parent's ACL on Windows; existing ones are left as
// they are.
void create_directories(const std::string& dir, const std::string& db_path) {
  std::string failed;
  const std::error_code ec = platform::create_directories(dir, 0750, failed);
  if (!ec) return;
  if (ec == std::errc::not_a_directory) fail_open(db_path, fmt::format("{} is not a directory", failed));
  fail_open(db_path, fmt::format("cannot create directory {}: {}", failed, ec.message()));
}

// Creates the database file, if it is missing, with mode 0640 so that the
// file (and the -wal and -shm files, which SQLite gives the main file's mode)
// is not world-readable. On Windows all three inherit the directory's ACL.
void create_file(const std::string& path) {
  const std::error_code ec = platform::create_file_exclusively(path, 0640);
  if (ec && ec != std::errc::file_exists) fail_open(path, ec.message());
}

std::string tags_json(const std::map<std::string, std::string>& tags) {
  if (tags.empty()) return "{}";
  return nlohmann::json(tags).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::map<std::string, std::string> parse_tags(const std::string& text) {
  std::map<std::string, std::string> tags;
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return tags;
  for (const auto& [k, v] : j.items()) tags[k] = v.is_string() ? v.get<std::string>() : v.dump();
  return tags;
}

StoredEvent read_event(const Statement& s) {
  StoredEvent e;
  e.id = s.int64(0);
  e.time_ns = s.int64(1);
  e.topic = s.text(2);
  e.kind = s.text(3);
  e.collector = s.text(4);
  e.task_id = s.text(5);
  e.correlation.correlation_id = s.text(6);
  e.correlation.parent_correlation_id = s.text(7);
  e.correlation.root_correlation_id = s.text(8);
  e.correlation.sequence_number = static_cast<std::uint64_t>(s.int64(9));
  e.correlation.workflow_stage = s.text(10);
  e.correlation.source_process = s.text(11);
  e.correlation.tags = parse_tags(s.text(12));
  e.payload = s.text(13);
  e.message_id = s.text(14);
  return e;
}

TaskRecord read_task(const Statement& s) {
  TaskRecord t;
  t.task_id = s.text(0);
  t.type = s.text(1);
  t.domain = s.text(2);
  t.status = s.text(3);
  t.collector = s.text(4);
  t.error = s.text(5);
  t.attempts = static_cast<std::uint32_t>(s.int64(6));
  t.submitted_ns = s.int64(7);
  t.completed_ns = s.int64(8);
  t.records = static_cast<std::uint64_t>(s.int64(9));
  t.correlation_id = s.text(10);
  t.root_correlation_id = s.text(11);
  return t;
}

// A SELECT over events (or tasks) with the query's filters as numbered
// parameters (bound by bind_filters), its order, limit and offset.
std::string select_sql(const EventQuery& q, bool events) {
  std::string sql =
      fmt::format("SELECT {} FROM {} WHERE 1", events ? kEventColumns : kTaskColumns, events ? "events" : "tasks");
  if (!q.correlation.empty()) {
    sql += events ? " AND (correlation_id = ?1 OR parent_correlation_id = ?1 OR root_correlation_id = ?1)"
                  : " AND (correlation_id = ?1 OR root_correlation_id = ?1)";
  }
  if (!q.task_id.empty()) sql += " AND task_id = ?2";
  // substr/length both count characters, so this is an exact prefix test
  // for any text; GLOB/LIKE would need escaping.
  if (events && !q.topic_prefix.empty()) sql += " AND substr(topic, 1, length(?3)) = ?3";
  const char* time_column = events ? "time_ns" : "submitted_ns";
  if (q.since_ns != 0) sql += fmt::format(" AND {} >= ?4", time_column);
  if (q.until_ns != 0) sql += fmt::format(" AND {} < ?5", time_column);
  const char* dir = q.newest_first ? "DESC" : "ASC";
  sql += events ? fmt::format(" ORDER BY time_ns {0}, id {0}", dir)
                : fmt::format(" ORDER BY submitted_ns {0}, task_id {0}", dir);
  sql += " LIMIT ?6 OFFSET ?7";
  return sql;
}

void bind_filters(Statement& s, const EventQuery& q, bool events) {
  if (!q.correlation.empty()) s.bind(1, q.correlation);
  if (!q.task_id.empty()) s.bind(2, q.task_id);
  if (events && !q.topic_prefix.empty()) s.bind(3, q.topic_prefix);
  if (q.since_ns != 0) s.bind(4, q.since_ns);
  if (q.until_ns != 0) s.bind(5, q.until_ns);
  // A negative LIMIT is no limit in SQLite.
  s.bind(6, q.limit == 0 ? std::int64_t{-1} : static_cast<std::int64_t>(q.limit));
  s.bind(7, static_cast<std::int64_t>(q.offset));
}

}  // namespace

std::string default_database_path() {
  if (std::string db = platform::environment_variable("DAEMONEYE_DB"); !db.empty()) return db;
  const std::string dir = platform::state_directory("DaemonEye");
  if (dir.empty()) {
    throw std::runtime_error(
        "no default event database path (the user's home directory is unknown): set $DAEMONEYE_DB");
  }
  return platform::join_path(dir, "events.db");
}

struct EventStore::Impl {
  std::string path;
  Mode mode = Mode::read_only;
  // Declared before the statements: members are destroyed in reverse order,
  // and the connection must close after its statements are finalized.
  Database db;
  Statement begin, commit, rollback;
  Statement insert_event, insert_task;
  Statement prune_events, prune_tasks, count;

  Result<void> step_done(Statement& s) {
    ResetGuard guard(s);
    const int rc = s.step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return detail::failure(db.get(), rc);
    return {};
  }

  // One task record, inside or outside a transaction.
  Result<bool> insert(const TaskRecord& t) {
    Statement& s = insert_task;
    ResetGuard guard(s);
    s.bind(1, t.task_id);
    s.bind(2, t.type);
    s.bind(3, t.domain);
    s.bind(4, t.status);
    s.bind(5, t.collector);
    s.bind_or_null(6, t.error);
    s.bind(7, static_cast<std::int64_t>(t.attempts));
    s.bind(8, t.submitted_ns);
    s.bind(9, t.completed_ns);
    s.bind(10, static_cast<std::int64_t>(t.records));
    s.bind_or_null(11, t.correlation_id);
    s.bind_or_null(12, t.root_correlation_id);
    if (const int rc = s.step(); rc != SQLITE_DONE) return detail::failure(db.get(), rc);
    return sqlite3_changes(db.get()) == 1;
  }

  Result<void> writable() const {
    if (mode == Mode::read_write) return {};
    return eventbus::Failure{std::error_code(SQLITE_READONLY, sqlite_category()), "opened read-only"};
  }

  // Runs `body` between BEGIN IMMEDIATE and COMMIT; rolls back on any failure.
  template <class Body>
  Result<void> transaction(Body&& body) {
    if (auto r = step_done(begin); !r) return r;
    auto r = body();
    if (r) r = step_done(commit);
    if (!r) (void)step_done(rollback);
    return r;
  }

  template <class Row, class Read>
  Result<std::size_t> scan(const EventQuery& q, bool events, Read read, const std::function<bool(const Row&)>& visit) {
    auto st = Statement::prepare(db.get(), select_sql(q, events));
    if (!st) return st.failure();
    bind_filters(*st, q, events);
    std::size_t n = 0;
    while (true) {
      const int rc = st->step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return detail::failure(db.get(), rc);
      ++n;
      if (!visit(read(*st))) break;
    }
    return n;
  }
};

EventStore::EventStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EventStore::EventStore(EventStore&&) noexcept = default;
EventStore& EventStore::operator=(EventStore&&) noexcept = default;
EventStore::~EventStore() = default;

const std::string& EventStore::path() const noexcept {
  return impl_->path;
}
EventStore::Mode EventStore::mode() const noexcept {
  return impl_->mode;
}

EventStore EventStore::open(const std::string& path, Mode mode) {
  if (path.empty()) throw std::runtime_error("cannot open event database: empty path");
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->mode = mode;
  const auto check = [&](auto&& r) {
    if (!r) fail_open(path, r.describe());
    return std::move(*r);
  };
  const auto check_void = [&](const Result<void>& r) {
    if (!r) fail_open(path, r.describe());
  };

  if (mode == Mode::read_write) {
    create_directories(platform::parent_directory(path), path);
    create_file(path);
    impl->db = check(Database::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX));
  } else {
    if (const std::error_code ec = platform::check_exists(path)) {
      if (ec == std::errc::no_such_file_or_directory) {
        throw std::runtime_error(fmt::format("no event database at {}", path));
      }
      fail_open(path, ec.message());
    }
    impl->db = check(Database::open(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX));
  }
  Database& db = impl->db;
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);

  if (mode == Mode::read_write) {
    // The schema is created only in an empty file, and inside one write
    // transaction, so two processes opening a new database at once create it
    // once and a foreign SQLite file is never modified.
    check_void(db.exec("BEGIN IMMEDIATE"));
    auto version = db.query_int("PRAGMA user_version");
    auto tables = db.query_int("SELECT count(*) FROM sqlite_schema");
    Result<void> created;
    if (version && tables && *version == 0 && *tables == 0) created = db.exec(kSchemaV1);
    // Older DaemonEye databases are migrated in the same transaction.
    if (version && tables && created && (*version == 1 || (*version == 0 && *tables == 0))) {
      created = db.exec(kMigrateV2);
    }
    if (!version || !tables || !created) {
      (void)db.exec("ROLLBACK");
      check(version);
      check(tables);
      check_void(created);
    }
    check_void(db.exec("COMMIT"));
  }

  const std::int64_t version = check(db.query_int("PRAGMA user_version"));
  if (version > kSchemaVersion) {
    fail_open(path, fmt::format("schema version {} is newer than this program supports ({}); use a newer DaemonEye",
                                version, kSchemaVersion));
  }
  if (version < 1) fail_open(path, "not a DaemonEye event database (another SQLite file, or not initialised)");

  if (mode == Mode::read_write) {
    // WAL is what lets the CLI read while the agent writes; refuse to run
    // without it rather than block readers.
    const std::string journal = check(db.query_text("PRAGMA journal_mode=WAL"));
    if (journal != "wal") fail_open(path, fmt::format("cannot switch to WAL journal mode (got '{}')", journal));
    check_void(db.exec("PRAGMA synchronous=NORMAL"));
  }

  const auto prepare = [&](const char* sql) { return check(Statement::prepare(db.get(), sql, true)); };
  impl->count = prepare("SELECT count(*) FROM events");
  if (mode == Mode::read_write) {
    impl->begin = prepare("BEGIN IMMEDIATE");
    impl->commit = prepare("COMMIT");
    impl->rollback = prepare("ROLLBACK");
    impl->insert_event = prepare(kInsertEvent);
    impl->insert_task = prepare(kInsertTask);
    impl->prune_events = prepare("DELETE FROM events WHERE time_ns < ?1");
    impl->prune_tasks = prepare("DELETE FROM tasks WHERE submitted_ns < ?1");
  }
  return EventStore(std::move(impl));
}

Result<std::size_t> EventStore::append(std::span<const StoredEvent> events) {
  auto r = write(events, {});
  if (!r) return r.failure();
  return r->events;
}

Result<EventStore::Written> EventStore::write(std::span<const StoredEvent> events, std::span<const TaskRecord> tasks) {
  if (auto w = impl_->writable(); !w) return w.failure();
  Written written;
  if (events.empty() && tasks.empty()) return written;
  Impl& im = *impl_;
  auto r = im.transaction([&]() -> Result<void> {
    Statement& s = im.insert_event;
    for (const StoredEvent& e : events) {
      ResetGuard guard(s);
      const std::string tags = tags_json(e.correlation.tags);  // bound without copy: outlives the step
      s.bind(1, e.time_ns);
      s.bind(2, e.topic);
      s.bind(3, e.kind);
      s.bind(4, e.collector);
      s.bind_or_null(5, e.task_id);
      s.bind_or_null(6, e.correlation.correlation_id);
      s.bind_or_null(7, e.correlation.parent_correlation_id);
      s.bind_or_null(8, e.correlation.root_correlation_id);
      s.bind(9, static_cast<std::int64_t>(e.correlation.sequence_number));
      s.bind_or_null(10, e.correlation.workflow_stage);
      s.bind_or_null(11, e.correlation.source_process);
      s.bind(12, tags);
      s.bind(13, e.payload);
      s.bind_or_null(14, e.message_id);
      if (const int rc = s.step(); rc != SQLITE_DONE) return detail::failure(im.db.get(), rc);
      if (sqlite3_changes(im.db.get()) == 1) {
        ++written.events;
      } else {
        ++written.duplicates;
      }
    }
    for (const TaskRecord& t : tasks) {
      auto stored = im.insert(t);
      if (!stored) return stored.failure();
      if (*stored) ++written.tasks;
    }
    return {};
  });
  if (!r) return r.failure();
  return written;
}

Result<bool> EventStore::record_task(const TaskRecord& t) {
  if (auto w = impl_->writable(); !w) return w.failure();
  return impl_->insert(t);
}

Result<std::size_t> EventStore::for_each_event(const EventQuery& q,
                                               const std::function<bool(const StoredEvent&)>& visit) const {
  return impl_->scan<StoredEvent>(q, true, read_event, visit);
}

Result<std::size_t> EventStore::for_each_task(const EventQuery& q,
                                              const std::function<bool(const TaskRecord&)>& visit) const {
  return impl_->scan<TaskRecord>(q, false, read_task, visit);
}

Result<std::vector<StoredEvent>> EventStore::query(const EventQuery& q) const {
  std::vector<StoredEvent> out;
  auto r = for_each_event(q, [&](const StoredEvent& e) {
    out.push_back(e);
    return true;
  });
  if (!r) return r.failure();
  return out;
}

Result<std::vector<TaskRecord>> EventStore::tasks(const EventQuery& q) const {
  std::vector<TaskRecord> out;
  auto r = for_each_task(q, [&](const TaskRecord& t) {
    out.push_back(t);
    return true;
  });
  if (!r) return r.failure();
  return out;
}

Result<std::size_t> EventStore::prune(std::int64_t older_than_ns) {
  if (auto w = impl_->writable(); !w) return w.failure();
  Impl& im = *impl_;
  std::size_t deleted = 0;
  auto r = im.transaction([&]() -> Result<void> {
    for (Statement* s : {&im.prune_events, &im.prune_tasks}) {
      s->bind(1, older_than_ns);
      if (auto d = im.step_done(*s); !d) return d;
      deleted += static_cast<std::size_t>(sqlite3_changes64(im.db.get()));
    }
    return {};
  });
  if (!r) return r.failure();
  return deleted;
}

Result<std::int64_t> EventStore::count_events() const {
  Statement& s = impl_->count;
  ResetGuard guard(s);
  const int rc = s.step();
  if (rc != SQLITE_ROW) return detail::failure(impl_->db.get(), rc);
  return s.int64(0);
}

}  // namespace daemoneye::storage
