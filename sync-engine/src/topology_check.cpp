#include "ipcsync/sync/topology_check.h"

#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <memory>

#include "ipcsync/sync/route_plan.h"

namespace ipcsync {
namespace {

struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using Db = std::unique_ptr<sqlite3, DbClose>;
struct StmtFinalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

std::string quoted(const std::string& name) {
  std::string out = "\"";
  for (char ch : name) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

// A private in-memory database holding just `createSql`.
std::expected<Db, std::string> schemaDb(const std::string& createSql) {
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    Db guard(raw);
    return std::unexpected(std::string("cannot open an in-memory SQLite database: ") + sqlite3_errmsg(raw));
  }
  Db db(raw);
  char* err = nullptr;
  if (sqlite3_exec(db.get(), createSql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return std::unexpected("its schema_sql does not run: " + msg);
  }
  return db;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "(none)" : out;
}

std::vector<std::string> tablesWhere(const PluginDescription& d, bool produces) {
  std::vector<std::string> out;
  for (const auto& t : d.tables)
    if (produces ? t.produces : t.accepts) out.push_back(t.name);
  return out;
}

class Checker {
 public:
  Checker(const DaemonConfig& config, std::map<std::string, PluginDescription> described, std::vector<std::string>& errors)
      : m_config(config), m_described(std::move(described)), m_errors(errors) {}

  void route(const RouteConfig& r) {
    for (const auto& target : r.to) {
      direction(r, r.from, target, false);
      if (r.bidirectional) direction(r, target, r.from, true);
    }
  }

 private:
  void error(const std::string& where, const RouteConfig& r, const std::string& text) {
    m_errors.push_back((where.empty() ? r.where : where) + ": route '" + r.name + "': " + text);
  }
  const PluginDescription* described(const std::string& instance) const {
    auto it = m_described.find(instance);
    return it == m_described.end() ? nullptr : &it->second;
  }
  std::string library(const std::string& instance) const {
    for (const auto& i : m_config.plugins.instances)
      if (i.name == instance) return i.libraryAsWritten;
    return "?";
  }

  void direction(const RouteConfig& r, const std::string& source, const std::string& target, bool reverse) {
    const PluginDescription* src = described(source);
    const PluginDescription* dst = described(target);
    if (!src || !dst) return;  // already reported: it could not be described
    const std::string dir = reverse ? " (bidirectional: from '" + source + "' back to '" + target + "')" : "";
    std::vector<TableRule> rules = r.tables;
    if (rules.empty()) {
      for (const auto& t : src->tables)
        if (t.produces && dst->table(t.name) && dst->table(t.name)->accepts) rules.push_back(TableRule{t.name, {}, {}, {}, {}, r.where});
      if (rules.empty())
        error(r.where, r, "no table is both produced by '" + source + "' (" + joined(tablesWhere(*src, true)) +
                              ") and accepted by '" + target + "' (" + joined(tablesWhere(*dst, false)) + ")" + dir +
                              "; list the tables to carry, or fix from/to");
    }
    for (TableRule rule : rules) {
      if (reverse && !rule.renameTo.empty()) std::swap(rule.table, rule.renameTo);
      table(r, rule, source, *src, target, *dst, dir);
    }
  }

  void table(const RouteConfig& r, const TableRule& rule, const std::string& source, const PluginDescription& src,
             const std::string& target, const PluginDescription& dst, const std::string& dir) {
    const std::string at = rule.where;
    const std::string arrived = rule.renameTo.empty() ? rule.table : rule.renameTo;
    const PluginTable* s = src.table(rule.table);
    if (!s || !s->produces) {
      error(at, r, "table '" + rule.table + "' is not produced by '" + source + "' (" + library(source) + " produces: " +
                       joined(tablesWhere(src, true)) + ")" + dir + "; remove it from the route or choose another source");
      return;
    }
    const PluginTable* d = dst.table(arrived);
    if (!d || !d->accepts) {
      error(at, r, "table '" + arrived + "'" + (rule.renameTo.empty() ? "" : " (renamed from '" + rule.table + "')") +
                       " is not accepted by '" + target + "' (" + library(target) + " accepts: " +
                       joined(tablesWhere(dst, false)) + ")" + dir + "; remove it from the route, rename it, or route it elsewhere");
      return;
    }
    auto cols = tableColumns(rule.table, s->schemaSql);
    if (!cols) {
      error(at, r, "table '" + rule.table + "' of '" + source + "': " + cols.error());
      return;
    }
    if (!cols->hasPrimaryKey()) {
      error(at, r, "table '" + rule.table + "' of '" + source + "' has no primary key, so its changes cannot be captured" +
                       dir + "; give the table a primary key or leave it out of the route");
      return;
    }
    const std::string known = "; columns of '" + rule.table + "': " + joined(cols->names);
    for (const auto& c : rule.includeColumns)
      if (!cols->has(c)) error(at, r, "'include' names column '" + c + "', which table '" + rule.table + "' does not have" + known);
    for (std::size_t i = 0; i < cols->names.size(); ++i)
      if (cols->primaryKey[i] && std::ranges::find(rule.excludeColumns, cols->names[i]) != rule.excludeColumns.end())
        error(at, r, "'exclude' names column '" + cols->names[i] + "', which is part of the primary key of '" + rule.table +
                         "'; the primary key always travels (rows are matched by it): remove it from 'exclude'");
    for (const auto& c : rule.excludeColumns)
      if (!cols->has(c)) error(at, r, "'exclude' names column '" + c + "', which table '" + rule.table + "' does not have" + known);
    if (!r.timestampColumn.empty()) {
      if (!cols->has(r.timestampColumn))
        error(at, r, "timestamp_column '" + r.timestampColumn + "' is not a column of table '" + rule.table + "' of '" +
                         source + "'" + dir + known);
      else if (auto dcols = tableColumns(arrived, d->schemaSql); dcols && !dcols->has(r.timestampColumn))
        error(at, r, "timestamp_column '" + r.timestampColumn + "' is not a column of table '" + arrived + "' of '" +
                         target + "'" + dir + "; columns there: " + joined(dcols->names));
      else if (std::ranges::find(rule.excludeColumns, r.timestampColumn) != rule.excludeColumns.end() ||
               (!rule.includeColumns.empty() &&
                std::ranges::find(rule.includeColumns, r.timestampColumn) == rule.includeColumns.end() &&
                !cols->primaryKey[static_cast<std::size_t>(std::ranges::find(cols->names, r.timestampColumn) - cols->names.begin())]))
        error(at, r, "timestamp_column '" + r.timestampColumn + "' does not travel with table '" + rule.table +
                         "' (include/exclude leave it out); last_writer_wins needs it at the target");
    }
    if (!rule.rowFilter.empty())
      if (auto why = checkRowFilter(rule.table, s->schemaSql, rule.rowFilter); !why.empty())
        error(at, r, "filter of table '" + rule.table + "' does not compile as an SQL expression over its columns: " + why +
                         " (filter: " + rule.rowFilter + ")" + known);
  }

  const DaemonConfig& m_config;
  std::map<std::string, PluginDescription> m_described;
  std::vector<std::string>& m_errors;
};

// Two ways that carry one table of one origin to one subscriber (route_plan.h, duplicateWays):
// each change would arrive twice. One error per subscriber, origin and set of ways, at the
// location of the last way's route.
void duplicateWays(const DaemonConfig& config, const std::map<std::string, PluginDescription>& described,
                   std::vector<std::string>& errors) {
  auto plan = sync::planDeliveries(config.topology);
  if (!plan) {
    errors.push_back(plan.error());
    return;
  }
  sync::TablesOf tables;
  for (const auto& [instance, d] : described)
    for (const auto& t : d.tables) tables[instance][t.name] = sync::TableRoles{t.produces, t.accepts};
  // Route names are [a-z0-9_-] (loading), so ".reverse." only ends a reverse delivery's name.
  const auto route = [&](const sync::Delivery& d) -> const RouteConfig* {
    const std::string name = d.route.substr(0, d.route.find(".reverse."));
    for (const auto& r : config.topology.routes)
      if (r.name == name) return &r;
    return nullptr;
  };
  for (const auto& dup : sync::duplicateWays(*plan, tables)) {
    std::string ways;
    for (std::size_t i = 0; i < dup.deliveries.size(); ++i) {
      const sync::Delivery& d = (*plan)[dup.deliveries[i]];
      const RouteConfig* r = route(d);
      std::string path;
      for (const auto& at : dup.paths[i]) path += (path.empty() ? "" : " → ") + at;
      ways += std::string(ways.empty() ? "" : " and ") + "by route '" + (r ? r->name : d.route) + "'" +
              (r && d.source != r->from ? " back from '" + d.source + "'" : "") + " (" + path + ")";
    }
    const RouteConfig* last = route((*plan)[dup.deliveries.back()]);
    const bool many = dup.tables.size() > 1;
    errors.push_back((last ? last->where + ": route '" + last->name + "': " : std::string()) + "'" + dup.subscriber +
                     "' would receive each change '" + dup.origin + "' makes to table" + (many ? "s " : " ") +
                     joined(dup.tables) + " twice: " + ways +
                     ". The copies travel apart, so an older one could overwrite a newer row; keep one way: leave " +
                     (many ? "these tables" : "the table") + " out of one of the routes on these ways, or remove one");
  }
}

}  // namespace

bool TableColumns::hasPrimaryKey() const { return std::ranges::find(primaryKey, true) != primaryKey.end(); }
bool TableColumns::has(const std::string& column) const { return std::ranges::find(names, column) != names.end(); }

std::expected<TableColumns, std::string> tableColumns(const std::string& table, const std::string& createSql) {
  auto db = schemaDb(createSql);
  if (!db) return std::unexpected(db.error());
  sqlite3_stmt* raw = nullptr;
  const std::string sql = "PRAGMA table_info(" + quoted(table) + ")";
  if (sqlite3_prepare_v2(db->get(), sql.c_str(), -1, &raw, nullptr) != SQLITE_OK)
    return std::unexpected(std::string("PRAGMA table_info failed: ") + sqlite3_errmsg(db->get()));
  Stmt stmt(raw);
  TableColumns out;
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
    out.names.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 1)));
    out.primaryKey.push_back(sqlite3_column_int(stmt.get(), 5) != 0);
  }
  if (out.names.empty()) return std::unexpected("its schema_sql does not create a table named '" + table + "'");
  return out;
}

