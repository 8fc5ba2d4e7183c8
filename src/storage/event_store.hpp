#pragma once
// The event store: collector results (events) and task records kept in one
// SQLite database for forensic queries, written by the agent and read by
// `daemoneye-cli events` (or by investigators with the sqlite3 shell).
//
// Errors: open() throws (it runs at start-up); every operation after open
// returns its errors as values (eventbus::Result) whose code is the SQLite
// primary result code in sqlite_category() (e.g. SQLITE_BUSY, SQLITE_FULL)
// and whose detail is SQLite's message.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <daemoneye/eventbus/error.hpp>
#include <daemoneye/eventbus/message.hpp>

namespace daemoneye::storage {

template <class T>
using Result = eventbus::Result<T>;

// One collector result as stored. Strings left empty are stored as SQL NULL
// (task_id and the optional correlation fields) and read back as empty.
struct StoredEvent {
  std::int64_t id = 0;       // row id, assigned by the store (ignored by append); never reused, even after prune
  std::int64_t time_ns = 0;  // Unix time of the observation, nanoseconds
  std::string topic;         // bus topic, e.g. events.process.process
  std::string kind;
  std::string collector;  // collector id, e.g. procmond-1
  std::string task_id;    // may be empty
  eventbus::Correlation correlation;
  std::string payload;  // JSON text (one object), stored verbatim
  // The bus message id; unique in the store (a second event with the same id
  // is not stored). Empty: none (NULL), never a duplicate.
  std::string message_id;
};

// The outcome of one task, recorded once when it completes.
struct TaskRecord {
  std::string task_id;
  std::string type;
  std::string domain;
  std::string status;  // ok|failed|unsupported|invalid-argument|cancelled|expired
  std::string collector;
  std::string error;
  std::uint32_t attempts = 1;
  std::int64_t submitted_ns = 0;
  std::int64_t completed_ns = 0;
  std::uint64_t records = 0;
  std::string correlation_id;
  std::string root_correlation_id;
};

// Filters of query()/tasks(); every empty (or zero) filter is not applied.
struct EventQuery {
  // Events whose correlation_id, parent_correlation_id or root_correlation_id
  // is this (so a root id selects a whole workflow); tasks whose
  // correlation_id or root_correlation_id is this.
  std::string correlation;
  std::string task_id;
  // Plain string prefix of the topic ("events.process" also matches
  // "events.processes.x"). Events only: tasks have no topic, so tasks()
  // ignores it.
  std::string topic_prefix;
  // Half-open time window since_ns <= t < until_ns on the event's time_ns,
  // or the task's submitted_ns. 0: open on that side.
  std::int64_t since_ns = 0;
  std::int64_t until_ns = 0;
  std::size_t limit = 1000;  // 0: no limit
  std::size_t offset = 0;
  // Order is by time (events: time_ns, then id; tasks: submitted_ns, then
  // task_id), oldest first unless this is set.
  bool newest_first = false;
};

// SQLite primary result codes as error codes.
const std::error_category& sqlite_category() noexcept;

// Where the agent keeps its database and where the CLI looks for it:
// $DAEMONEYE_DB if set; else events.db in DaemonEye's state directory
// (platform::state_directory), that is
//   POSIX:   for root, /var/lib/daemoneye/events.db; else
//            $XDG_STATE_HOME/daemoneye/events.db (if that variable holds an
//            absolute path) or $HOME/.local/state/daemoneye/events.db;
//   Windows: for an elevated process (or LocalSystem),
//            %ProgramData%\DaemonEye\events.db; else
//            %LOCALAPPDATA%\DaemonEye\events.db.
// Throws std::runtime_error when none applies (no home directory is known:
// no HOME and no passwd entry; no local application data folder).
std::string default_database_path();

// A connection to the event database.
//
// Schema (version kSchemaVersion, kept in PRAGMA user_version):
//   events(id INTEGER PRIMARY KEY AUTOINCREMENT, time_ns, topic, kind,
//          collector, task_id, correlation_id, parent_correlation_id,
//          root_correlation_id, sequence, workflow_stage, source_process,
//          tags /*JSON object text*/, payload /*JSON text*/, message_id)
//     indexed on correlation_id, parent_correlation_id, root_correlation_id,
//     task_id and time_ns, and unique on message_id (NULLs allowed);
//   tasks(task_id TEXT PRIMARY KEY, type, domain, status, collector, error,
//         attempts, submitted_ns, completed_ns, records, correlation_id,
//         root_correlation_id)
//     indexed on correlation_id, root_correlation_id and submitted_ns.
// Payloads stay JSON text so json_extract() works on them in SQL. Unsigned
// 64-bit values (sequence, records) are stored as their two's-complement
// int64 and read back unchanged.
//
// Thread safety: none. An EventStore (and the statements it caches) belongs
// to one thread at a time; the agent uses its own from the single I/O thread.
// Other threads or processes open their own EventStore: the database is in
// WAL mode, so readers (even read-only ones in other processes) never block
// the writer and see every committed transaction, and writers wait for each
// other up to the busy timeout (5 s) before failing with SQLITE_BUSY.
class EventStore {
 public:
  enum class Mode { read_write, read_only };
  static constexpr int kSchemaVersion = 2;

