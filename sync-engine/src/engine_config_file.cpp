#include "ipcsync/sync/engine_config_file.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <map>
#include <optional>
#include <vector>
#include <yaml-cpp/yaml.h>

#include "config_yaml.h"

namespace ipcsync {
namespace {

using namespace config_yaml;
using Fail = ConfigFail;

std::uint32_t powerOfTwoShift(const Ctx& c, const YAML::Node& n, const std::string& key) {
  const std::string s = scalar(c, n, key);
  auto bytes = parseByteSize(s);
  if (!bytes) throw Fail{{c.at(n) + ": '" + key + "' is '" + s + "'; " + bytes.error()}};
  if (!std::has_single_bit(*bytes))
    throw Fail{{c.at(n) + ": '" + key + "' is " + std::to_string(*bytes) + " B; expected a power of two such as 64, 4KiB or 1MiB"}};
  return static_cast<std::uint32_t>(std::countr_zero(*bytes));
}

template <typename Id, typename Lookup>
std::vector<Id> ids(const Ctx& c, const YAML::Node& list, const std::string& key, Lookup lookup) {
  if (!list.IsSequence()) throw Fail{{c.at(list) + ": '" + key + "' must be a list such as [alice, 1001]"}};
  std::vector<Id> out;
  for (const auto& item : list) {
    const std::string s = scalar(c, item, key);
    Id id{};
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
    if (ec == std::errc() && p == s.data() + s.size()) {
      out.push_back(id);
    } else if (auto found = lookup(s)) {
      out.push_back(*found);
    } else {
      throw Fail{{c.at(item) + ": no such " + (key == "users" ? std::string("user") : std::string("group")) + " '" + s + "'"}};
    }
  }
  return out;
}


// Flattens a settings map into key=value pairs, nested maps joined with dots.
void flatten(const Ctx& c, const YAML::Node& map, const std::string& prefix, const std::string& instance,
             std::vector<std::pair<std::string, std::string>>& out) {
  if (!map.IsMap())
    throw Fail{{c.at(map) + ": 'settings' of plugin instance '" + instance +
                "' must be a mapping such as {database: {path: crm.db}}"}};
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    if (key.empty() || key.find_first_of("=.") != std::string::npos)
      throw Fail{{c.at(kv.first) + ": setting name '" + key + "' of plugin instance '" + instance +
                  "' is not allowed; expected a non-empty name without '=' or '.' (nest maps for dotted names)"}};
    const std::string full = prefix.empty() ? key : prefix + "." + key;
    const YAML::Node& v = kv.second;
    if (v.IsMap()) flatten(c, v, full, instance, out);
    else if (v.IsNull()) out.emplace_back(full, "");
    else if (v.IsScalar()) out.emplace_back(full, v.Scalar());
    else
      throw Fail{{c.at(v) + ": setting '" + full + "' of plugin instance '" + instance +
                  "' is a list; expected a single value or a mapping"}};
  }
}

PluginInstanceConfig instance(const Ctx& c, const YAML::Node& n, const std::filesystem::path& pluginsDir) {
  if (!n.IsMap())
    throw Fail{{c.at(n) + ": a plugin instance must be a mapping such as {name: crm, library: crm.so}"}};
  checkKeys(c, n, {"name", "library", "settings", "data_dir"}, "a plugin instance");
  PluginInstanceConfig out;
  const YAML::Node name = n["name"];
  if (!name) throw Fail{{c.at(n) + ": plugin instance has no 'name'; expected name: of [a-z0-9_-], 1-32 characters"}};
  out.name = scalar(c, name, "name");
  if (!validInstanceName(out.name))
    throw Fail{{c.at(name) + ": plugin instance name '" + out.name + "' is not allowed; expected 1-32 of [a-z0-9_-]"}};
  const YAML::Node lib = n["library"];
  if (!lib)
    throw Fail{{c.at(n) + ": plugin instance '" + out.name + "' has no 'library'; expected a file name in plugins_dir or a path"}};
  out.libraryAsWritten = scalar(c, lib, "library");
  if (out.libraryAsWritten.empty())
    throw Fail{{c.at(lib) + ": 'library' of plugin instance '" + out.name + "' is empty; expected a file name or a path"}};
  if (out.libraryAsWritten.find('/') == std::string::npos) out.library = pluginsDir / out.libraryAsWritten;
  else out.library = pathFrom(c, lib, "library");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(out.library, ec))
    throw Fail{{c.at(lib) + ": library '" + out.libraryAsWritten + "' of plugin instance '" + out.name +
                "' not found: tried " + out.library.string() +
                (out.libraryAsWritten.find('/') == std::string::npos
                     ? "; put the file into plugins_dir or give a path containing '/'"
                     : "; check the path (relative paths start at the configuration file's directory)")}};
  if (auto s = n["settings"]; s && !s.IsNull()) flatten(c, s, "", out.name, out.settings);
  if (auto d = n["data_dir"]) out.dataDir = pathFrom(c, d, "data_dir");
  return out;
}

