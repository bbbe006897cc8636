// EngineConfig: everything the communications engine needs to serve one namespace.
//
// Plain data with documented defaults; the daemon fills it from flags or its YAML file.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ipcsync/ipccore/geometry.h"

namespace ipcsync {

// Who may register. Empty lists admit only the engine's own user.
struct AccessList {
  std::vector<uid_t> uids;
  std::vector<gid_t> gids;  // matched against the peer's primary and supplementary groups
};

struct EngineConfig {
  std::string ns = "default";
  // Base of the runtime directory; the engine uses <runtimeDir>/<ns>/ (mode 0700, or 0711 when
  // the access list admits other users) for its socket. Empty: defaultRuntimeDir().
  std::filesystem::path runtimeDir;
  std::uint32_t capacity = 128;        // registry slots
  BlockGeometry geometry{};            // every client's block
  AccessList access;
  std::chrono::milliseconds publishInterval{50};  // how often manager figures reach the registry
  std::chrono::milliseconds helloTimeout{2000};   // a connection that says nothing is dropped
  // How long the engine keeps polling the rings after the last message before it sleeps. While
  // it polls, a message costs no system call; a sleeping engine costs a wake-up (~7 us here).
  // Polling yields the CPU between rounds. Large values make a low-latency, CPU-hungry engine.
  std::chrono::microseconds spin{50};
  // Messages of at least this many bytes travel as their own sealed memory object, handed from
  // sender to receiver without a copy, instead of being copied through the engine. 0 (default):
  // only messages larger than one arena, which cannot be copied. On the 2-core VMs we measure on,
  // fresh pages for each hand-over cost about 7x what copying through warm blocks does, so the
  // copy path wins wherever it is possible (docs/PERFORMANCE.md).
  std::uint64_t handoverThreshold = 0;
};

// $XDG_RUNTIME_DIR/ipcsync if set, else /tmp/ipcsync-<uid>.
std::filesystem::path defaultRuntimeDir();

}  // namespace ipcsync
