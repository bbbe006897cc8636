#include "sqlite_db.h"

#include <utility>

namespace ipcsync::mining {

Expected<Database> Database::open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string message = "cannot open the mining database '" + path + "': " +
                          (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)) +
                          "; check the 'database' setting and that its directory exists and is writable";
    sqlite3_close_v2(db);
    return fail(ErrorKind::Storage, std::move(message));
  }
  sqlite3_extended_result_codes(db, 1);
  return Database(db);
}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(m_db);
    m_db = std::exchange(other.m_db, nullptr);
  }
  return *this;
}

Database::~Database() { sqlite3_close_v2(m_db); }

Error sqliteError(sqlite3* db, int rc, std::string_view what) {
  const int primary = rc & 0xff;
  const ErrorKind kind = (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) ? ErrorKind::Busy : ErrorKind::Storage;
  std::string message = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  if (kind == ErrorKind::Busy) message += " (another process holds the mining database; try again later)";
  return Error{kind, std::move(message)};
}

Expected<> Database::exec(const std::string& sql) {
  const int rc = sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) return {};
  const std::string shown = sql.size() > 60 ? sql.substr(0, 60) + "..." : sql;
  return std::unexpected(sqliteError(m_db, rc, "SQL '" + shown + "' failed"));
}

Expected<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(m_db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                                    nullptr);
  if (rc != SQLITE_OK) return std::unexpected(sqliteError(m_db, rc, "cannot prepare '" + std::string(sql) + "'"));
  return Statement(m_db, stmt);
}

Expected<std::optional<int64_t>> Database::queryInt(const std::string& sql) {
  auto stmt = prepare(sql);
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::optional<int64_t>{};
  const int64_t value = stmt->columnInt(0);
  stmt->reset();
  return std::optional<int64_t>{value};
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(m_stmt);
    m_db = other.m_db;
    m_stmt = std::exchange(other.m_stmt, nullptr);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(m_stmt); }

void Statement::bindNull(int index) { sqlite3_bind_null(m_stmt, index); }
void Statement::bindInt(int index, int64_t value) { sqlite3_bind_int64(m_stmt, index, value); }
void Statement::bindText(int index, std::string_view value) {
  sqlite3_bind_text64(m_stmt, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}
void Statement::bindValue(int index, sqlite3_value* value) {
  if (value)
    sqlite3_bind_value(m_stmt, index, value);
  else
    sqlite3_bind_null(m_stmt, index);
}

Expected<bool> Statement::step() {
  const int rc = sqlite3_step(m_stmt);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) {
    reset();
    return false;
  }
  Error e = sqliteError(m_db, rc, std::string("statement '") + sqlite3_sql(m_stmt) + "' failed");
  reset();
  return std::unexpected(std::move(e));
}

Expected<> Statement::run() {
  for (;;) {
    auto row = step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return {};
  }
}

void Statement::reset() {
  sqlite3_reset(m_stmt);
  sqlite3_clear_bindings(m_stmt);
}

std::string Statement::columnText(int index) const {
  const auto* text = sqlite3_column_text(m_stmt, index);
  return text ? std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(sqlite3_column_bytes(m_stmt, index)))
              : std::string();
}

}  // namespace ipcsync::mining
