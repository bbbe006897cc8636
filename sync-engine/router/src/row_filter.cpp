// RowFilter: `SELECT (<expression>) FROM (SELECT ?1 AS "c1", ?2 AS "c2", ...)` on a private
// in-memory connection, so the expression sees exactly one row and nothing else.
#include <sqlite3.h>

#include "ipcsync/sync/changeset_transform.h"

namespace ipcsync::sync {

namespace {
std::string quoted(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}
}  // namespace

std::expected<std::unique_ptr<RowFilter>, std::string> RowFilter::compile(const TableSchema& table,
                                                                           const std::string& expression) {
  auto f = std::unique_ptr<RowFilter>(new RowFilter());
  f->m_table = table.name;
  f->m_expression = expression;
  const std::string where = "row filter '" + expression + "' of table '" + table.name + "'";
  if (sqlite3_open_v2(":memory:", &f->m_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK)
    return std::unexpected(where + ": cannot open an in-memory SQLite database");
  std::string sql = "SELECT (" + expression + ") FROM (SELECT ";
  for (std::size_t i = 0; i < table.columns.size(); ++i)
    sql += (i ? ", ?" : "?") + std::to_string(i + 1) + " AS " + quoted(table.columns[i]);
  sql += ")";
  const char* tail = nullptr;
  if (sqlite3_prepare_v2(f->m_db, sql.c_str(), -1, &f->m_stmt, &tail) != SQLITE_OK)
    return std::unexpected(where + " is not an SQL expression over the table's columns (" +
                           sqlite3_errmsg(f->m_db) + "); the columns are the source table's");
  if (tail && *tail) return std::unexpected(where + " must be one expression, not several statements");
  return f;
}

RowFilter::~RowFilter() {
  sqlite3_finalize(m_stmt);
  sqlite3_close(m_db);
}

std::expected<std::optional<bool>, std::string> RowFilter::evaluate(std::span<const ipcsync_value> row) {
  sqlite3_reset(m_stmt);
  sqlite3_clear_bindings(m_stmt);
  const int params = sqlite3_bind_parameter_count(m_stmt);
  for (int i = 0; i < params && static_cast<std::size_t>(i) < row.size(); ++i) {
    const ipcsync_value& v = row[static_cast<std::size_t>(i)];
    switch (v.type) {
      case IPCSYNC_VALUE_INTEGER: sqlite3_bind_int64(m_stmt, i + 1, v.integer); break;
      case IPCSYNC_VALUE_FLOAT: sqlite3_bind_double(m_stmt, i + 1, v.real); break;
      case IPCSYNC_VALUE_TEXT:
        sqlite3_bind_text64(m_stmt, i + 1, static_cast<const char*>(v.bytes), v.size, SQLITE_TRANSIENT, SQLITE_UTF8);
        break;
      case IPCSYNC_VALUE_BLOB: sqlite3_bind_blob64(m_stmt, i + 1, v.bytes, v.size, SQLITE_TRANSIENT); break;
      default: sqlite3_bind_null(m_stmt, i + 1); break;
    }
  }
  const int rc = sqlite3_step(m_stmt);
  if (rc != SQLITE_ROW)
    return std::unexpected("row filter '" + m_expression + "' of table '" + m_table + "' failed: " + sqlite3_errmsg(m_db));
  if (sqlite3_column_type(m_stmt, 0) == SQLITE_NULL) return std::optional<bool>{};
  return std::optional<bool>{sqlite3_column_int64(m_stmt, 0) != 0 || sqlite3_column_double(m_stmt, 0) != 0.0};
}

}  // namespace ipcsync::sync
