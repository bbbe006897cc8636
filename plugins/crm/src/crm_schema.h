// Internal: the CRM tables (from schema.sql, embedded at build time) and what crm installs beside
// them in a database: the change log the capture triggers fill, the no-echo guard, and the
// plugin's own state. See docs/plugins/crm.md for the layout.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sqlite_handle.h"

namespace ipcsync::crm {

extern const char* const kSchemaSql;

struct Column {
  std::string name, type;
  bool notNull = false;
  int pk = 0;  // 1-based position in the primary key, 0 if not part of it
  bool operator==(const Column&) const = default;
};

struct TableInfo {
  std::string name;
  std::string createSql;  // the CREATE TABLE statement as schema.sql has it
  std::vector<Column> columns;
  std::vector<unsigned char> primaryKey;  // one flag per column, as changesets carry them
  int columnIndex(std::string_view column) const;  // -1 if absent
};

// The CRM tables in schema.sql's order, parsed once. Aborts if the embedded schema is broken
// (a build defect, caught by every test).
const std::vector<TableInfo>& crmTables();
const TableInfo* findCrmTable(std::string_view name);

// The table's columns in `db` (PRAGMA table_info), or nothing if it does not exist.
Result<std::optional<std::vector<Column>>> readColumns(Database& db, const std::string& table);

// In one transaction: creates the CRM tables that are missing, refuses (IPCSYNC_ESCHEMA) tables
// that differ from schema.sql, and installs the change log, guard, state tables and triggers.
Result<void> installSchema(Database& db, const std::string& path);

// Names of crm's own objects.
inline constexpr const char* kChangeLog = "_ipcsync_changes";
inline constexpr const char* kGuard = "_ipcsync_applying";
inline constexpr const char* kEmitted = "_ipcsync_emitted";
inline constexpr const char* kState = "_ipcsync_state";
inline constexpr const char* kApplied = "_ipcsync_applied";

// Widest CRM table: the change log has this many old (o0..) and new (n0..) value columns.
int changeLogWidth();

}  // namespace ipcsync::crm
