#include "crm_source.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ipcsync::test {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void check(sqlite3* db, int rc, const std::string& what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
    throw std::runtime_error(what + ": " + sqlite3_errmsg(db));
}

std::string render(sqlite3_stmt* stmt, int column) {
  switch (sqlite3_column_type(stmt, column)) {
    case SQLITE_NULL: return "NULL";
    case SQLITE_INTEGER: return "i:" + std::to_string(sqlite3_column_int64(stmt, column));
    case SQLITE_FLOAT: return "f:" + std::to_string(sqlite3_column_double(stmt, column));
    default: {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
      return "t:" + std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt, column)));
    }
  }
}

}  // namespace

Rows queryRows(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  check(db, sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), "prepare " + sql);
  Rows rows;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int i = 0; i < sqlite3_column_count(stmt); ++i) row.push_back(render(stmt, i));
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) throw std::runtime_error(sql + ": " + sqlite3_errmsg(db));
  return rows;
}

CrmSource::CrmSource(const std::string& extraSql, bool withCrmSchema) {
  if (sqlite3_open(":memory:", &m_db) != SQLITE_OK) throw std::runtime_error("cannot open the source database");
  const std::string sql = (withCrmSchema ? readFile(IPCSYNC_CRM_SCHEMA_SQL) : std::string()) + extraSql;
  check(m_db, sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, nullptr), "source schema");
}

CrmSource::~CrmSource() { sqlite3_close(m_db); }

void CrmSource::run(const std::string& sql, const std::vector<Param>& params) {
  sqlite3_stmt* stmt = nullptr;
  check(m_db, sqlite3_prepare_v2(m_db, sql.c_str(), -1, &stmt, nullptr), "prepare " + sql);
  for (size_t i = 0; i < params.size(); ++i) {
    const int index = static_cast<int>(i + 1);
    if (const auto* v = std::get_if<int64_t>(&params[i]))
      sqlite3_bind_int64(stmt, index, *v);
    else if (const auto* s = std::get_if<std::string>(&params[i]))
      sqlite3_bind_text(stmt, index, s->c_str(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
    else
      sqlite3_bind_null(stmt, index);
  }
  const int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) throw std::runtime_error(sql + ": " + sqlite3_errmsg(m_db));
}

Rows CrmSource::query(const std::string& sql) const { return queryRows(m_db, sql); }

int64_t CrmSource::queryInt(const std::string& sql) const {
  sqlite3_stmt* stmt = nullptr;
  check(m_db, sqlite3_prepare_v2(m_db, sql.c_str(), -1, &stmt, nullptr), "prepare " + sql);
  const int64_t value = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  return value;
}

Bytes CrmSource::capture(const std::function<void()>& body) {
  check(m_db, sqlite3_exec(m_db, "BEGIN", nullptr, nullptr, nullptr), "BEGIN");
  sqlite3_session* session = nullptr;
  check(m_db, sqlite3session_create(m_db, "main", &session), "sqlite3session_create");
  Bytes out;
  try {
    check(m_db, sqlite3session_attach(session, nullptr), "sqlite3session_attach");
    body();
    int size = 0;
    void* data = nullptr;
    check(m_db, sqlite3session_changeset(session, &size, &data), "sqlite3session_changeset");
    const auto* bytes = static_cast<const unsigned char*>(data);
    out.assign(bytes, bytes + size);
    sqlite3_free(data);
  } catch (...) {
    sqlite3session_delete(session);
    sqlite3_exec(m_db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  sqlite3session_delete(session);
  check(m_db, sqlite3_exec(m_db, "COMMIT", nullptr, nullptr, nullptr), "COMMIT");
  return out;
}

}  // namespace ipcsync::test
