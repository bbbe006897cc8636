#include "ipcsync/sync/engine_config_file.h"

#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <optional>
#include <vector>
#include <yaml-cpp/yaml.h>

namespace ipcsync {
namespace {

struct Ctx {
  std::string file;
  std::string at(const YAML::Node& n) const {
    const YAML::Mark m = n.Mark();
    return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  }
};

struct Fail {
  ConfigError error;
};

std::size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Refuses any key of `map` not in `known`, suggesting the nearest.
void checkKeys(const Ctx& c, const YAML::Node& map, std::initializer_list<const char*> known, const std::string& where) {
  if (!map.IsMap()) throw Fail{{c.at(map) + ": '" + where + "' must be a mapping of keys to values"}};
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    if (std::ranges::any_of(known, [&](const char* k) { return key == k; })) continue;
    std::string best;
    std::size_t bestD = 1000;
    for (const char* k : known)
      if (auto d = editDistance(key, k); d < bestD) bestD = d, best = k;
    std::string msg = c.at(kv.first) + ": unknown key '" + key + "' in " + where;
    if (bestD <= std::max<std::size_t>(2, key.size() / 3)) msg += "; did you mean '" + best + "'?";
    else {
      msg += "; known keys:";
      for (const char* k : known) msg += std::string(" ") + k;
    }
    throw Fail{{msg}};
  }
}

std::string scalar(const Ctx& c, const YAML::Node& n, const std::string& key) {
  if (!n.IsScalar()) throw Fail{{c.at(n) + ": '" + key + "' must be a single value"}};
  return n.Scalar();
}

std::uint64_t integer(const Ctx& c, const YAML::Node& n, const std::string& key, std::uint64_t lo, std::uint64_t hi) {
  const std::string s = scalar(c, n, key);
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi)
    throw Fail{{c.at(n) + ": '" + key + "' is '" + s + "'; expected a whole number from " + std::to_string(lo) +
                " to " + std::to_string(hi)}};
  return v;
}

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

std::expected<EngineConfig, ConfigError> loadEngineConfig(const std::filesystem::path& path, EngineConfig cfg) {
  const Ctx c{path.string()};
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
    if (root.IsNull()) return cfg;  // an empty file keeps every default
    checkKeys(c, root, {"namespace", "runtime_dir", "engine", "access"}, "the top level");
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
    return cfg;
  } catch (const Fail& f) {
    return std::unexpected(f.error);
  } catch (const YAML::Exception& e) {
    return std::unexpected(ConfigError{c.file + ":" + std::to_string(e.mark.line + 1) + ":" +
                                       std::to_string(e.mark.column + 1) + ": " + e.msg});
  }
}

}  // namespace ipcsync
