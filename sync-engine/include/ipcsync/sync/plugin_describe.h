// What a plugin says about itself: `ipcsync-plugin-host --plugin FILE --describe` run in a child
// process, so that a plugin that crashes or hangs while loading takes only that child down, and
// its JSON answer (name, version, tables with produces/accepts and schema_sql; see
// docs/design/plugin-host.md) parsed into PluginDescription. Used by `ipcsync plugins`,
// `ipcsync validate` and ipcsyncd's start-up check. No state; thread-compatible.
#pragma once

#include <chrono>
#include <expected>
#include <filesystem>
#include <string>
#include <vector>

namespace ipcsync {

// How the describing child ended and what it wrote.
struct DescribeRun {
  int code = -1;    // exit code, 128+signal when killed by one, -1 when it could not run or timed out
  std::string out;  // its stdout (the JSON on success)
  std::string err;  // its stderr, or why it could not run
};

// Runs `host --plugin file --describe`, killing it after `timeout`. Never throws.
DescribeRun runDescribe(const std::filesystem::path& host, const std::filesystem::path& file,
                        std::chrono::seconds timeout);

struct PluginTable {
  std::string name;
  bool produces = false;
  bool accepts = false;
  std::string schemaSql;  // the CREATE TABLE statement the plugin declares ("schema" in the JSON)
};

struct PluginDescription {
  std::string name;
  std::string version;
  std::vector<PluginTable> tables;
  const PluginTable* table(const std::string& name) const;  // nullptr when the plugin has no such table
};

// Parses the JSON a --describe prints. The error says which field was missing or malformed.
std::expected<PluginDescription, std::string> parsePluginDescription(const std::string& json);

// runDescribe() then parsePluginDescription(). The error names the file and the reason (the
// loader's refusal, a crash with its signal, a timeout, an unreadable answer).
std::expected<PluginDescription, std::string> describePlugin(const std::filesystem::path& host,
                                                             const std::filesystem::path& file,
                                                             std::chrono::seconds timeout = std::chrono::seconds(10));

// ipcsync-plugin-host beside the running executable, else beside the given daemon default
// (defaultHostProgram()), else on PATH; empty when none is found.
std::filesystem::path findPluginHost();

}  // namespace ipcsync
