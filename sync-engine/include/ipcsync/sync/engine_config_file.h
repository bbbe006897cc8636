// Reading the daemon's YAML configuration: the engine's settings (EngineConfig), the plugin
// instances it supervises (PluginsConfig) and the sync topology (Topology: routes and journal).
//
// The file is the namespace's one configuration (see docs/CONFIG.md). Every error names the
// file, line and column, what was found and what was expected; an unknown key is refused with
// the nearest known key suggested. A plugin library that does not exist is refused while loading,
// naming the path tried. What can be checked without the plugins is checked here (routes name
// configured instances, no route to itself, unique route names, last_writer_wins has its
// timestamp_column); what needs the plugins' descriptions is validateTopology()'s
// (topology_check.h).
#pragma once

#include <expected>
#include <filesystem>
#include <string>

#include "ipcsync/ipccore/engine_config.h"
#include "ipcsync/sync/plugin_config.h"
#include "ipcsync/sync/topology.h"

namespace ipcsync {

struct ConfigError {
  std::string message;  // "FILE:LINE:COL: what was wrong; what was expected"
};

struct DaemonConfig {
  EngineConfig engine;
  PluginsConfig plugins;
  Topology topology;                 // routes: and journal: (docs/CONFIG.md, "Routes", "Journal")
  std::filesystem::path sourceFile;  // the file loadDaemonConfig() read, absolute; empty: none
};

// Reads `path`. Keys absent from the file keep the defaults already in `base` (the daemon puts
// defaultPluginsDir() into base.plugins.pluginsDir). Relative paths in the file are taken
// relative to the file's directory.
std::expected<DaemonConfig, ConfigError> loadDaemonConfig(const std::filesystem::path& path, DaemonConfig base = {});

// The journal's file: journal.path, else <state_dir or defaultStateDir(namespace)>/journal.db.
std::filesystem::path effectiveJournalPath(const DaemonConfig& config);

// The engine part of loadDaemonConfig(); the plugin keys are checked all the same.
std::expected<EngineConfig, ConfigError> loadEngineConfig(const std::filesystem::path& path, EngineConfig base = {});

// Parses a byte size: an integer optionally followed by B, KiB, MiB or GiB ("64", "1MiB", "4 KiB").
std::expected<std::uint64_t, std::string> parseByteSize(const std::string& text);

}  // namespace ipcsync
