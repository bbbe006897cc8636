// Internal: a small RAII layer over the SQLite C API for the crm plugin. Every failure becomes an
// Error carrying an ipcsync status and a message naming what was being done.
#pragma once

#include <ipcsync/plugin.h>
#include <sqlite3.h>

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace ipcsync::crm {

struct Error {
  int status = IPCSYNC_EINTERNAL;  // IPCSYNC_E*
  std::string message;
};
template <class T = void>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(int status, std::string message) { return std::unexpected(Error{status, std::move(message)}); }

// The database's own error turned into IPCSYNC_EIO (storage failed, locked, corrupt, ...).
std::unexpected<Error> sqliteFailure(sqlite3* db, int rc, std::string_view doing);

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : m_db(db), m_stmt(stmt) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& bind(int index, int64_t value);
  Statement& bind(int index, std::string_view text);
  Statement& bindNull(int index);
  Statement& bindValue(int index, const ipcsync_value& value);  // UNDEFINED binds NULL
  Result<bool> step();  // true: a row is ready; false: done
  Result<void> run();   // steps to the end, then resets
  void reset();         // ready to run again, bindings cleared

  int64_t integer(int column) const { return sqlite3_column_int64(m_stmt, column); }
  std::string text(int column) const;
  bool isNull(int column) const { return sqlite3_column_type(m_stmt, column) == SQLITE_NULL; }
  sqlite3_stmt* get() const { return m_stmt; }

 private:
  sqlite3* m_db = nullptr;
  sqlite3_stmt* m_stmt = nullptr;
};

class Database {
 public:
  // Opens (creating if absent) `path` in WAL mode with a busy timeout.
  static Result<Database> open(const std::string& path, int busyTimeoutMs);
  Database(Database&& other) noexcept : m_db(std::exchange(other.m_db, nullptr)) {}
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  Result<void> exec(const std::string& sql);
  Result<Statement> prepare(std::string_view sql);
  // The first column of the first row, or `fallback` when there is no row or it is NULL.
  Result<int64_t> integer(std::string_view sql, int64_t fallback);
  bool inTransaction() const { return m_db && !sqlite3_get_autocommit(m_db); }
  void rollback();  // if a transaction is open; never fails
  sqlite3* get() const { return m_db; }

 private:
  explicit Database(sqlite3* db) : m_db(db) {}
  sqlite3* m_db = nullptr;
};

// Double-quotes an SQL identifier.
std::string quoteIdentifier(std::string_view name);

}  // namespace ipcsync::crm
