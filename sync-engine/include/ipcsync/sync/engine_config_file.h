// Reading the daemon's YAML configuration: the engine's settings (EngineConfig) and the plugin
// instances it supervises (PluginsConfig).
//
// The file is the namespace's one configuration (see docs/CONFIG.md). Every error names the
// file, line and column, what was found and what was expected; an unknown key is refused with
// the nearest known key suggested. A plugin library that does not exist is refused while loading,
// naming the path tried.
#pragma once

#include <expected>
#include <filesystem>
#include <string>

#include "ipcsync/ipccore/engine_config.h"
#include "ipcsync/sync/plugin_config.h"

namespace ipcsync {

struct ConfigError {
  std::string message;  // "FILE:LINE:COL: what was wrong; what was expected"
};

struct DaemonConfig {
  EngineConfig engine;
  PluginsConfig plugins;
};

// Reads `path`. Keys absent from the file keep the defaults already in `base` (the daemon puts
// defaultPluginsDir() into base.plugins.pluginsDir). Relative paths in the file are taken
// relative to the file's directory.
std::expected<DaemonConfig, ConfigError> loadDaemonConfig(const std::filesystem::path& path, DaemonConfig base = {});

// The engine part of loadDaemonConfig(); the plugin keys are checked all the same.
std::expected<EngineConfig, ConfigError> loadEngineConfig(const std::filesystem::path& path, EngineConfig base = {});

// Parses a byte size: an integer optionally followed by B, KiB, MiB or GiB ("64", "1MiB", "4 KiB").
std::expected<std::uint64_t, std::string> parseByteSize(const std::string& text);

}  // namespace ipcsync
