#include "ipcsync/sync/topology_check.h"

#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

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


// Two ways that carry the same table of one origin to one subscriber: a diamond, such as
// crm → crm2 → mining beside crm → mining. The router would deliver each change twice, under two
// cursors that lag differently, so an older copy could overwrite a newer row. Mirrors what the
// router carries (route_plan.h, forward_chain.h): a delivery carries its source's own tables by its
// rules (none: what the source produces and the subscriber accepts), and each upstream origin's
// along the one path its plan names, a hop without rules passing every table as it is.
void duplicateWays(const DaemonConfig& config, const std::map<std::string, PluginDescription>& described,
                   std::vector<std::string>& errors) {
  auto plan = sync::planDeliveries(config.topology);
  if (!plan) return;  // loading refuses what planning does; ipcsync-sync would say it again
  const auto find = [&](const std::string& instance) -> const PluginDescription* {
    auto it = described.find(instance);
    return it == described.end() ? nullptr : &it->second;
  };
  // Where `table` (as the step's source names it) arrives, or nothing when the step drops it.
  const auto step = [](const std::vector<TableRule>& rules, const std::string& table) -> std::optional<std::string> {
    for (const auto& r : rules)
      if (r.table == table) return r.renameTo.empty() ? r.table : r.renameTo;
    return std::nullopt;
  };
  struct Way {
    std::size_t delivery;
    std::string path;  // "crm → crm2 → mining"
  };
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<Way>> ways;  // (subscriber, origin, table)
  for (std::size_t i = 0; i < plan->size(); ++i) {
    const sync::Delivery& d = (*plan)[i];
    const PluginDescription* source = find(d.source);
    const PluginDescription* subscriber = find(d.subscriber);
    if (!source || !subscriber) continue;  // already reported: it could not be described
    std::map<std::string, const std::vector<sync::Hop>*> origins{{d.source, nullptr}};
    for (const auto& [origin, hops] : d.upstream) origins.emplace(origin, &hops);
    for (const auto& [origin, hops] : origins) {
      const PluginDescription* o = find(origin);
      if (!o) continue;
      std::string path = origin;
      if (hops)
        for (const auto& h : *hops) path += " → " + h.subscriber;
      path += " → " + d.subscriber;
      for (const auto& t : o->tables) {
        if (!t.produces) continue;
        std::optional<std::string> at = t.name;
        if (hops)
          for (const auto& h : *hops)
            if (at && !h.rules.empty()) at = step(h.rules, *at);
        if (!at) continue;
        if (!d.rules.empty()) {
          if (!step(d.rules, *at)) continue;
        } else if (const PluginTable *p = source->table(*at), *a = subscriber->table(*at); !p || !p->produces || !a || !a->accepts) {
          continue;
        }
        ways[{d.subscriber, origin, t.name}].push_back(Way{i, path});
      }
    }
  }
  // One error per subscriber, origin and set of ways, naming every table they share.
  std::map<std::tuple<std::string, std::string, std::vector<std::size_t>>, std::pair<std::vector<Way>, std::vector<std::string>>> twice;
  for (const auto& [key, found] : ways) {
    if (found.size() < 2) continue;
    std::vector<std::size_t> deliveries;
    for (const auto& w : found) deliveries.push_back(w.delivery);
    auto& [w, tables] = twice[{std::get<0>(key), std::get<1>(key), deliveries}];
    w = found;
    tables.push_back(std::get<2>(key));
  }
  const auto route = [&](const sync::Delivery& d) -> const RouteConfig* {
    const std::string name = d.route.substr(0, d.route.find(".reverse."));
    for (const auto& r : config.topology.routes)
      if (r.name == name) return &r;
    return nullptr;
  };
  for (const auto& [key, found] : twice) {
    const auto& [subscriber, origin, deliveries] = key;
    const auto& [list, tables] = found;
    std::string text;
    for (const auto& w : list) {
      const sync::Delivery& d = (*plan)[w.delivery];
      const RouteConfig* r = route(d);
      text += std::string(text.empty() ? "" : " and ") + "by route '" + (r ? r->name : d.route) + "'" +
              (r && d.source != r->from ? " back from '" + d.source + "'" : "") + " (" + w.path + ")";
    }
    const RouteConfig* last = route((*plan)[list.back().delivery]);
    errors.push_back((last ? last->where + ": route '" + last->name + "': " : std::string()) + "'" + subscriber +
                     "' would receive each change '" + origin + "' makes to " + joined(tables) + " twice: " + text +
                     ". The copies travel apart, so an older one could overwrite a newer row; keep one way: leave " +
                     (tables.size() > 1 ? "these tables" : "the table") + " out of one of these routes, or remove one");
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
