// routes: and journal: of the daemon's YAML file (docs/CONFIG.md, "Routes" and "Journal").
#include <algorithm>
#include <map>

#include "config_yaml.h"

namespace ipcsync::config_yaml {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "(none)" : out;
}

// A configured instance's name, or an error naming the nearest one.
std::string instanceName(const Ctx& c, const YAML::Node& n, const std::string& key, const std::string& route,
                         const std::vector<std::string>& known) {
  const std::string name = scalar(c, n, key);
  if (std::ranges::find(known, name) != known.end()) return name;
  std::string msg = c.at(n) + ": route '" + route + "': '" + key + "' names '" + name +
                    "', which is not a configured plugin instance";
  if (const auto best = nearest(name, known); !best.empty()) msg += "; did you mean '" + best + "'?";
  else msg += "; configured instances: " + joined(known);
  throw ConfigFail{{msg}};
}

std::vector<std::string> nameList(const Ctx& c, const YAML::Node& n, const std::string& key) {
  if (!n.IsSequence()) throw ConfigFail{{c.at(n) + ": '" + key + "' must be a list of column names such as [id, name]"}};
  std::vector<std::string> out;
  for (const auto& item : n) {
    auto name = scalar(c, item, key);
    if (name.empty()) throw ConfigFail{{c.at(item) + ": an empty column name in '" + key + "'; expected a column name"}};
    if (std::ranges::find(out, name) != out.end())
      throw ConfigFail{{c.at(item) + ": column '" + name + "' is listed twice in '" + key + "'"}};
    out.push_back(std::move(name));
  }
  return out;
}

TableRule tableRule(const Ctx& c, const YAML::Node& n, const std::string& route) {
  TableRule rule;
  rule.where = c.at(n);
  if (n.IsScalar()) {
    rule.table = n.Scalar();
  } else if (n.IsMap()) {
    checkKeys(c, n, {"name", "rename", "include", "exclude", "filter"}, "a table of route '" + route + "'");
    const YAML::Node name = n["name"];
    if (!name)
      throw ConfigFail{{c.at(n) + ": a table of route '" + route + "' has no 'name'; expected name: the source's table"}};
    rule.table = scalar(c, name, "name");
    if (auto v = n["rename"]) {
      rule.renameTo = scalar(c, v, "rename");
      if (rule.renameTo.empty()) throw ConfigFail{{c.at(v) + ": 'rename' is empty; expected the table's name at the target"}};
    }
    if (auto v = n["include"]) rule.includeColumns = nameList(c, v, "include");
    if (auto v = n["exclude"]) rule.excludeColumns = nameList(c, v, "exclude");
    if (n["include"] && n["exclude"])
      throw ConfigFail{{c.at(n["exclude"]) + ": table '" + rule.table + "' of route '" + route +
                        "' has both 'include' and 'exclude'; expected one of them (include lists what travels, "
                        "exclude what does not)"}};
    if (auto v = n["filter"]) {
      rule.rowFilter = scalar(c, v, "filter");
      if (rule.rowFilter.find_first_not_of(" \t\n") == std::string::npos)
        throw ConfigFail{{c.at(v) + ": 'filter' is empty; expected an SQL expression such as region = 'north', or no filter"}};
    }
  } else {
    throw ConfigFail{{c.at(n) + ": a table of route '" + route +
                      "' must be a name or a mapping such as {name: accounts, exclude: [industry]}"}};
  }
  if (rule.table.empty()) throw ConfigFail{{c.at(n) + ": an empty table name in route '" + route + "'"}};
  return rule;
}

ConflictPolicy conflictPolicy(const Ctx& c, const YAML::Node& n) {
  const std::string s = scalar(c, n, "conflict");
  if (s == "source_wins") return ConflictPolicy::SourceWins;
  if (s == "target_wins") return ConflictPolicy::TargetWins;
  if (s == "last_writer_wins") return ConflictPolicy::LastWriterWins;
  if (s == "park") return ConflictPolicy::Park;
  std::string msg = c.at(n) + ": 'conflict' is '" + s + "'; expected source_wins, target_wins, last_writer_wins or park";
  if (auto best = nearest(s, {"source_wins", "target_wins", "last_writer_wins", "park"}); !best.empty())
    msg += " (did you mean '" + best + "'?)";
  throw ConfigFail{{msg}};
}

