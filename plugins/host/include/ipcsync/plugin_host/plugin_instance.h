// PluginInstance: one created plugin instance and the host services it was given.
//
// The instance owns the `ipcsync_host_services` table the plugin holds on to, so it is pinned
// (copy and move deleted). Each lifecycle call returns the plugin's status and message as a
// PluginFailure when it fails. The services the plugin calls back (log, setting, data_dir, emit,
// emit_snapshot, report_conflict, the changeset helpers) never let a C++ exception cross into C:
// a throw becomes IPCSYNC_EINTERNAL with its what() as the message.
//
// emit/emit_snapshot/report_conflict go to a HostSink, which the host process wires to IPC.
// emit is allowed only between a successful start() and stop(); outside it, IPCSYNC_EINVAL.
// Thread safety: call everything from one thread (the ABI's rule).
#pragma once

#include <ipcsync/plugin.h>

#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <string>

namespace ipcsync::plugin_host {

// Receives what the plugin hands the host. Each returns an IPCSYNC_* status; on failure it fills
// `error` with what to tell the plugin. Called on the plugin's thread, from within a plugin call.
class HostSink {
 public:
  virtual ~HostSink() = default;
  virtual int emit(const ipcsync_envelope& changeSet, std::string& error) = 0;
  virtual int emitSnapshot(const ipcsync_envelope& piece, std::string& error) = 0;
  virtual int reportConflict(const ipcsync_conflict& conflict, std::string& error) = 0;
};

// A failed plugin call: its IPCSYNC_E* status and the plugin's message.
struct PluginFailure {
  int status = IPCSYNC_EINTERNAL;
  std::string message;
};

class HostServices;  // the services table and its state (src/host_services.cpp)

class PluginInstance {
 public:
  PluginInstance(const PluginInstance&) = delete;
  PluginInstance& operator=(const PluginInstance&) = delete;
  // Calls stop() if started and not yet stopped, then destroy().
  ~PluginInstance();

  const std::string& name() const noexcept;
  bool started() const noexcept { return m_started; }

  std::expected<void, PluginFailure> start(std::uint64_t journaledThrough);
  std::expected<void, PluginFailure> poll();
  // `envelope` as received; struct_size is set here.
  std::expected<ipcsync_apply_result, PluginFailure> apply(const ipcsync_envelope& envelope);
  // Returns as_of.
  std::expected<std::uint64_t, PluginFailure> snapshot(const std::string& table, const std::string& route,
                                                       std::size_t maxPieceBytes);
  std::expected<std::uint64_t, PluginFailure> lastApplied(const std::string& route);
  std::expected<void, PluginFailure> acknowledge(std::uint64_t sequence);
  std::expected<void, PluginFailure> stop();

  // The descriptor the plugin asked the host to wake on (set_wake_fd, ABI 1.1), or -1. The plugin
  // owns it; dropWakeFd() forgets it (the host found it closed under it).
  int wakeFd() const noexcept;
  void dropWakeFd() noexcept;

 private:
  friend class LoadedPlugin;
  PluginInstance(std::shared_ptr<void> library, const ipcsync_plugin_descriptor* descriptor,
                 std::unique_ptr<HostServices> services);
  std::shared_ptr<void> m_library;  // keeps the code loaded while the instance lives
  const ipcsync_plugin_descriptor* m_descriptor;
  std::unique_ptr<HostServices> m_services;
  ipcsync_plugin* m_plugin = nullptr;
  bool m_started = false;
  bool m_stopped = false;
};

}  // namespace ipcsync::plugin_host
