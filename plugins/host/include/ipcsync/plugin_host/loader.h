// Plugin loader: opens one plugin library, checks it against the ABI in <ipcsync/plugin.h>, and
// creates plugin instances from it.
//
// load() dlopens the file (RTLD_NOW | RTLD_LOCAL, so unresolved symbols are found at once and
// nothing the plugin defines leaks into the next plugin), calls its entry symbol and checks the
// descriptor: size, ABI version, name, required functions, and that every table's schema creates
// a table with a PRIMARY KEY (in a private in-memory SQLite database). Each refusal is its own
// LoadErrc with a message that names the file, what was wrong and what to do.
//
// A LoadedPlugin is move-only and keeps the library loaded; every PluginInstance created from it
// shares that handle, so the library is closed only after the last of them is gone.
// Thread safety: none of these objects may be used from two threads at once.
#pragma once

#include <ipcsync/plugin.h>

#include <cstdint>
#include <expected>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ipcsync/plugin_host/plugin_instance.h"

namespace ipcsync::plugin_host {

enum class LoadErrc : std::uint8_t {
  FileMissing,       // no file at the path
  NotALibrary,       // dlopen refused it: not a shared object, wrong architecture, unresolved symbols
  NoEntrySymbol,     // the library does not export ipcsync_plugin_entry
  NullDescriptor,    // the entry returned NULL
  StructTooSmall,    // the descriptor's struct_size does not cover the ABI 1.0 fields
  AbiMajorMismatch,  // built against another major version of plugin.h
  AbiMinorTooNew,    // built against a newer minor version than this host knows
  BadName,           // name missing or not [a-z0-9_-]{1,32}
  MissingFunctions,  // a required function pointer is NULL
  BadTable,          // a table without a name or schema, or a schema SQLite does not accept
  NoPrimaryKey,      // a table whose schema declares no PRIMARY KEY
  CreateFailed,      // create() failed (the plugin's own message follows), or the data dir could not be made
};

// A short, stable name for `code` ("no entry symbol"); never empty.
std::string_view describe(LoadErrc code) noexcept;

struct LoadError {
  LoadErrc code;
  std::string message;  // the whole sentence: file, what was wrong, what to do
  int status = 0;       // CreateFailed: the plugin's IPCSYNC_E* status (0 otherwise)
};

// A plugin status that says "try again later" (IPCSYNC_EBUSY: e.g. its database was locked): the
// host then exits 1 so that the supervisor restarts it, instead of 4 (restarting cannot help).
inline bool transient(int status) noexcept { return status == IPCSYNC_EBUSY; }

struct TableDescription {
  std::string name;
  std::string schemaSql;
  std::uint32_t flags = 0;  // IPCSYNC_TABLE_PRODUCES | IPCSYNC_TABLE_ACCEPTS
  bool produces() const noexcept { return (flags & IPCSYNC_TABLE_PRODUCES) != 0; }
  bool accepts() const noexcept { return (flags & IPCSYNC_TABLE_ACCEPTS) != 0; }
};

// The descriptor, copied out of the library after it passed every check.
struct PluginDescription {
  std::string name;
  std::string version;
  std::string description;
  std::uint16_t abiMajor = 0;
  std::uint16_t abiMinor = 0;
  std::vector<TableDescription> tables;
};

// What an instance is created with.
struct InstanceConfig {
  std::string instance;                         // the instance's name (tags its log lines)
  std::map<std::string, std::string> settings;  // flattened with dots, as setting() returns them
  std::filesystem::path dataDir;                // created if missing
};

class LoadedPlugin {
 public:
  LoadedPlugin(LoadedPlugin&&) noexcept = default;
  LoadedPlugin& operator=(LoadedPlugin&&) noexcept = default;
  LoadedPlugin(const LoadedPlugin&) = delete;
  LoadedPlugin& operator=(const LoadedPlugin&) = delete;
  ~LoadedPlugin() = default;

  const std::filesystem::path& path() const noexcept { return m_path; }
  const PluginDescription& description() const noexcept { return m_description; }
  const ipcsync_plugin_descriptor& descriptor() const noexcept { return *m_descriptor; }

  // Creates the data directory and calls the plugin's create(). `sink` receives what the plugin
  // emits and reports, and must outlive the instance. CreateFailed carries the plugin's message.
  std::expected<std::unique_ptr<PluginInstance>, LoadError> createInstance(InstanceConfig config,
                                                                           HostSink& sink) const;

 private:
  friend std::expected<LoadedPlugin, LoadError> load(const std::filesystem::path& path);
  LoadedPlugin() = default;
  std::filesystem::path m_path;
  std::shared_ptr<void> m_library;  // dlclose'd when the last holder goes
  const ipcsync_plugin_descriptor* m_descriptor = nullptr;
  PluginDescription m_description;
};

// Loads and checks the plugin at `path`. On failure the library is closed again.
std::expected<LoadedPlugin, LoadError> load(const std::filesystem::path& path);

}  // namespace ipcsync::plugin_host
