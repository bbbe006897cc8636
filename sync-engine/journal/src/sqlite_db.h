// Internal: a thin owner of one SQLite connection and its prepared statements, and the mapping of
// SQLite result codes to JournalError with a message that names the journal file. Nothing here
// throws; every failure comes back as an expected error.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <expected>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "ipcsync/sync/journal.h"

namespace ipcsync::journal_detail {

// Turns a SQLite failure into a JournalError. `doing` says what the journal was doing ("append 3
// change-sets"); the message names the file and what the operator can do about it.
JournalError sqliteError(const std::filesystem::path& file, int code, std::string_view doing, std::string_view detail);

// One prepared statement, reset after every use. Move-only; finalized on destruction.
class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* stmt) noexcept : m_stmt(stmt) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, std::span<const unsigned char> value);
  // SQLITE_ROW, SQLITE_DONE or an error code; on an error code the statement is reset.
  int step();
  void reset();

  std::int64_t integer(int column) const;
  std::string text(int column) const;
  std::span<const unsigned char> blob(int column) const;
  sqlite3_stmt* get() const noexcept { return m_stmt; }

 private:
  sqlite3_stmt* m_stmt = nullptr;
};

// Owns the connection. Methods return the SQLite code; errorMessage() has SQLite's own words.
class Database {
 public:
  Database() = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  int open(const std::filesystem::path& file);
  sqlite3* get() const noexcept { return m_db; }
  int exec(const char* sql);
  int prepare(const char* sql, Statement& out);
  std::string errorMessage() const;

 private:
  sqlite3* m_db = nullptr;
};

// A write transaction (BEGIN IMMEDIATE) rolled back unless commit() succeeded, or a read
// transaction (BEGIN DEFERRED) giving one consistent snapshot across several statements.
class Transaction {
 public:
  enum class Mode { Read, Write };
  explicit Transaction(Database& db) : m_db(db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  int begin(Mode mode);
  int commit();

 private:
  Database& m_db;
  bool m_open = false;
};

}  // namespace ipcsync::journal_detail
