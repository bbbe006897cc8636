#include "crm_schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace ipcsync::crm {
namespace {

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::vector<TableInfo> parseSchema() {
  auto db = Database::open(":memory:", 0);
  auto check = [](const auto& r) {
    if (!r) {
      std::fprintf(stderr, "crm: the embedded schema.sql is broken: %s\n", r.error().message.c_str());
      std::abort();
    }
  };
  check(db);
  check(db->exec(kSchemaSql));
  auto list = db->prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table' ORDER BY rowid");
  check(list);
  std::vector<TableInfo> tables;
  for (;;) {
    auto row = list->step();
    check(row);
    if (!*row) break;
    TableInfo t;
    t.name = list->text(0);
    t.createSql = list->text(1);
    tables.push_back(std::move(t));
  }
  for (auto& t : tables) {
    auto columns = readColumns(*db, t.name);
    check(columns);
    t.columns = **columns;
    for (const auto& c : t.columns) t.primaryKey.push_back(static_cast<unsigned char>(c.pk));
  }
  return tables;
}

std::string describe(const std::vector<Column>& columns) {
  std::string out;
  for (const auto& c : columns) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} {}{}{}", c.name, c.type, c.notNull ? " NOT NULL" : "", c.pk ? fmt::format(" pk{}", c.pk) : "");
  }
  return out;
}

std::string triggerSql(const TableInfo& t, const char* event, int op) {
  std::string columns = "tbl, op, at", values = fmt::format("'{}', {}, {}", t.name, op,
                                                            "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)");
  const bool hasOld = op != IPCSYNC_OP_INSERT, hasNew = op != IPCSYNC_OP_DELETE;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (hasOld) {
      columns += fmt::format(", o{}", i);
      values += ", OLD." + quoteIdentifier(t.columns[i].name);
    }
    if (hasNew) {
      columns += fmt::format(", n{}", i);
      values += ", NEW." + quoteIdentifier(t.columns[i].name);
    }
  }
  const std::string name = fmt::format("_ipcsync_{}_{}", t.name, event);
  return fmt::format(
      "DROP TRIGGER IF EXISTS {0};\n"
      "CREATE TRIGGER {0} AFTER {1} ON {2} WHEN NOT EXISTS (SELECT 1 FROM {3})\n"
      "BEGIN INSERT INTO {4}({5}) VALUES ({6}); END;\n",
      quoteIdentifier(name), event, quoteIdentifier(t.name), kGuard, kChangeLog, columns, values);
}

Result<void> installInTransaction(Database& db, const std::string& path) {
  for (const auto& t : crmTables()) {
    auto existing = readColumns(db, t.name);
    if (!existing) return std::unexpected(existing.error());
    if (!*existing) {
      if (auto r = db.exec(t.createSql); !r) return r;
      continue;
    }
    const auto& have = **existing;
    if (std::none_of(have.begin(), have.end(), [](const Column& c) { return c.pk != 0; }))
      return fail(IPCSYNC_ESCHEMA, fmt::format("database '{}': table '{}' has no PRIMARY KEY, so its changes cannot be "
                                               "captured or applied; crm expects: {}. Use another 'database' file or "
                                               "migrate the table to schema.sql",
                                               path, t.name, describe(t.columns)));
    if (have != t.columns)
      return fail(IPCSYNC_ESCHEMA, fmt::format("database '{}': table '{}' differs from crm's schema.sql: it has ({}) "
                                               "but crm expects ({}). Use another 'database' file or migrate the table",
                                               path, t.name, describe(have), describe(t.columns)));
  }

  const int width = changeLogWidth();
  std::string log = fmt::format("CREATE TABLE IF NOT EXISTS {}(seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, "
                                "op INTEGER NOT NULL, at INTEGER NOT NULL",
                                kChangeLog);
  for (int i = 0; i < width; ++i) log += fmt::format(", o{}", i);
  for (int i = 0; i < width; ++i) log += fmt::format(", n{}", i);
  log += ");\n";
  std::string sql = log;
  sql += fmt::format("CREATE TABLE IF NOT EXISTS {}(id INTEGER PRIMARY KEY);\n", kGuard);
  sql += fmt::format("DELETE FROM {};\n", kGuard);
  sql += fmt::format("CREATE TABLE IF NOT EXISTS {}(sequence INTEGER PRIMARY KEY, first_change INTEGER NOT NULL, "
                     "last_change INTEGER NOT NULL);\n", kEmitted);
  sql += fmt::format("CREATE TABLE IF NOT EXISTS {}(key TEXT PRIMARY KEY, value INTEGER NOT NULL);\n", kState);
  sql += fmt::format("INSERT OR IGNORE INTO {}(key, value) VALUES ('last_sequence', 0), ('last_change', 0), "
                     "('acked_sequence', 0);\n", kState);
  sql += fmt::format("CREATE TABLE IF NOT EXISTS {}(route TEXT PRIMARY KEY, sequence INTEGER NOT NULL, origin TEXT, "
                     "applied_at INTEGER NOT NULL);\n", kApplied);
  if (auto r = db.exec(sql); !r) return r;

  auto logColumns = readColumns(db, kChangeLog);
  if (!logColumns) return std::unexpected(logColumns.error());
  if ((*logColumns)->size() != static_cast<size_t>(4 + 2 * width))
    return fail(IPCSYNC_ESCHEMA, fmt::format("database '{}': crm's change log {} has {} columns but this crm needs {}; it "
                                             "was made by another version. Let it drain (acknowledge), then drop it",
                                             path, kChangeLog, (*logColumns)->size(), 4 + 2 * width));

  std::string triggers;
  for (const auto& t : crmTables()) {
    triggers += triggerSql(t, "INSERT", IPCSYNC_OP_INSERT);
    triggers += triggerSql(t, "UPDATE", IPCSYNC_OP_UPDATE);
    triggers += triggerSql(t, "DELETE", IPCSYNC_OP_DELETE);
  }
  return db.exec(triggers);
}

}  // namespace

int TableInfo::columnIndex(std::string_view column) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i].name == column) return static_cast<int>(i);
  return -1;
}

const std::vector<TableInfo>& crmTables() {
  static const std::vector<TableInfo> tables = parseSchema();
  return tables;
}

const TableInfo* findCrmTable(std::string_view name) {
  for (const auto& t : crmTables())
    if (t.name == name) return &t;
  return nullptr;
}

int changeLogWidth() {
  size_t width = 0;
  for (const auto& t : crmTables()) width = std::max(width, t.columns.size());
  return static_cast<int>(width);
}

Result<std::optional<std::vector<Column>>> readColumns(Database& db, const std::string& table) {
  auto stmt = db.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)");
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, table);
  std::vector<Column> columns;
  for (;;) {
    auto row = stmt->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    columns.push_back(Column{stmt->text(0), upper(stmt->text(1)), stmt->integer(2) != 0, static_cast<int>(stmt->integer(3))});
  }
  if (columns.empty()) return std::optional<std::vector<Column>>{};
  return std::optional<std::vector<Column>>{std::move(columns)};
}

Result<void> installSchema(Database& db, const std::string& path) {
  if (auto r = db.exec("BEGIN IMMEDIATE"); !r) return r;
  auto r = installInTransaction(db, path);
  if (!r) {
    db.rollback();
    return r;
  }
  return db.exec("COMMIT");
}

}  // namespace ipcsync::crm
