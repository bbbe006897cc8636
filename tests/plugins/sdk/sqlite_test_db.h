// Test helper: a SQLite connection that throws on error, and a typed dump of a table for exact
// comparisons (every value tagged with its storage class). Shared by the SDK and CRM suites.
#pragma once

#include <sqlite3.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace ipcsync::test {

class SqliteDb {
 public:
  explicit SqliteDb(const std::string& path = ":memory:") {
    if (sqlite3_open(path.c_str(), &m_db) != SQLITE_OK) throw std::runtime_error("open " + path + ": " + sqlite3_errmsg(m_db));
    sqlite3_busy_timeout(m_db, 10000);
  }
  ~SqliteDb() { sqlite3_close_v2(m_db); }
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;
  sqlite3* get() const { return m_db; }

  void exec(const std::string& sql) const {
    char* message = nullptr;
    if (sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      std::string text = message ? message : "?";
      sqlite3_free(message);
      throw std::runtime_error("SQL failed: " + text + " in: " + sql);
    }
  }

  // Each row of `sql` rendered as "v1|v2|...", values tagged: i:42 f:1.5 t:'abc' b:x'00ff' null.
  std::vector<std::string> rows(const std::string& sql) const {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(m_db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("prepare: ") + sqlite3_errmsg(m_db) + " in: " + sql);
    std::vector<std::string> out;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        if (i) row += '|';
        switch (sqlite3_column_type(stmt, i)) {
          case SQLITE_INTEGER: row += "i:" + std::to_string(sqlite3_column_int64(stmt, i)); break;
          case SQLITE_FLOAT: {
            char buf[64];
            std::snprintf(buf, sizeof buf, "f:%.17g", sqlite3_column_double(stmt, i));
            row += buf;
            break;
          }
          case SQLITE_TEXT:
            row += "t:'" + std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, i)),
                                       static_cast<size_t>(sqlite3_column_bytes(stmt, i))) + "'";
            break;
          case SQLITE_BLOB: {
            row += "b:x'";
            const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(stmt, i));
            char buf[3];
            for (int k = 0; k < sqlite3_column_bytes(stmt, i); ++k) {
              std::snprintf(buf, sizeof buf, "%02x", p[k]);
              row += buf;
            }
            row += "'";
            break;
          }
          default: row += "null"; break;
        }
      }
      out.push_back(std::move(row));
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) throw std::runtime_error(std::string("step: ") + sqlite3_errmsg(m_db));
    return out;
  }

  std::vector<std::string> table(const std::string& name) const { return rows("SELECT * FROM " + name + " ORDER BY 1, 2"); }

  int64_t scalar(const std::string& sql) const {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(m_db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("prepare: ") + sqlite3_errmsg(m_db));
    int64_t v = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    return v;
  }

  // Applies a changeset; any conflict fails the test's expectation by throwing.
  void apply(const std::vector<unsigned char>& changeset) const {
    auto onConflict = [](void*, int, sqlite3_changeset_iter*) -> int { return SQLITE_CHANGESET_ABORT; };
    const int rc = sqlite3changeset_apply(m_db, static_cast<int>(changeset.size()),
                                          const_cast<unsigned char*>(changeset.data()), nullptr, onConflict, nullptr);
    if (rc != SQLITE_OK) throw std::runtime_error(std::string("changeset_apply: ") + sqlite3_errstr(rc));
  }

 private:
  sqlite3* m_db = nullptr;
};

}  // namespace ipcsync::test
