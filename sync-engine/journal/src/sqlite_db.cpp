#include "sqlite_db.h"

#include <fmt/format.h>

#include <utility>

namespace ipcsync::journal_detail {

JournalError sqliteError(const std::filesystem::path& file, int code, std::string_view doing, std::string_view detail) {
  const std::string where = file.string();
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return {JournalError::Kind::Busy,
              fmt::format("journal {} is locked by another process (pid unknown) for longer than the busy timeout "
                          "while trying to {}; is a second sync engine running on it? Nothing was changed; retry "
                          "when the other process is done",
                          where, doing)};
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return {JournalError::Kind::Corrupt,
              fmt::format("journal {} is damaged or is not a journal (SQLite: {}) while trying to {}; stop the sync "
                          "engine, move the file aside (keep it for inspection with `sqlite3 {} 'PRAGMA "
                          "integrity_check'`) and start again with an empty journal",
                          where, detail, doing, where)};
    case SQLITE_FULL:
      return {JournalError::Kind::Full,
              fmt::format("the file system holding journal {} is full while trying to {}; nothing was changed; free "
                          "disk space there",
                          where, doing)};
    case SQLITE_READONLY:
      return {JournalError::Kind::Io,
              fmt::format("journal {} is read-only for this process while trying to {} (SQLite: {}); give this user "
                          "write access to the file, its -wal and -shm files and its directory",
                          where, doing, detail)};
    case SQLITE_CANTOPEN:
      return {JournalError::Kind::Io,
              fmt::format("cannot open journal {} while trying to {} (SQLite: {}); check that its directory exists and "
                          "this user may create files there",
                          where, doing, detail)};
    case SQLITE_IOERR:
      return {JournalError::Kind::Io,
              fmt::format("I/O error on journal {} while trying to {} (SQLite: {}); check the disk (dmesg) and free "
                          "space; nothing of this operation was committed",
                          where, doing, detail)};
    default:
      return {JournalError::Kind::Io,
              fmt::format("journal {}: SQLite failed to {} (code {}: {}); nothing of this operation was committed",
                          where, doing, code, detail)};
  }
}

Statement::Statement(Statement&& other) noexcept : m_stmt(std::exchange(other.m_stmt, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(m_stmt);
    m_stmt = std::exchange(other.m_stmt, nullptr);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(m_stmt); }

Statement& Statement::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(m_stmt, index, value);
  return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
  sqlite3_bind_text64(m_stmt, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Statement& Statement::bind(int index, std::span<const unsigned char> value) {
  // A zero-length blob must still be a blob, not NULL: bind a zeroblob for it.
  if (value.empty())
    sqlite3_bind_zeroblob(m_stmt, index, 0);
  else
    sqlite3_bind_blob64(m_stmt, index, value.data(), value.size(), SQLITE_TRANSIENT);
  return *this;
}

int Statement::step() {
  const int rc = sqlite3_step(m_stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) reset();
  return rc;
}

void Statement::reset() {
  sqlite3_reset(m_stmt);
  sqlite3_clear_bindings(m_stmt);
}

std::int64_t Statement::integer(int column) const { return sqlite3_column_int64(m_stmt, column); }

std::string Statement::text(int column) const {
  const auto* p = sqlite3_column_text(m_stmt, column);
  const int n = sqlite3_column_bytes(m_stmt, column);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
}

std::span<const unsigned char> Statement::blob(int column) const {
  const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(m_stmt, column));
  const int n = sqlite3_column_bytes(m_stmt, column);
  return p ? std::span<const unsigned char>(p, static_cast<std::size_t>(n)) : std::span<const unsigned char>();
}

Database::~Database() { sqlite3_close_v2(m_db); }

int Database::open(const std::filesystem::path& file) {
  return sqlite3_open_v2(file.c_str(), &m_db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                         nullptr);
}

int Database::exec(const char* sql) { return sqlite3_exec(m_db, sql, nullptr, nullptr, nullptr); }

int Database::prepare(const char* sql, Statement& out) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(m_db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  out = Statement(stmt);
  return rc;
}

std::string Database::errorMessage() const { return m_db ? sqlite3_errmsg(m_db) : "out of memory"; }

Transaction::~Transaction() {
  if (m_open) m_db.exec("ROLLBACK");
}

int Transaction::begin(Mode mode) {
  const int rc = m_db.exec(mode == Mode::Write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
  m_open = rc == SQLITE_OK;
  return rc;
}

int Transaction::commit() {
  const int rc = m_db.exec("COMMIT");
  if (rc == SQLITE_OK) m_open = false;
  return rc;
}

}  // namespace ipcsync::journal_detail
