// HostServices: the ipcsync_host_services table handed to one plugin instance, and the state
// behind it (instance name, settings, data directory, the sink). Private to the loader.
#pragma once

#include <ipcsync/plugin.h>

#include <map>
#include <string>

#include "ipcsync/plugin_host/plugin_instance.h"

namespace ipcsync::plugin_host {

class HostServices {
 public:
  HostServices(std::string instance, std::map<std::string, std::string> settings, std::string dataDir,
               HostSink& sink);
  HostServices(const HostServices&) = delete;
  HostServices& operator=(const HostServices&) = delete;

  const ipcsync_host_services* table() const noexcept { return &m_table; }
  const std::string& instance() const noexcept { return m_instance; }
  // emit and emit_snapshot are refused outside [start, stop).
  void setEmitting(bool on) noexcept { m_emitting = on; }
  // True if the changeset helper services are available (plugin_sdk was built in).
  static bool hasChangesetHelpers() noexcept;
  // The descriptor the plugin gave set_wake_fd (ABI 1.1), or -1. Owned by the plugin.
  int wakeFd() const noexcept { return m_wakeFd; }
  // Forgets the wake descriptor (the host found it closed).
  void dropWakeFd() noexcept { m_wakeFd = -1; }

 private:
  static HostServices& from(ipcsync_host* host) noexcept { return *reinterpret_cast<HostServices*>(host); }
  static void log(ipcsync_host* host, int level, const char* message);
  static const char* setting(ipcsync_host* host, const char* key);
  static const char* dataDir(ipcsync_host* host);
  static int emit(ipcsync_host* host, const ipcsync_envelope* changeSet, ipcsync_error* error);
  static int emitSnapshot(ipcsync_host* host, const ipcsync_envelope* piece, ipcsync_error* error);
  static int reportConflict(ipcsync_host* host, const ipcsync_conflict* conflict, ipcsync_error* error);
  static int setWakeFd(ipcsync_host* host, int fd, ipcsync_error* error);
  void installChangesetHelpers() noexcept;

  std::string m_instance;
  std::map<std::string, std::string> m_settings;
  std::string m_dataDir;
  HostSink& m_sink;
  bool m_emitting = false;
  int m_wakeFd = -1;
  ipcsync_host_services m_table{};
};

// Writes `message` into `error` (NUL-terminated, truncated to fit); tolerates a NULL `error`.
void setError(ipcsync_error* error, std::string_view message) noexcept;

}  // namespace ipcsync::plugin_host
