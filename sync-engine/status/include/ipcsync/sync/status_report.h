// The state of a namespace as `ipcsync status --json` prints it: the engine, every registered
// process (its block, traffic and arena use), the topic caches, and — when the daemon and the sync
// engine run — the plugin instances (plugins.json) and the routes (sync.json), all read-only.
//
// The document is stable: fields are only ever added (docs/STATUS-JSON.md lists every field and
// its unit). Times are CLOCK_REALTIME nanoseconds or ages in milliseconds, sizes in bytes.
#pragma once

#include <expected>
#include <filesystem>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>

namespace ipcsync {

inline constexpr int kStatusJsonVersion = 1;

// A state file the daemon or the sync engine writes (plugins.json, sync.json), parsed; nothing when
// it is absent or unreadable (they are replaced whole, so a reader never sees half of one).
std::optional<nlohmann::json> readStateFile(const std::filesystem::path& path);

// Reads the namespace's admin segment (and the state files beside its socket). The error is the
// message `ipcsync status` prints when no engine serves the namespace.
std::expected<nlohmann::json, std::string> statusReport(const std::string& ns);

}  // namespace ipcsync
