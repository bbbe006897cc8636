// The plugin part of the daemon's configuration: which plugin instances ipcsyncd runs, where
// their libraries live, and how it restarts a host that crashed (docs/CONFIG.md, "Plugins").
//
// Plain data with documented defaults; loadDaemonConfig() (engine_config_file.h) fills it from
// the YAML file and has already checked every value it holds: names are unique and valid, every
// library file exists, the supervision bounds are consistent.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace ipcsync {

// One configured plugin instance: one host process loading one library.
struct PluginInstanceConfig {
  std::string name;                 // [a-z0-9_-], 1-32 characters, unique; registers as plugin.<name>
  std::filesystem::path library;    // resolved: absolute, or as given relative to the plugins directory
  std::string libraryAsWritten;     // what the YAML file said (for messages and plugins.json)
  // Settings flattened with dots ("database.path"), in file order; passed as --setting key=value.
  std::vector<std::pair<std::string, std::string>> settings;
  std::filesystem::path dataDir;    // empty: <state dir>/<name>, see effectiveDataDir()
};

// How the supervisor restarts crashed hosts.
struct SupervisionConfig {
  std::chrono::milliseconds restartInitial{200};  // first back-off delay
  std::chrono::milliseconds restartMax{30000};    // the doubling delay is capped here
  std::uint32_t maxCrashes = 5;                   // this many crashes within crashWindow: FAILED
  std::chrono::seconds crashWindow{60};
  std::chrono::milliseconds stopTimeout{5000};    // SIGTERM to SIGKILL on shutdown
};

struct PluginsConfig {
  std::filesystem::path pluginsDir;   // watched for *.so; relative library names resolve here
  std::filesystem::path stateDir;     // empty: defaultStateDir(namespace)
  std::filesystem::path hostProgram;  // empty: defaultHostProgram()
  std::vector<PluginInstanceConfig> instances;
  SupervisionConfig supervision;
  std::filesystem::path syncProgram;  // empty: defaultSyncProgram(); started when the topology has routes
};

// $XDG_STATE_HOME/ipcsync/<ns>, else $HOME/.local/state/ipcsync/<ns>, else /tmp/ipcsync-state-<uid>/<ns>.
std::filesystem::path defaultStateDir(const std::string& ns);

// The instance's data directory: its own data_dir, else <stateDir or defaultStateDir(ns)>/<name>.
std::filesystem::path effectiveDataDir(const PluginsConfig& plugins, const PluginInstanceConfig& instance,
                                       const std::string& ns);

// The plugins directory and host program that belong to the running executable: for a binary in
// <build>/sync-engine/ these are <build>/plugins and <build>/plugins/host/ipcsync-plugin-host; for
// an installed <prefix>/bin/ipcsyncd, <prefix>/lib/ipcsync/plugins and <prefix>/bin/ipcsync-plugin-host.
std::filesystem::path defaultPluginsDir();
std::filesystem::path defaultHostProgram();
// ipcsync-sync beside the running executable, else <build>/sync-engine/router/ipcsync-sync for a build tree.
std::filesystem::path defaultSyncProgram();

// True for a name of [a-z0-9_-], 1-32 characters.
bool validInstanceName(const std::string& name);

}  // namespace ipcsync
