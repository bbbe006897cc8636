// validateTopology(): the checks of a loaded configuration's routes against what the plugins
// say about themselves (plugin_describe.h). Shared by `ipcsync validate` and ipcsyncd, which
// refuses to start (exit 2) or to reload on a topology that fails them.
//
// For every route and direction (a bidirectional route also from each target back to its
// source): each table is produced by the source and accepted, under its rename, by the target;
// every table has a primary key (one without cannot be captured); include/exclude columns,
// the timestamp column and the row filter's columns exist in the table's schema (read by
// running the plugin's schema_sql in a private in-memory SQLite database and asking
// `PRAGMA table_info`); no primary-key column is excluded; a row filter compiles as one SQL
// expression over the table's columns. Across routes: no two ways carry one table of one origin
// to one subscriber (each change would arrive twice, out of order). Loading (loadDaemonConfig)
// has already refused unknown instances, a route to its own source and duplicate names. No
// state; thread-compatible.
#pragma once

#include <expected>
#include <functional>
#include <string>
#include <vector>

#include "ipcsync/sync/engine_config_file.h"
#include "ipcsync/sync/plugin_describe.h"

namespace ipcsync {

// Describes one configured instance's library (the real one runs the plugin host in a child).
using PluginDescriber = std::function<std::expected<PluginDescription, std::string>(const PluginInstanceConfig&)>;

// A describer that runs `hostProgram --plugin <library> --describe`, once per library file.
PluginDescriber hostDescriber(std::filesystem::path hostProgram);

struct TopologyReport {
  std::vector<std::string> errors;  // each "FILE:LINE:COL: route 'r': what is wrong; what to do"; empty: valid
  std::size_t plugins = 0;          // instances described
  std::size_t routes = 0;
  bool ok() const { return errors.empty(); }
};

// Describes every configured instance (a plugin that cannot be described is an error naming
// it) and checks every route. Reports every problem, not only the first.
TopologyReport validateTopology(const DaemonConfig& config, const PluginDescriber& describe);

// The columns of a table as SQLite declares them from `createSql`: names in order and which are
// in the primary key. The error carries SQLite's message.
struct TableColumns {
  std::vector<std::string> names;
  std::vector<bool> primaryKey;
  bool hasPrimaryKey() const;
  bool has(const std::string& column) const;
};
std::expected<TableColumns, std::string> tableColumns(const std::string& table, const std::string& createSql);

// Empty when `filter` compiles as one SQL expression over `table` (created from `createSql`),
// else SQLite's reason.
std::string checkRowFilter(const std::string& table, const std::string& createSql, const std::string& filter);

}  // namespace ipcsync
