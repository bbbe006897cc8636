// Engine: the communications engine of one namespace.
//
// It creates the administrative memory, listens on the rendezvous socket, registers processes
// (creating each one's control segment, block, manager and notification handles and handing them
// over as descriptors), and publishes every manager's figures into the registry. It forwards
// messages: it validates each Location a client posts, copies the bytes into the receiver's block
// (once per subscriber for a topic) or passes a sealed hand-over object on, and keeps the last
// messages of cached topics in its own block. It reclaims all a process held the moment it ends,
// after delivering what that process had already sent. It alone writes the registry.
//
// Registration steps run on the engine's single event-loop thread, which serialises them as the
// source design's admin lock does; observers never see a half-built record (sequence locks).
// Not thread-safe except requestStop(), which is also async-signal-safe.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string_view>

#include "ipcsync/ipccore/engine_config.h"
#include "ipcsync/ipccore/error.h"

namespace ipcsync {

enum class LogLevel { Debug, Info, Warn, Error };
using LogSink = std::function<void(LogLevel, std::string_view)>;

class Engine {
 public:
  // Takes the namespace: locks its runtime directory, creates the admin segment (replacing one
  // left by a dead engine) and binds the socket. EngineAlreadyRunning names the live engine's pid.
  static std::expected<std::unique_ptr<Engine>, Error> create(EngineConfig config, LogSink log = {});

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  // Disconnects every client and removes the socket, the runtime directory and the segment.
  ~Engine();

  // Serves until requestStop(). Returns an error only when the event loop itself fails.
  std::expected<void, Error> run();

  // Makes run() return soon. Safe from any thread and from a signal handler.
  void requestStop() noexcept;

  const std::filesystem::path& socketPath() const noexcept;
  std::uint32_t registeredCount() const noexcept;

 private:
  class Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace ipcsync
