// The daemon's main loop: the engine serves on a thread of its own while the calling thread
// supervises the plugin hosts and, when the topology has routes, the sync engine process
// (ipcsync-sync), watches the plugins directory and the configuration file, publishes
// plugins.json and waits for SIGTERM or SIGINT (through a signalfd). Shutdown order
// (docs/design/supervision.md): the sync engine first (SIGTERM; it drains), then SIGTERM to every
// host, SIGKILL to any still running after the stop timeout, plugins.json removed, then the
// engine stopped and destroyed. SIGHUP, or the configuration file written anew, reloads: added
// instances start, removed ones stop, changed ones start afresh, the others keep running; a
// changed topology restarts only the sync engine; a file that fails to load or validate is
// refused with its errors logged and the running configuration stays.
#pragma once

#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "ipcsync/ipccore/engine.h"
#include "ipcsync/sync/engine_config_file.h"

namespace ipcsync {

// Reads the configuration file again and checks it as at start (loadDaemonConfig, then
// validateTopology when it has routes). The error holds every message, one per line.
using ConfigReloader = std::function<std::expected<DaemonConfig, std::string>()>;

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and so in every thread it starts later); call
// it first thing in main(), so no signal arrives before runDaemon() reads them.
void blockStopSignals();

// Runs until SIGTERM/SIGINT or until the engine's loop fails. Writes "ready\n" to `readyFd`
// (if >= 0) and closes it once the engine serves and the hosts have been started. Returns 0 after
// a clean stop, 1 when the engine or the loop failed.
// `reload` empty: SIGHUP is logged and ignored (no configuration file).
int runDaemon(std::unique_ptr<Engine> engine, const DaemonConfig& config, const LogSink& log, int readyFd,
              ConfigReloader reload = {});

// The sync engine's command line (argv[1..]): --config FILE --namespace NS [--runtime-dir DIR].
std::vector<std::string> syncProgramArgs(const DaemonConfig& config, const std::filesystem::path& runtimeDir);

// A text that differs whenever anything the sync engine reads from the topology differs.
std::string topologyFingerprint(const Topology& topology);

}  // namespace ipcsync