std::string checkRowFilter(const std::string& table, const std::string& createSql, const std::string& filter) {
  auto db = schemaDb(createSql);
  if (!db) return db.error();
  const std::string sql = "SELECT 1 FROM " + quoted(table) + " WHERE (" + filter + "\n)";
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  if (sqlite3_prepare_v2(db->get(), sql.c_str(), -1, &raw, &tail) != SQLITE_OK) {
    Stmt guard(raw);
    return sqlite3_errmsg(db->get());
  }
  Stmt stmt(raw);
  if (tail && std::string_view(tail).find_first_not_of(" \t\n;") != std::string_view::npos)
    return "it is more than one expression";
  return {};
}

PluginDescriber hostDescriber(std::filesystem::path hostProgram) {
  auto cache = std::make_shared<std::map<std::string, std::expected<PluginDescription, std::string>>>();
  return [hostProgram = std::move(hostProgram), cache](const PluginInstanceConfig& instance) {
    const std::string key = instance.library.string();
    auto it = cache->find(key);
    if (it == cache->end()) it = cache->emplace(key, describePlugin(hostProgram, instance.library)).first;
    return it->second;
  };
}

TopologyReport validateTopology(const DaemonConfig& config, const PluginDescriber& describe) {
  TopologyReport report;
  std::map<std::string, PluginDescription> described;
  for (const auto& instance : config.plugins.instances) {
    auto d = describe(instance);
    if (!d) {
      report.errors.push_back("plugin instance '" + instance.name + "' (" + instance.libraryAsWritten +
                              "): cannot be described: " + d.error() + "; run 'ipcsync plugins' on its directory to see why");
      continue;
    }
    described.emplace(instance.name, std::move(*d));
    ++report.plugins;
  }
  std::vector<std::string> twice;
  duplicateWays(config, described, twice);
  Checker checker(config, std::move(described), report.errors);
  for (const auto& r : config.topology.routes) checker.route(r);
  report.errors.insert(report.errors.end(), twice.begin(), twice.end());
  report.routes = config.topology.routes.size();
  return report;
}

}  // namespace ipcsync