RouteConfig route(const Ctx& c, const YAML::Node& n, const std::vector<std::string>& instances) {
  if (!n.IsMap())
    throw ConfigFail{{c.at(n) + ": a route must be a mapping such as {from: crm, to: mining, tables: [accounts]}"}};
  checkKeys(c, n,
            {"name", "from", "to", "tables", "bidirectional", "conflict", "timestamp_column", "snapshot", "max_retries"},
            "a route");
  RouteConfig r;
  r.where = c.at(n);
  if (auto v = n["name"]) {
    r.name = scalar(c, v, "name");
    if (!validInstanceName(r.name))
      throw ConfigFail{{c.at(v) + ": route name '" + r.name + "' is not allowed; expected 1-32 of [a-z0-9_-]"}};
  }
  const std::string label = r.name.empty() ? "at " + r.where : r.name;
  const YAML::Node from = n["from"];
  if (!from) throw ConfigFail{{c.at(n) + ": route '" + label + "' has no 'from'; expected the plugin instance that produces"}};
  r.from = instanceName(c, from, "from", label, instances);
  const YAML::Node to = n["to"];
  if (!to) throw ConfigFail{{c.at(n) + ": route '" + label + "' has no 'to'; expected an instance or a list of instances"}};
  if (to.IsSequence()) {
    for (const auto& item : to) {
      auto name = instanceName(c, item, "to", label, instances);
      if (std::ranges::find(r.to, name) != r.to.end())
        throw ConfigFail{{c.at(item) + ": route '" + label + "' names target '" + name + "' twice"}};
      r.to.push_back(std::move(name));
    }
    if (r.to.empty()) throw ConfigFail{{c.at(to) + ": route '" + label + "' has an empty 'to'; expected at least one instance"}};
  } else {
    r.to.push_back(instanceName(c, to, "to", label, instances));
  }
  for (std::size_t i = 0; i < r.to.size(); ++i)
    if (r.to[i] == r.from)
      throw ConfigFail{{c.at(to.IsSequence() ? to[i] : to) + ": route '" + label + "' goes from '" + r.from +
                        "' to itself; expected targets other than the source (a plugin's own changes never need to "
                        "reach it again)"}};
  if (r.name.empty()) r.name = r.from + "-to-" + r.to.front();
  if (auto v = n["tables"]; v && !v.IsNull()) {
    if (!v.IsSequence())
      throw ConfigFail{{c.at(v) + ": 'tables' of route '" + r.name + "' must be a list such as [accounts, orders]"}};
    std::map<std::string, std::string> seen;
    for (const auto& item : v) {
      auto rule = tableRule(c, item, r.name);
      if (auto [it, fresh] = seen.emplace(rule.table, rule.where); !fresh)
        throw ConfigFail{{rule.where + ": table '" + rule.table + "' appears twice in route '" + r.name +
                          "' (first at " + it->second + "); expected each table once"}};
      r.tables.push_back(std::move(rule));
    }
  }
  if (auto v = n["bidirectional"]) r.bidirectional = boolean(c, v, "bidirectional");
  if (auto v = n["conflict"]) r.conflict = conflictPolicy(c, v);
  if (auto v = n["timestamp_column"]) {
    r.timestampColumn = scalar(c, v, "timestamp_column");
    if (r.timestampColumn.empty()) throw ConfigFail{{c.at(v) + ": 'timestamp_column' is empty; expected a column name"}};
  }
  if (r.conflict == ConflictPolicy::LastWriterWins && r.timestampColumn.empty())
    throw ConfigFail{{c.at(n["conflict"]) + ": route '" + r.name +
                      "' resolves conflicts by last_writer_wins but has no 'timestamp_column'; expected "
                      "timestamp_column: the column that holds each row's last change time (e.g. updated_at)"}};
  if (auto v = n["snapshot"]) r.snapshot = boolean(c, v, "snapshot");
  if (auto v = n["max_retries"]) r.maxRetries = static_cast<std::uint32_t>(integer(c, v, "max_retries", 1, 1000));
  return r;
}

