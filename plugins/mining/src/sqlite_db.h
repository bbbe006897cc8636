// Thin RAII over the SQLite C API for the mining plugin: a move-only connection and prepared
// statements that reset themselves. Every failure becomes an Error naming the SQL and SQLite's
// message; SQLITE_BUSY/LOCKED become ErrorKind::Busy. Not thread-safe: one thread per connection.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "error.h"

namespace ipcsync::mining {

class Statement;

// An Error for SQLite result code `rc` on connection `db`, with `what` in front.
Error sqliteError(sqlite3* db, int rc, std::string_view what);

class Database {
 public:
  // Opens (creating if needed) the database file at `path`. Storage error names the path.
  static Expected<Database> open(const std::string& path);

  Database(Database&& other) noexcept : m_db(std::exchange(other.m_db, nullptr)) {}
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs one or more statements that return no rows.
  Expected<> exec(const std::string& sql);
  // Prepares one statement; the statement must not outlive this connection.
  Expected<Statement> prepare(std::string_view sql);
  // Runs a query returning one integer (e.g. a PRAGMA); nullopt when it returns no row.
  Expected<std::optional<int64_t>> queryInt(const std::string& sql);

  sqlite3* handle() const { return m_db; }

 private:
  explicit Database(sqlite3* db) : m_db(db) {}
  sqlite3* m_db = nullptr;
};

class Statement {
 public:
  Statement(Statement&& other) noexcept
      : m_db(other.m_db), m_stmt(std::exchange(other.m_stmt, nullptr)) {}
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Binding (1-based). A bound value stays until the next reset(), which step() does on SQLITE_DONE.
  void bindNull(int index);
  void bindInt(int index, int64_t value);
  void bindText(int index, std::string_view value);
  // Binds a copy of `value` (a protected sqlite3_value) or NULL when it is nullptr.
  void bindValue(int index, sqlite3_value* value);

  // Steps once: true when a row is available, false when done (the statement is then reset).
  Expected<bool> step();
  // Steps to completion, ignoring rows, then resets.
  Expected<> run();
  void reset();

  int64_t columnInt(int index) const { return sqlite3_column_int64(m_stmt, index); }
  bool columnIsNull(int index) const { return sqlite3_column_type(m_stmt, index) == SQLITE_NULL; }
  std::string columnText(int index) const;

 private:
  friend class Database;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : m_db(db), m_stmt(stmt) {}
  sqlite3* m_db = nullptr;
  sqlite3_stmt* m_stmt = nullptr;
};

}  // namespace ipcsync::mining
