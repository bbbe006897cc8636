#include "ipcsync/sync/topology_json.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace ipcsync::sync {

namespace {

using nlohmann::json;

struct Bad {
  std::string message;
};

void onlyKeys(const json& j, const std::string& path, std::set<std::string> allowed) {
  if (!j.is_object()) throw Bad{path + " must be an object"};
  for (const auto& [k, v] : j.items())
    if (!allowed.contains(k)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw Bad{path + "." + k + " is not a known key (known: " + list + ")"};
    }
}

std::string str(const json& j, const std::string& path, const char* key, std::string fallback = {}) {
  if (!j.contains(key)) return fallback;
  if (!j[key].is_string()) throw Bad{path + "." + key + " must be a string"};
  return j[key].get<std::string>();
}

std::uint64_t num(const json& j, const std::string& path, const char* key, std::uint64_t fallback) {
  if (!j.contains(key)) return fallback;
  if (!j[key].is_number_unsigned()) throw Bad{path + "." + key + " must be a whole number >= 0"};
  return j[key].get<std::uint64_t>();
}

bool flag(const json& j, const std::string& path, const char* key) {
  if (!j.contains(key)) return false;
  if (!j[key].is_boolean()) throw Bad{path + "." + key + " must be true or false"};
  return j[key].get<bool>();
}

std::vector<std::string> strs(const json& j, const std::string& path, const char* key) {
  std::vector<std::string> out;
  if (!j.contains(key)) return out;
  if (!j[key].is_array()) throw Bad{path + "." + key + " must be a list of strings"};
  for (const auto& s : j[key]) {
    if (!s.is_string()) throw Bad{path + "." + key + " must be a list of strings"};
    out.push_back(s.get<std::string>());
  }
  return out;
}

ConflictPolicy policy(const std::string& text, const std::string& path) {
  if (text == "source_wins") return ConflictPolicy::SourceWins;
  if (text == "target_wins") return ConflictPolicy::TargetWins;
  if (text == "last_writer_wins") return ConflictPolicy::LastWriterWins;
  if (text == "park") return ConflictPolicy::Park;
  throw Bad{path + " is '" + text + "'; expected source_wins, target_wins, last_writer_wins or park"};
}

Topology parse(const json& doc) {
  Topology t;
  onlyKeys(doc, "(top)", {"routes", "journal"});
  if (!doc.contains("routes") || !doc["routes"].is_array()) throw Bad{"routes must be a list of routes"};
  for (std::size_t i = 0; i < doc["routes"].size(); ++i) {
    const json& r = doc["routes"][i];
    const std::string path = "routes[" + std::to_string(i) + "]";
    onlyKeys(r, path, {"name", "from", "to", "tables", "bidirectional", "conflict", "timestamp_column", "snapshot", "max_retries"});
    RouteConfig route;
    route.name = str(r, path, "name");
    route.from = str(r, path, "from");
    if (route.from.empty()) throw Bad{path + ".from is required: the plugin instance that produces"};
    if (r.contains("to") && r["to"].is_string()) route.to = {r["to"].get<std::string>()};
    else route.to = strs(r, path, "to");
    if (route.to.empty()) throw Bad{path + ".to is required: one instance or a list of them"};
    route.bidirectional = flag(r, path, "bidirectional");
    route.conflict = policy(str(r, path, "conflict", "source_wins"), path + ".conflict");
    route.timestampColumn = str(r, path, "timestamp_column");
    route.snapshot = flag(r, path, "snapshot");
    route.maxRetries = static_cast<std::uint32_t>(num(r, path, "max_retries", route.maxRetries));
    if (r.contains("tables")) {
      if (!r["tables"].is_array()) throw Bad{path + ".tables must be a list"};
      for (std::size_t k = 0; k < r["tables"].size(); ++k) {
        const json& tr = r["tables"][k];
        const std::string tp = path + ".tables[" + std::to_string(k) + "]";
        TableRule rule;
        if (tr.is_string()) {
          rule.table = tr.get<std::string>();
        } else {
          onlyKeys(tr, tp, {"table", "rename_to", "include_columns", "exclude_columns", "row_filter"});
          rule.table = str(tr, tp, "table");
          rule.renameTo = str(tr, tp, "rename_to");
          rule.includeColumns = strs(tr, tp, "include_columns");
          rule.excludeColumns = strs(tr, tp, "exclude_columns");
          rule.rowFilter = str(tr, tp, "row_filter");
        }
        if (rule.table.empty()) throw Bad{tp + ".table is required"};
        route.tables.push_back(std::move(rule));
      }
    }
    t.routes.push_back(std::move(route));
  }
  if (doc.contains("journal")) {
    const json& j = doc["journal"];
    onlyKeys(j, "journal", {"path", "durability", "group_commit_ms", "group_commit_max", "max_bytes", "warn_at_percent",
                            "retention_s", "piece_bytes"});
    JournalConfig& c = t.journal;
    c.path = str(j, "journal", "path");
    const auto d = str(j, "journal", "durability", "normal");
    if (d == "full") c.durability = Durability::Full;
    else if (d == "normal") c.durability = Durability::Normal;
    else if (d == "off") c.durability = Durability::Off;
    else throw Bad{"journal.durability is '" + d + "'; expected full, normal or off"};
    c.groupCommit = std::chrono::milliseconds(num(j, "journal", "group_commit_ms", static_cast<std::uint64_t>(c.groupCommit.count())));
    c.groupCommitMax = static_cast<std::uint32_t>(num(j, "journal", "group_commit_max", c.groupCommitMax));
    c.maxBytes = num(j, "journal", "max_bytes", c.maxBytes);
    c.warnAtPercent = static_cast<std::uint32_t>(num(j, "journal", "warn_at_percent", c.warnAtPercent));
    c.retention = std::chrono::seconds(num(j, "journal", "retention_s", static_cast<std::uint64_t>(c.retention.count())));
    c.pieceBytes = num(j, "journal", "piece_bytes", c.pieceBytes);
    if (c.groupCommitMax == 0) throw Bad{"journal.group_commit_max must be at least 1"};
    if (c.pieceBytes == 0) throw Bad{"journal.piece_bytes must be at least 1"};
  }
  return t;
}

}  // namespace

std::expected<Topology, std::string> parseTopologyJson(const std::string& text, const std::string& origin) {
  try {
    return parse(json::parse(text));
  } catch (const Bad& b) {
    return std::unexpected(origin + ": " + b.message);
  } catch (const std::exception& e) {
    return std::unexpected(origin + ": not valid JSON (" + std::string(e.what()) + ")");
  }
}

std::expected<Topology, std::string> loadTopologyJson(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return std::unexpected(file.string() + ": cannot be read; give the path of a topology JSON file");
  std::stringstream s;
  s << in.rdbuf();
  return parseTopologyJson(s.str(), file.string());
}

}  // namespace ipcsync::sync