  // read_write creates the missing parent directories (mode 0750), the
  // database file (0640) and the schema (migrating a version 1 database to
  // version 2 in place), and switches the database to WAL
  // with synchronous=NORMAL (a crash may lose the last transactions, never
  // corrupt the file); on Windows the new directories and the file inherit
  // their parent's ACL instead of those modes (under %ProgramData% that lets
  // local users read the database: an installation that must prevent it
  // creates the directory with a narrower ACL first). read_only requires an
  // existing DaemonEye database.
  // Both refuse a database of a newer schema version and a SQLite file that
  // is not a DaemonEye database. Throws std::runtime_error with a one-line
  // reason that names the path.
  static EventStore open(const std::string& path, Mode mode);

  // A moved-from store may only be destroyed or assigned to.
  EventStore(EventStore&&) noexcept;
  EventStore& operator=(EventStore&&) noexcept;
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;
  ~EventStore();

  const std::string& path() const noexcept;
  Mode mode() const noexcept;

  // What one write stored.
  struct Written {
    std::size_t events = 0;      // new event rows
    std::size_t duplicates = 0;  // events whose message_id was already stored (not stored again)
    std::size_t tasks = 0;       // new task records (an existing task_id is left unchanged)
  };

  // Stores events and task records in one transaction: all of them or, on
  // error, none. StoredEvent::id is ignored; an event whose message_id is
  // already stored, and a task record whose task_id is, are skipped and
  // counted. May wait up to the busy timeout for another writer.
  Result<Written> write(std::span<const StoredEvent> events, std::span<const TaskRecord> tasks);
  // write() of events only; the value is the number of new rows.
  Result<std::size_t> append(std::span<const StoredEvent> events);

  // Stores a task's outcome exactly once: the value is true if this call
  // stored it and false if a record with that task_id already exists (which
  // is left unchanged). Test the Result for errors before its value.
  Result<bool> record_task(const TaskRecord& task);

  // Matching events / task records, in the query's order. See EventQuery.
  Result<std::vector<StoredEvent>> query(const EventQuery& q) const;
  Result<std::vector<TaskRecord>> tasks(const EventQuery& q) const;

  // The same rows handed to `visit` one at a time, without collecting them;
  // iteration stops early when `visit` returns false. The value is the number
  // of rows visited. The read transaction stays open while visiting, which
  // holds back WAL checkpoints: do not visit slowly for long.
  Result<std::size_t> for_each_event(const EventQuery& q, const std::function<bool(const StoredEvent&)>& visit) const;
  Result<std::size_t> for_each_task(const EventQuery& q, const std::function<bool(const TaskRecord&)>& visit) const;

  // Deletes, in one transaction, the events with time_ns < older_than_ns and
  // the task records with submitted_ns < older_than_ns; the value is the
  // number of rows deleted (events and tasks together).
  Result<std::size_t> prune(std::int64_t older_than_ns);

  Result<std::int64_t> count_events() const;

 private:
  struct Impl;
  explicit EventStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace daemoneye::storage
