// plugins.json: the supervisor's view published for `ipcsync status`, `ipcsync plugins` and the
// console, at <runtime-dir>/<namespace>/plugins.json. Fields: docs/design/supervision.md.
//
// Written whole to a temporary file in the same directory and renamed over the old one, so a
// reader sees either the previous or the new document, never a torn one.
#pragma once

#include <expected>
#include <filesystem>
#include <string>
#include <vector>

#include "ipcsync/sync/supervisor.h"

namespace ipcsync {

// The document as text (pretty-printed JSON). `sync` is the sync engine process (ipcsync-sync),
// written as the "sync" member with the same fields as an instance; null when the topology has
// no routes and so no sync engine runs.
std::string pluginsStatusJson(const std::vector<InstanceStatus>& instances, const std::vector<std::string>& available,
                              const InstanceStatus* sync = nullptr);

// Writes the document atomically. On failure names the path and the reason; the old file stays.
std::expected<void, std::string> writePluginsStatus(const std::filesystem::path& path,
                                                    const std::vector<InstanceStatus>& instances,
                                                    const std::vector<std::string>& available,
                                                    const InstanceStatus* sync = nullptr);

}  // namespace ipcsync
