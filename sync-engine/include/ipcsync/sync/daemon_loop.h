// The daemon's main loop: the engine serves on a thread of its own while the calling thread
// supervises the plugin hosts, watches the plugins directory, publishes plugins.json and waits
// for SIGTERM or SIGINT (through a signalfd). Shutdown order (docs/design/supervision.md):
// SIGTERM to every host, SIGKILL to those still running after the stop timeout, plugins.json
// removed, then the engine stopped and destroyed.
#pragma once

#include <memory>

#include "ipcsync/ipccore/engine.h"
#include "ipcsync/sync/engine_config_file.h"

namespace ipcsync {

// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread it starts later); call
// it first thing in main(), so no signal arrives before runDaemon() reads them.
void blockStopSignals();

// Runs until SIGTERM/SIGINT or until the engine's loop fails. Writes "ready\n" to `readyFd`
// (if >= 0) and closes it once the engine serves and the hosts have been started. Returns 0 after
// a clean stop, 1 when the engine or the loop failed.
int runDaemon(std::unique_ptr<Engine> engine, const DaemonConfig& config, const LogSink& log, int readyFd);

}  // namespace ipcsync
