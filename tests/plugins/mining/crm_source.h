// A scratch "source" CRM database for the mining tests: the real CRM schema (plugins/crm/schema.sql)
// in memory, transactions captured with the SQLite session extension exactly as the CRM plugin
// would emit them, and row queries rendered as text for comparisons.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace ipcsync::test {

using Param = std::variant<std::monostate, int64_t, std::string>;  // monostate binds NULL
using Rows = std::vector<std::vector<std::string>>;                 // each value as "NULL", "i:5", "t:x"
using Bytes = std::vector<unsigned char>;

class CrmSource {
 public:
  // An in-memory database holding the CRM schema plus `extraSql` (e.g. tables of another shape).
  explicit CrmSource(const std::string& extraSql = "", bool withCrmSchema = true);
  ~CrmSource();
  CrmSource(const CrmSource&) = delete;
  CrmSource& operator=(const CrmSource&) = delete;

  // Runs `sql` with `params` bound; throws std::runtime_error naming the SQL on failure.
  void run(const std::string& sql, const std::vector<Param>& params = {});
  Rows query(const std::string& sql) const;
  int64_t queryInt(const std::string& sql) const;

  // Runs `body` in one transaction recorded by a session on every table; returns the changeset.
  Bytes capture(const std::function<void()>& body);

  sqlite3* handle() const { return m_db; }

 private:
  sqlite3* m_db = nullptr;
};

// Rows of `sql` on connection `db`, rendered as in Rows.
Rows queryRows(sqlite3* db, const std::string& sql);

}  // namespace ipcsync::test
