#pragma once
// Minimal RAII over the sqlite3 C API, private to src/storage: a connection
// and prepared statements. Neither is thread-safe; a connection and its
// statements belong to one thread at a time.

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include <daemoneye/eventbus/error.hpp>

namespace daemoneye::storage::detail {

// The failure after result code `rc` on `db` (may be null): the primary code
// in sqlite_category(), SQLite's message of the connection as detail.
eventbus::Failure failure(sqlite3* db, int rc);

class Statement {
 public:
  Statement() = default;
  Statement(Statement&& o) noexcept : stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Statement& operator=(Statement&& o) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  // One SQL statement. `persistent`: kept for the connection's lifetime
  // (SQLITE_PREPARE_PERSISTENT), for cached statements.
  static eventbus::Result<Statement> prepare(sqlite3* db, std::string_view sql, bool persistent = false);

  explicit operator bool() const noexcept { return stmt_ != nullptr; }
  sqlite3_stmt* get() const noexcept { return stmt_; }

  // Parameters are numbered from 1. Text is bound without copying: it must
  // stay valid until the statement is stepped to the end or reset.
  void bind(int index, std::int64_t value) noexcept { sqlite3_bind_int64(stmt_, index, value); }
  void bind(int index, std::string_view text) noexcept;
  void bind_or_null(int index, std::string_view text) noexcept;  // empty text: NULL

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() noexcept { return sqlite3_step(stmt_); }
  // Ready for the next use: reset and bindings cleared.
  void reset() noexcept;

  std::int64_t int64(int column) const noexcept { return sqlite3_column_int64(stmt_, column); }
  std::string text(int column) const;  // NULL: empty

 private:
  explicit Statement(sqlite3_stmt* s) noexcept : stmt_(s) {}
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets the statement when the scope ends, so a cached statement never
// stays mid-step (holding a read transaction open) after an early return.
class ResetGuard {
 public:
  explicit ResetGuard(Statement& s) noexcept : s_(s) {}
  ~ResetGuard() { s_.reset(); }
  ResetGuard(const ResetGuard&) = delete;
  ResetGuard& operator=(const ResetGuard&) = delete;

 private:
  Statement& s_;
};

class Database {
 public:
  Database() = default;
  Database(Database&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  Database& operator=(Database&& o) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  // Statements must be finalized first (sqlite3_close_v2 defers otherwise).
  ~Database() { sqlite3_close_v2(db_); }

  // sqlite3_open_v2 with `flags`; the failure carries SQLite's reason.
  static eventbus::Result<Database> open(const std::string& path, int flags);

  sqlite3* get() const noexcept { return db_; }

  // Runs SQL text (one or more statements) that returns no rows we need.
  eventbus::Result<void> exec(const char* sql);
  // The first column of the first row of a one-statement query (e.g. a PRAGMA).
  eventbus::Result<std::int64_t> query_int(std::string_view sql);
  eventbus::Result<std::string> query_text(std::string_view sql);

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace daemoneye::storage::detail
