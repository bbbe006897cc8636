// Helpers shared by the readers of the daemon's YAML file (engine_config_file.cpp,
// topology_config.cpp): positions as FILE:LINE:COL, key checks with the nearest known key
// suggested, typed scalars. Errors are thrown as ConfigFail and caught once, in loadDaemonConfig().
// Internal to ipcsync::config.
#pragma once

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>
#include <yaml-cpp/yaml.h>

#include "ipcsync/sync/engine_config_file.h"

namespace ipcsync::config_yaml {

struct Ctx {
  std::string file;
  std::filesystem::path dir;  // the file's directory: base of relative paths
  std::string at(const YAML::Node& n) const;  // "FILE:LINE:COL"
};

struct ConfigFail {
  ConfigError error;
};

std::size_t editDistance(const std::string& a, const std::string& b);

// The candidate nearest to `word`, or empty when none is near enough to be a likely typo.
std::string nearest(const std::string& word, const std::vector<std::string>& candidates);

// Refuses any key of `map` not in `known`, suggesting the nearest.
void checkKeys(const Ctx& c, const YAML::Node& map, std::initializer_list<const char*> known, const std::string& where);

std::string scalar(const Ctx& c, const YAML::Node& n, const std::string& key);
std::uint64_t integer(const Ctx& c, const YAML::Node& n, const std::string& key, std::uint64_t lo, std::uint64_t hi);
bool boolean(const Ctx& c, const YAML::Node& n, const std::string& key);

// A path from the file: relative ones are taken relative to the file's directory.
std::filesystem::path pathFrom(const Ctx& c, const YAML::Node& n, const std::string& key);

}  // namespace ipcsync::config_yaml

namespace ipcsync::config_yaml {

// Reads `routes:` and `journal:` of `root` into `topology`, checking the routes against the
// configured instances of `plugins` (topology_config.cpp).
void readTopology(const Ctx& c, const YAML::Node& root, const PluginsConfig& plugins, Topology& topology);

}  // namespace ipcsync::config_yaml
