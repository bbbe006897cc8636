// TableSchema: what the sync engine knows of a plugin's table, read from the plugin's Describe
// answer (the JSON `ipcsync-plugin-host --describe` prints): its columns in order, which of them
// form the primary key, and whether the plugin produces and/or accepts it.
//
// Change-sets carry values by position only; the column names here are what row filters and
// include/exclude lists refer to. Plain data; parsing runs each schema in a private in-memory
// SQLite database and reads `pragma table_info` back, so the names are SQLite's own.
#pragma once

#include <expected>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ipcsync::sync {

struct TableSchema {
  std::string name;
  std::vector<std::string> columns;       // in declaration order, as change-sets carry them
  std::vector<unsigned char> primaryKey;  // one flag per column, 1 = part of the primary key
  bool produces = false, accepts = false;

  // The position of `column`, or -1.
  int columnIndex(const std::string& column) const;
  bool operator==(const TableSchema&) const = default;
};

using SchemaMap = std::map<std::string, TableSchema, std::less<>>;

// Parses a Describe answer. The error names the instance, the table and what is wrong.
std::expected<SchemaMap, std::string> parseDescription(const std::string& instance, const std::string& json);

// The columns of one CREATE TABLE statement (used by parseDescription and by tests).
std::expected<TableSchema, std::string> schemaFromSql(const std::string& table, const std::string& createSql);

}  // namespace ipcsync::sync
