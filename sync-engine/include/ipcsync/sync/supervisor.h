// Supervisor: runs one plugin host process per configured plugin instance and keeps it running.
// (ipcsyncd runs a second Supervisor, with its own command line, for the sync engine process.)
//
// It starts `<host program> --plugin LIB --instance NAME --namespace NS --runtime-dir DIR
// --data-dir DIR [--setting k=v]...` for every instance, each in its own process group, and reads
// each host's stderr into the daemon's log. A host that crashes (dies by a signal, or exits 1:
// engine lost, or any code it does not document) is started again after a back-off delay that
// doubles per crash in the crash window; max_crashes within the window mark the instance FAILED
// and it is not started again. A host that exits 3 or 4 (plugin refused by the loader, plugin
// create/start failed) is FAILED at once: starting it again cannot help. Exit 2 (usage) counts as
// a crash, since the host also reports a name still held by its crashed predecessor so. An instance counts
// as running once the engine lists its host as registered (the probe says so). Other instances
// are never touched by one instance's trouble. See docs/design/supervision.md.
//
// Event-driven and single-threaded: the owner polls pollFd() (an epoll descriptor; it nests in
// any loop) and calls dispatch() whenever it is readable. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ipcsync/ipccore/engine.h"
#include "ipcsync/sync/plugin_config.h"

namespace ipcsync {

enum class InstanceState { Starting, Running, Restarting, Failed, Stopping, Stopped };

// "starting", "running", "restarting", "failed", "stopping", "stopped".
std::string_view toString(InstanceState state);

// One instance as the supervisor sees it now.
struct InstanceStatus {
  std::string name;
  std::string library;           // as written in the configuration
  InstanceState state = InstanceState::Starting;
  pid_t pid = 0;                 // the host's pid; 0 when no host runs
  std::uint32_t restarts = 0;    // hosts started after the first
  std::string lastExit;          // how the last host ended ("exit 3", "signal 11 (SIGSEGV)"); empty: none yet
  std::string message;           // the reason for the state (failed), else the host's last stderr line
  std::chrono::system_clock::time_point since;  // when the state was entered
  std::optional<std::chrono::system_clock::time_point> restartAt;  // Restarting: when the next host starts
};

class Supervisor {
 public:
  // The command line of one instance's process (argv[1..]), given its configuration and data directory.
  using ArgsBuilder = std::function<std::vector<std::string>(const PluginInstanceConfig&, const std::filesystem::path& dataDir)>;
  struct Options {
    std::filesystem::path hostProgram;  // empty: each instance's `library` is the program to run
    std::string ns;
    std::filesystem::path runtimeDir;  // passed to every host as --runtime-dir
    ArgsBuilder args;                  // empty: the plugin host's command line above
    std::string registeredPrefix = "plugin.";  // the engine lists an instance's process as <prefix><name>
    std::string kind = "plugin instance";      // how log lines name an instance
    std::string process = "host";              // and its process
  };
  // True once the engine lists `pid` as registered under `engineName` ("plugin.<instance>").
  using RegisteredProbe = std::function<bool(const std::string& engineName, pid_t pid)>;

  // Takes the plugin configuration (instances, supervision bounds, state directory). Starts
  // nothing yet. Fails only when the kernel refuses an epoll or timer descriptor.
  static std::expected<std::unique_ptr<Supervisor>, std::string> create(const PluginsConfig& config, Options options,
                                                                       LogSink log, RegisteredProbe registered);
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;
  // Kills (SIGKILL) and reaps every host still running.
  ~Supervisor();

  int pollFd() const noexcept;

  // Called after every change of any instance's status.
  void onChange(std::function<void()> callback);

  // Starts a host for every instance.
  void startAll();

  // Handles whatever is pending (hosts that ended, stderr lines, due restarts, registrations)
  // without blocking.
  void dispatch();

  // Applies a new instance list (a reloaded configuration): instances no longer listed are stopped
  // (SIGTERM, SIGKILL after the stop timeout) and dropped once reaped; new ones are started;
  // those whose library, settings or data directory changed are stopped and started afresh;
  // the others are not touched (same pid). The supervision bounds of the new config apply from now.
  void reconfigure(const PluginsConfig& config);

  // Stops the instance's process and starts it again at once (not counted as a crash), e.g. when
  // what it reads changed. A FAILED or stopped instance is started. No effect for an unknown name.
  void restart(const std::string& name);

  // SIGTERM to every host; no more restarts; SIGKILL to those still running after the
  // configured stop timeout. stopped() says when every host has been reaped.
  void beginShutdown();
  // From now on a host that ends is not restarted (it is left stopped): the daemon says so before
  // it stops the sync engine, whose going makes every host exit 1.
  void holdRestarts();
  bool stopped() const noexcept;

  std::vector<InstanceStatus> status() const;

 private:
  class Impl;
  explicit Supervisor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace ipcsync