void supervision(const Ctx& c, const YAML::Node& n, SupervisionConfig& s) {
  checkKeys(c, n, {"restart_initial_ms", "restart_max_ms", "max_crashes", "crash_window_s", "stop_timeout_ms"},
            "'supervision'");
  if (auto v = n["restart_initial_ms"]) s.restartInitial = std::chrono::milliseconds(integer(c, v, "restart_initial_ms", 1, 3'600'000));
  if (auto v = n["restart_max_ms"]) s.restartMax = std::chrono::milliseconds(integer(c, v, "restart_max_ms", 1, 86'400'000));
  if (auto v = n["max_crashes"]) s.maxCrashes = static_cast<std::uint32_t>(integer(c, v, "max_crashes", 1, 1000));
  if (auto v = n["crash_window_s"]) s.crashWindow = std::chrono::seconds(integer(c, v, "crash_window_s", 1, 86'400));
  if (auto v = n["stop_timeout_ms"]) s.stopTimeout = std::chrono::milliseconds(integer(c, v, "stop_timeout_ms", 1, 600'000));
  if (s.restartMax < s.restartInitial) {
    const YAML::Node at = n["restart_max_ms"] ? n["restart_max_ms"] : n["restart_initial_ms"];
    throw Fail{{c.at(at) + ": 'restart_max_ms' (" + std::to_string(s.restartMax.count()) +
                ") is smaller than 'restart_initial_ms' (" + std::to_string(s.restartInitial.count()) +
                "); expected restart_max_ms >= restart_initial_ms"}};
  }
}

void plugins(const Ctx& c, const YAML::Node& root, PluginsConfig& p) {
  if (auto n = root["plugins_dir"]) {
    p.pluginsDir = pathFrom(c, n, "plugins_dir");
    std::error_code ec;
    if (!std::filesystem::is_directory(p.pluginsDir, ec))
      throw Fail{{c.at(n) + ": plugins_dir " + p.pluginsDir.string() + " is not a directory; create it or fix the path"}};
  }
  if (auto n = root["state_dir"]) p.stateDir = pathFrom(c, n, "state_dir");
  if (auto n = root["plugin_host"]) {
    p.hostProgram = pathFrom(c, n, "plugin_host");
    if (::access(p.hostProgram.c_str(), X_OK) != 0)
      throw Fail{{c.at(n) + ": plugin_host " + p.hostProgram.string() + " is not an executable file; fix the path"}};
  }
  if (auto n = root["sync_program"]) {
    p.syncProgram = pathFrom(c, n, "sync_program");
    if (::access(p.syncProgram.c_str(), X_OK) != 0)
      throw Fail{{c.at(n) + ": sync_program " + p.syncProgram.string() + " is not an executable file; fix the path"}};
  }
  if (auto n = root["supervision"]) supervision(c, n, p.supervision);
  if (auto list = root["plugins"]; list && !list.IsNull()) {
    if (!list.IsSequence())
      throw Fail{{c.at(list) + ": 'plugins' must be a list of instances such as\n  - name: crm\n    library: crm.so"}};
    std::map<std::string, std::string> seen;  // name -> where first defined
    p.instances.clear();
    for (const auto& item : list) {
      auto inst = instance(c, item, p.pluginsDir);
      if (auto [it, fresh] = seen.emplace(inst.name, c.at(item)); !fresh)
        throw Fail{{c.at(item["name"]) + ": duplicate plugin instance name '" + inst.name + "' (first defined at " +
                    it->second + "); expected every name to be unique"}};
      p.instances.push_back(std::move(inst));
    }
  }
}
}  // namespace

std::expected<std::uint64_t, std::string> parseByteSize(const std::string& text) {
  std::uint64_t v = 0;
  const char* b = text.data();
  const char* e = b + text.size();
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || p == b) return std::unexpected("expected a size such as 64, 4KiB or 1MiB");
  std::string unit(p, e);
  std::erase_if(unit, [](unsigned char ch) { return std::isspace(ch); });
  std::uint64_t mul = 0;
  if (unit.empty() || unit == "B") mul = 1;
  else if (unit == "KiB" || unit == "K") mul = 1ULL << 10;
  else if (unit == "MiB" || unit == "M") mul = 1ULL << 20;
  else if (unit == "GiB" || unit == "G") mul = 1ULL << 30;
  else return std::unexpected("unknown unit '" + unit + "'; expected B, KiB, MiB or GiB");
  if (v > (UINT64_MAX / mul)) return std::unexpected("size too large");
  return v * mul;
}

std::filesystem::path effectiveJournalPath(const DaemonConfig& config) {
  if (!config.topology.journal.path.empty()) return config.topology.journal.path;
  return (config.plugins.stateDir.empty() ? defaultStateDir(config.engine.ns) : config.plugins.stateDir) / "journal.db";
}

std::expected<EngineConfig, ConfigError> loadEngineConfig(const std::filesystem::path& path, EngineConfig base) {
  DaemonConfig d;
  d.engine = std::move(base);
  auto loaded = loadDaemonConfig(path, std::move(d));
  if (!loaded) return std::unexpected(loaded.error());
  return std::move(loaded->engine);
}

std::expected<DaemonConfig, ConfigError> loadDaemonConfig(const std::filesystem::path& path, DaemonConfig daemon) {
  const Ctx c{path.string(), std::filesystem::absolute(path).parent_path()};
  daemon.sourceFile = std::filesystem::absolute(path).lexically_normal();
  EngineConfig& cfg = daemon.engine;
  try {
    YAML::Node root;
    try {
      root = YAML::LoadFile(path.string());
    } catch (const YAML::BadFile&) {
      return std::unexpected(ConfigError{path.string() + ": cannot read the file (does it exist, is it readable?)"});
    } catch (const YAML::ParserException& e) {
      return std::unexpected(ConfigError{c.file + ":" + std::to_string(e.mark.line + 1) + ":" +
                                         std::to_string(e.mark.column + 1) + ": not valid YAML: " + e.msg});
    }
    if (root.IsNull()) return daemon;  // an empty file keeps every default
    if (!root.IsMap()) throw Fail{{c.at(root) + ": the file must be a mapping of keys to values, such as namespace: demo"}};
    checkKeys(c, root,
              {"namespace", "runtime_dir", "engine", "access", "plugins_dir", "state_dir", "plugin_host", "plugins",
               "supervision", "sync_program", "routes", "journal"},
              "the top level");
    if (auto n = root["namespace"]) cfg.ns = scalar(c, n, "namespace");
    if (auto n = root["runtime_dir"]) cfg.runtimeDir = scalar(c, n, "runtime_dir");
    if (auto engine = root["engine"]) {
      checkKeys(c, engine, {"capacity", "publish_interval_ms", "hello_timeout_ms", "spin_us", "handover_threshold", "block"},
                "'engine'");
      if (auto n = engine["handover_threshold"]) {
        auto bytes = parseByteSize(scalar(c, n, "handover_threshold"));
        if (!bytes || *bytes == 0)
          throw Fail{{c.at(n) + ": 'handover_threshold' is '" + n.Scalar() + "'; expected a size such as 256KiB"}};
        cfg.handoverThreshold = *bytes;
      }
      if (auto n = engine["spin_us"]) cfg.spin = std::chrono::microseconds(integer(c, n, "spin_us", 0, 10'000'000));
      if (auto n = engine["capacity"]) cfg.capacity = static_cast<std::uint32_t>(integer(c, n, "capacity", 1, 4096));
      if (auto n = engine["publish_interval_ms"])
        cfg.publishInterval = std::chrono::milliseconds(integer(c, n, "publish_interval_ms", 1, 60000));
      if (auto n = engine["hello_timeout_ms"])
        cfg.helloTimeout = std::chrono::milliseconds(integer(c, n, "hello_timeout_ms", 1, 600000));
      if (auto block = engine["block"]) {
        checkKeys(c, block, {"min_block", "arena_size", "min_arenas", "max_arenas"}, "'engine.block'");
        if (auto n = block["min_block"]) cfg.geometry.minBlockShift = powerOfTwoShift(c, n, "min_block");
        if (auto n = block["arena_size"]) cfg.geometry.arenaShift = powerOfTwoShift(c, n, "arena_size");
        if (auto n = block["min_arenas"]) cfg.geometry.minArenas = static_cast<std::uint32_t>(integer(c, n, "min_arenas", 1, kMaxArenas));
        if (auto n = block["max_arenas"]) cfg.geometry.maxArenas = static_cast<std::uint32_t>(integer(c, n, "max_arenas", 1, kMaxArenas));
        if (auto ok = validate(cfg.geometry); !ok) throw Fail{{c.at(block) + ": " + ok.error().detail}};
      }
    }
    if (auto access = root["access"]) {
      checkKeys(c, access, {"users", "groups"}, "'access'");
      if (auto n = access["users"])
        cfg.access.uids = ids<uid_t>(c, n, "users", [](const std::string& s) -> std::optional<uid_t> {
          if (const passwd* pw = ::getpwnam(s.c_str())) return pw->pw_uid;
          return std::nullopt;
        });
      if (auto n = access["groups"])
        cfg.access.gids = ids<gid_t>(c, n, "groups", [](const std::string& s) -> std::optional<gid_t> {
          if (const group* gr = ::getgrnam(s.c_str())) return gr->gr_gid;
          return std::nullopt;
        });
    }
    plugins(c, root, daemon.plugins);
    readTopology(c, root, daemon.plugins, daemon.topology);
    return daemon;
  } catch (const Fail& f) {
    return std::unexpected(f.error);
  } catch (const YAML::Exception& e) {
    return std::unexpected(ConfigError{c.file + ":" + std::to_string(e.mark.line + 1) + ":" +
                                       std::to_string(e.mark.column + 1) + ": " + e.msg});
  }
}

}  // namespace ipcsync
