// Reads a Topology from a small JSON file, until the daemon's YAML loader carries routes
// (docs/design/sync-engine.md, "Topology file" gives the format). Every key is optional except
// routes[].from and routes[].to; defaults are those of topology.h. Unknown keys are refused, so a
// typo does not silently fall back to a default.
#pragma once

#include <expected>
#include <filesystem>
#include <string>

#include "ipcsync/sync/topology.h"

namespace ipcsync::sync {

// The error names the file, the JSON path (e.g. routes[0].conflict) and what was expected.
std::expected<Topology, std::string> loadTopologyJson(const std::filesystem::path& file);
std::expected<Topology, std::string> parseTopologyJson(const std::string& text, const std::string& origin);

}  // namespace ipcsync::sync
