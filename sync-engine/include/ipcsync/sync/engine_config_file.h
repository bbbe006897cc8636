// Reading the daemon's YAML configuration into an EngineConfig.
//
// The file is the namespace's one configuration (see docs/CONFIG.md). Every error names the
// file, line and column, what was found and what was expected; an unknown key is refused with
// the nearest known key suggested.
#pragma once

#include <expected>
#include <filesystem>
#include <string>

#include "ipcsync/ipccore/engine_config.h"

namespace ipcsync {

struct ConfigError {
  std::string message;  // "FILE:LINE:COL: what was wrong; what was expected"
};

// Reads `path`. Keys absent from the file keep the defaults already in `base`.
std::expected<EngineConfig, ConfigError> loadEngineConfig(const std::filesystem::path& path, EngineConfig base = {});

// Parses a byte size: an integer optionally followed by B, KiB, MiB or GiB ("64", "1MiB", "4 KiB").
std::expected<std::uint64_t, std::string> parseByteSize(const std::string& text);

}  // namespace ipcsync
