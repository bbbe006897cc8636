// HostServer: the plugin host's event loop. It serves the sync engine's requests on the session
// the sync engine opens to it, forwards what the plugin emits and reports as plain messages on
// that session, and polls the plugin every poll interval and as soon as the plugin's wake
// descriptor (set_wake_fd, ABI 1.1) is readable, all on one thread.
// The protocol is in docs/design/plugin-host.md and ipcsync/plugin_host/wire.h.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ipcsync/ipccore/client.h"
#include "ipcsync/plugin_host/loader.h"
#include "ipcsync/plugin_host/wire.h"

namespace ipcsync::plugin_host {

// Process exit codes of ipcsync-plugin-host (docs/ERRORS.md).
enum ExitCode : int {
  kStoppedCleanly = 0,
  kEngineLost = 1,
  kUsageError = 2,
  kPluginRefused = 3,
  kPluginFailed = 4,
};

class HostServer final : public HostSink {
 public:
  HostServer(Client& client, const LoadedPlugin& plugin, std::string syncPeer, std::chrono::milliseconds pollInterval);
  HostServer(const HostServer&) = delete;
  HostServer& operator=(const HostServer&) = delete;

  // The instance to serve (created with this server as its sink). Must be called before run().
  void attach(std::unique_ptr<PluginInstance> instance) { m_instance = std::move(instance); }
  // Serves until `stopRequested` becomes non-zero, the sync engine sends Stop, or the engine or
  // the sync engine's session is lost. Stops and destroys the instance; returns the exit code.
  int run(const volatile std::sig_atomic_t& stopRequested);

  int emit(const ipcsync_envelope& changeSet, std::string& error) override;
  int emitSnapshot(const ipcsync_envelope& piece, std::string& error) override;
  int reportConflict(const ipcsync_conflict& conflict, std::string& error) override;

 private:
  enum class Next { Continue, Stop, StartFailed, StartFailedForNow, SessionLost };
  Next handle(const Message& request);
  Next serve(const Message& request, wire::Kind kind);
  template <class T> void answer(const Message& to, wire::Kind kind, const T& body);
  void fail(const Message& to, int status, const std::string& message);
  // Sends a plain frame on the sync session; `wait` false means back-pressure is reported at once.
  template <class T> int sendFrame(wire::Kind kind, const T& body, bool wait, std::string& error);
  int finish(int code);
  // True if the plugin's wake descriptor is readable right now (poll() did not read it empty).
  bool wakeStillReadable();

  Client& m_client;
  const LoadedPlugin& m_plugin;
  std::string m_syncPeer;
  std::chrono::milliseconds m_pollInterval;
  std::unique_ptr<PluginInstance> m_instance;
  std::optional<SessionId> m_session;  // the sync engine's session, once it spoke
  const volatile std::sig_atomic_t* m_stopRequested = nullptr;  // run()'s, for answers that wait
  std::string m_lastPollError;
  std::chrono::steady_clock::time_point m_lastPollErrorLogged{};
  std::uint64_t m_polls = 0;      // poll() calls
  std::uint64_t m_wakePolls = 0;  // of which woken by the wake descriptor
  bool m_warnedUndrainedWake = false;
};

}  // namespace ipcsync::plugin_host
