#include "ipcsync/sync/table_schema.h"

#include <sqlite3.h>

#include <memory>
#include <nlohmann/json.hpp>

namespace ipcsync::sync {

int TableSchema::columnIndex(const std::string& column) const {
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == column) return static_cast<int>(i);
  return -1;
}

namespace {
struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
}  // namespace

std::expected<TableSchema, std::string> schemaFromSql(const std::string& table, const std::string& createSql) {
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    sqlite3_close(raw);
    return std::unexpected("cannot open an in-memory SQLite database to read table '" + table + "'");
  }
  std::unique_ptr<sqlite3, DbCloser> db(raw);
  char* err = nullptr;
  if (sqlite3_exec(db.get(), createSql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "unknown error";
    sqlite3_free(err);
    return std::unexpected("the schema of table '" + table + "' does not run in SQLite: " + why);
  }
  sqlite3_stmt* rawStmt = nullptr;
  if (sqlite3_prepare_v2(db.get(), "SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid", -1, &rawStmt, nullptr) !=
      SQLITE_OK)
    return std::unexpected(std::string("cannot read table_info: ") + sqlite3_errmsg(db.get()));
  std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt(rawStmt);
  sqlite3_bind_text(stmt.get(), 1, table.c_str(), -1, SQLITE_TRANSIENT);
  TableSchema out;
  out.name = table;
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
    out.columns.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0)));
    out.primaryKey.push_back(sqlite3_column_int(stmt.get(), 1) > 0 ? 1 : 0);
  }
  if (out.columns.empty())
    return std::unexpected("the schema given for table '" + table + "' does not create a table of that name");
  return out;
}

std::expected<SchemaMap, std::string> parseDescription(const std::string& instance, const std::string& json) {
  SchemaMap out;
  try {
    const auto doc = nlohmann::json::parse(json);
    for (const auto& t : doc.at("tables")) {
      const auto name = t.at("name").get<std::string>();
      auto schema = schemaFromSql(name, t.at("schema").get<std::string>());
      if (!schema) return std::unexpected("instance '" + instance + "': " + schema.error());
      schema->produces = t.value("produces", false);
      schema->accepts = t.value("accepts", false);
      out[name] = std::move(*schema);
    }
  } catch (const std::exception& e) {
    return std::unexpected("instance '" + instance + "' described itself with JSON the sync engine cannot read (" +
                           e.what() + "); run a plugin host and sync engine of the same build");
  }
  return out;
}

}  // namespace ipcsync::sync
