#include "sqlite_handle.h"

#include <fmt/format.h>

#include <utility>

namespace ipcsync::crm {

std::unexpected<Error> sqliteFailure(sqlite3* db, int rc, std::string_view doing) {
  const char* detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return fail(IPCSYNC_EIO, fmt::format("{}: {} (SQLite code {})", doing, detail, rc));
}

Statement::Statement(Statement&& other) noexcept
    : m_db(std::exchange(other.m_db, nullptr)), m_stmt(std::exchange(other.m_stmt, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(m_stmt);
    m_db = std::exchange(other.m_db, nullptr);
    m_stmt = std::exchange(other.m_stmt, nullptr);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(m_stmt); }

Statement& Statement::bind(int index, int64_t value) {
  sqlite3_bind_int64(m_stmt, index, value);
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  sqlite3_bind_text64(m_stmt, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Statement& Statement::bindNull(int index) {
  sqlite3_bind_null(m_stmt, index);
  return *this;
}

Statement& Statement::bindValue(int index, const ipcsync_value& v) {
  switch (v.type) {
    case IPCSYNC_VALUE_INTEGER: sqlite3_bind_int64(m_stmt, index, v.integer); break;
    case IPCSYNC_VALUE_FLOAT: sqlite3_bind_double(m_stmt, index, v.real); break;
    case IPCSYNC_VALUE_TEXT:
      sqlite3_bind_text64(m_stmt, index, static_cast<const char*>(v.bytes), v.size, SQLITE_TRANSIENT, SQLITE_UTF8);
      break;
    case IPCSYNC_VALUE_BLOB: sqlite3_bind_blob64(m_stmt, index, v.bytes, v.size, SQLITE_TRANSIENT); break;
    default: sqlite3_bind_null(m_stmt, index); break;
  }
  return *this;
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(m_stmt);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqliteFailure(m_db, rc, fmt::format("running '{}'", sqlite3_sql(m_stmt)));
}

Result<void> Statement::run() {
  for (;;) {
    auto more = step();
    if (!more) {
      reset();
      return std::unexpected(more.error());
    }
    if (!*more) break;
  }
  reset();
  return {};
}

void Statement::reset() {
  sqlite3_reset(m_stmt);
  sqlite3_clear_bindings(m_stmt);
}

std::string Statement::text(int column) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(m_stmt, column));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(m_stmt, column))) : std::string();
}

Result<Database> Database::open(const std::string& path, int busyTimeoutMs) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    auto error = fail(IPCSYNC_EIO, fmt::format("cannot open the database '{}': {}; check the 'database' setting and "
                                               "the directory's permissions", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close_v2(db);
    return error;
  }
  Database out(db);
  sqlite3_busy_timeout(db, busyTimeoutMs);
  sqlite3_extended_result_codes(db, 1);
  if (auto r = out.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !r) {
    r.error().message = fmt::format("database '{}': {}", path, r.error().message);
    return std::unexpected(r.error());
  }
  return out;
}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(m_db);
    m_db = std::exchange(other.m_db, nullptr);
  }
  return *this;
}

Database::~Database() { sqlite3_close_v2(m_db); }

Result<void> Database::exec(const std::string& sql) {
  char* message = nullptr;
  const int rc = sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string text = message ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    std::string head = sql.substr(0, 80);
    return fail(IPCSYNC_EIO, fmt::format("running '{}{}': {} (SQLite code {})", head, sql.size() > 80 ? "..." : "", text, rc));
  }
  return {};
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(m_db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return sqliteFailure(m_db, rc, fmt::format("preparing '{}'", sql));
  return Statement(m_db, stmt);
}

Result<int64_t> Database::integer(std::string_view sql, int64_t fallback) {
  auto stmt = prepare(sql);
  if (!stmt) return std::unexpected(stmt.error());
  auto row = stmt->step();
  if (!row) return std::unexpected(row.error());
  return *row && !stmt->isNull(0) ? stmt->integer(0) : fallback;
}

void Database::rollback() {
  if (inTransaction()) sqlite3_exec(m_db, "ROLLBACK", nullptr, nullptr, nullptr);
}

std::string quoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace ipcsync::crm
