// Router: the sync engine process's work (ipcsync-sync). It registers with the engine as "sync",
// opens a session to every plugin host the topology names (`plugin.<instance>`), journals what
// the hosts emit (group commit, then Acknowledge), and delivers journal entries along each
// (route, subscriber) with the route's transforms, retries, dead letters, snapshots and parked
// conflicts; it publishes its figures to <runtime-dir>/<ns>/sync.json every 200 ms.
// docs/design/sync-engine.md describes the protocol, the numbering and the status file.
//
// Thread safety: one thread; run() owns the process's event loop. Pinned.
#pragma once

#include <chrono>
#include <csignal>
#include <expected>
#include <filesystem>
#include <memory>
#include <string>

#include "ipcsync/sync/topology.h"

namespace ipcsync::sync {

// Exit codes of ipcsync-sync (and of Router::run / create).
enum class ExitCode : int {
  Stopped = 0,        // SIGTERM/SIGINT: stopped reading, finished in-flight work
  EngineLost = 1,     // the engine is not running or went away
  Usage = 2,          // bad command line or topology
  JournalFailed = 3,  // the journal could not be opened or written
};

struct RouterOptions {
  std::string ns = "default";
  std::filesystem::path runtimeDir;  // empty: as ipcsyncd ($XDG_RUNTIME_DIR/ipcsync or /tmp/ipcsync-<uid>)
  Topology topology;                 // journal.path empty: $XDG_STATE_HOME/ipcsync/<ns>/journal.db
  std::chrono::milliseconds applyTimeout{30000};  // unanswered this long, an Apply is reported stalled; never a failure
  std::uint32_t batch = 32;                       // entries read per delivery per turn
};

struct StartupError {
  ExitCode code;
  std::string message;
};

class Router {
 public:
  // Opens the journal and registers with the engine. Errors: Usage (topology), JournalFailed,
  // EngineLost (not running, name 'sync' taken), each with a message saying what to do.
  static std::expected<std::unique_ptr<Router>, StartupError> create(RouterOptions options);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Runs until `stop` becomes non-zero (then finishes what is in flight, bounded, and returns
  // Stopped) or the engine goes away (EngineLost) or the journal fails for good (JournalFailed).
  ExitCode run(const volatile std::sig_atomic_t& stop);

  struct Impl;

 private:
  explicit Router(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

// The runtime directory ipcsyncd uses by default.
std::filesystem::path defaultRuntimeDir();

}  // namespace ipcsync::sync
