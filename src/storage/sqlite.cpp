#include "storage/sqlite.hpp"

#include <utility>

#include "storage/event_store.hpp"

namespace daemoneye::storage {

namespace {

class SqliteCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sqlite"; }
  std::string message(int code) const override { return sqlite3_errstr(code); }
};

}  // namespace

const std::error_category& sqlite_category() noexcept {
  static const SqliteCategory category;
  return category;
}

namespace detail {

eventbus::Failure failure(sqlite3* db, int rc) {
  const int primary = rc & 0xff;
  std::string detail;
  // The connection's message belongs to its last failed call; only use it
  // when it is about this code, and when it adds to the generic text.
  if (db != nullptr && (sqlite3_errcode(db) & 0xff) == primary) {
    detail = sqlite3_errmsg(db);
    if (detail == sqlite3_errstr(primary)) detail.clear();
  }
  return {std::error_code(primary, sqlite_category()), std::move(detail)};
}

Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(o.stmt_, nullptr);
  }
  return *this;
}

eventbus::Result<Statement> Statement::prepare(sqlite3* db, std::string_view sql, bool persistent) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    persistent ? SQLITE_PREPARE_PERSISTENT : 0u, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return failure(db, rc);
  }
  return Statement(stmt);
}

void Statement::bind(int index, std::string_view text) noexcept {
  // A null data pointer would bind NULL; empty text must stay ''.
  sqlite3_bind_text(stmt_, index, text.empty() ? "" : text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}

void Statement::bind_or_null(int index, std::string_view text) noexcept {
  if (text.empty()) {
    sqlite3_bind_null(stmt_, index);
  } else {
    bind(index, text);
  }
}

void Statement::reset() noexcept {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string Statement::text(int column) const {
  const auto* p = sqlite3_column_text(stmt_, column);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

Database& Database::operator=(Database&& o) noexcept {
  if (this != &o) {
    sqlite3_close_v2(db_);
    db_ = std::exchange(o.db_, nullptr);
  }
  return *this;
}

eventbus::Result<Database> Database::open(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    auto f = failure(db, rc);
    sqlite3_close_v2(db);
    return f;
  }
  Database d;
  d.db_ = db;
  return d;
}

eventbus::Result<void> Database::exec(const char* sql) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return failure(db_, rc);
  return {};
}

eventbus::Result<std::int64_t> Database::query_int(std::string_view sql) {
  auto st = Statement::prepare(db_, sql);
  if (!st) return st.failure();
  const int rc = st->step();
  if (rc == SQLITE_ROW) return st->int64(0);
  if (rc == SQLITE_DONE) return std::int64_t{0};
  return failure(db_, rc);
}

eventbus::Result<std::string> Database::query_text(std::string_view sql) {
  auto st = Statement::prepare(db_, sql);
  if (!st) return st.failure();
  const int rc = st->step();
  if (rc == SQLITE_ROW) return st->text(0);
  if (rc == SQLITE_DONE) return std::string{};
  return failure(db_, rc);
}

}  // namespace detail
}  // namespace daemoneye::storage