std::uint64_t byteSize(const Ctx& c, const YAML::Node& n, const std::string& key, std::uint64_t lo) {
  const std::string s = scalar(c, n, key);
  auto bytes = parseByteSize(s);
  if (!bytes) throw ConfigFail{{c.at(n) + ": '" + key + "' is '" + s + "'; " + bytes.error()}};
  if (*bytes < lo)
    throw ConfigFail{{c.at(n) + ": '" + key + "' is '" + s + "'; expected at least " + std::to_string(lo) + " B"}};
  return *bytes;
}

void journal(const Ctx& c, const YAML::Node& n, JournalConfig& j) {
  checkKeys(c, n,
            {"path", "durability", "group_commit_ms", "group_commit_max", "max_bytes", "warn_at_percent", "retention_s",
             "piece_bytes"},
            "'journal'");
  if (auto v = n["path"]) j.path = pathFrom(c, v, "path");
  if (auto v = n["durability"]) {
    const std::string s = scalar(c, v, "durability");
    if (s == "full") j.durability = Durability::Full;
    else if (s == "normal") j.durability = Durability::Normal;
    else if (s == "off") j.durability = Durability::Off;
    else throw ConfigFail{{c.at(v) + ": 'durability' is '" + s + "'; expected full, normal or off"}};
  }
  if (auto v = n["group_commit_ms"]) j.groupCommit = std::chrono::milliseconds(integer(c, v, "group_commit_ms", 0, 10'000));
  if (auto v = n["group_commit_max"]) j.groupCommitMax = static_cast<std::uint32_t>(integer(c, v, "group_commit_max", 1, 1'000'000));
  if (auto v = n["max_bytes"]) j.maxBytes = byteSize(c, v, "max_bytes", 1ull << 20);
  if (auto v = n["warn_at_percent"]) j.warnAtPercent = static_cast<std::uint32_t>(integer(c, v, "warn_at_percent", 1, 100));
  if (auto v = n["retention_s"]) j.retention = std::chrono::seconds(integer(c, v, "retention_s", 0, 365ull * 86'400));
  if (auto v = n["piece_bytes"]) j.pieceBytes = byteSize(c, v, "piece_bytes", 1024);
  if (j.pieceBytes > j.maxBytes)
    throw ConfigFail{{c.at(n["piece_bytes"]) + ": 'piece_bytes' (" + std::to_string(j.pieceBytes) +
                      " B) is larger than 'max_bytes' (" + std::to_string(j.maxBytes) + " B); expected piece_bytes <= max_bytes"}};
}

}  // namespace

void readTopology(const Ctx& c, const YAML::Node& root, const PluginsConfig& plugins, Topology& topology) {
  if (auto n = root["journal"]; n && !n.IsNull()) journal(c, n, topology.journal);
  auto list = root["routes"];
  if (!list || list.IsNull()) return;
  if (!list.IsSequence())
    throw ConfigFail{{c.at(list) + ": 'routes' must be a list of routes such as\n  - from: crm\n    to: mining\n    tables: [accounts]"}};
  std::vector<std::string> instances;
  for (const auto& i : plugins.instances) instances.push_back(i.name);
  std::map<std::string, std::string> seen;  // route name -> where first defined
  topology.routes.clear();
  for (const auto& item : list) {
    auto r = route(c, item, instances);
    if (auto [it, fresh] = seen.emplace(r.name, r.where); !fresh)
      throw ConfigFail{{(item["name"] ? c.at(item["name"]) : r.where) + ": duplicate route name '" + r.name +
                        "' (first defined at " + it->second + ")" +
                        (item["name"] ? "" : "; this route has no name of its own and got the default <from>-to-<first target>") +
                        "; expected every route name to be unique (give each a 'name')"}};
    topology.routes.push_back(std::move(r));
  }
}

}  // namespace ipcsync::config_yaml
