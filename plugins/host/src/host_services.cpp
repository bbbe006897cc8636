// The host services a plugin instance calls. Every entry point catches every C++ exception: none
// may cross into the plugin's C code.
#include "host_services.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <exception>

#if IPCSYNC_HAVE_PLUGIN_SDK
#include <optional>
#include <span>
#include <vector>

#include "ipcsync/plugin_sdk/changeset.h"
#endif

namespace ipcsync::plugin_host {

void setError(ipcsync_error* error, std::string_view message) noexcept {
  if (!error) return;
  const std::size_t n = std::min(message.size(), sizeof error->message - 1);
  std::memcpy(error->message, message.data(), n);
  error->message[n] = '\0';
}

namespace {

// Runs `body`, turning any exception into IPCSYNC_EINTERNAL with its message.
template <class F>
int guarded(ipcsync_error* error, const char* service, F&& body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    setError(error, std::string("host service ") + service + " failed: " + e.what());
  } catch (...) {
    setError(error, std::string("host service ") + service + " failed with an unknown exception");
  }
  return IPCSYNC_EINTERNAL;
}

// The envelope fields emit needs, up to and including `size`.
constexpr std::size_t kEmitEnvelopeSize = offsetof(ipcsync_envelope, size) + sizeof(std::size_t);
constexpr std::size_t kConflictSize = offsetof(ipcsync_conflict, change_size) + sizeof(std::size_t);

int emitChecks(const HostServices& self, bool emitting, const ipcsync_envelope* e, const char* what,
               ipcsync_error* error) {
  if (!e || e->struct_size < kEmitEnvelopeSize) {
    setError(error, std::string(what) + ": the envelope is NULL or its struct_size (" +
                        std::to_string(e ? e->struct_size : 0) + ") is smaller than the " +
                        std::to_string(kEmitEnvelopeSize) + " bytes of ABI 1.0; set struct_size = sizeof(ipcsync_envelope)");
    return IPCSYNC_EINVAL;
  }
  if (!emitting) {
    setError(error, std::string(what) + " by instance '" + self.instance() +
                        "' outside start()..stop(): emit only after start() returned and before stop()");
    return IPCSYNC_EINVAL;
  }
  if (e->size > 0 && !e->data) {
    setError(error, std::string(what) + ": size is " + std::to_string(e->size) + " but data is NULL");
    return IPCSYNC_EINVAL;
  }
  if (e->piece_count == 0 || e->piece_index >= e->piece_count) {
    setError(error, std::string(what) + ": piece " + std::to_string(e->piece_index) + " of " +
                        std::to_string(e->piece_count) + " is impossible; piece_count >= 1 and piece_index < piece_count");
    return IPCSYNC_EINVAL;
  }
  if (e->provenance_count > 0 && !e->provenance) {
    setError(error, std::string(what) + ": provenance_count is set but provenance is NULL");
    return IPCSYNC_EINVAL;
  }
  return IPCSYNC_OK;
}

}  // namespace

HostServices::HostServices(std::string instance, std::map<std::string, std::string> settings, std::string dataDir,
                           HostSink& sink)
    : m_instance(std::move(instance)), m_settings(std::move(settings)), m_dataDir(std::move(dataDir)), m_sink(sink) {
  m_table.struct_size = sizeof m_table;
  m_table.abi_major = IPCSYNC_PLUGIN_ABI_MAJOR;
  m_table.abi_minor = IPCSYNC_PLUGIN_ABI_MINOR;
  m_table.host = reinterpret_cast<ipcsync_host*>(this);
  m_table.log = &HostServices::log;
  m_table.setting = &HostServices::setting;
  m_table.data_dir = &HostServices::dataDir;
  m_table.emit = &HostServices::emit;
  m_table.emit_snapshot = &HostServices::emitSnapshot;
  m_table.report_conflict = &HostServices::reportConflict;
  installChangesetHelpers();
  m_table.set_wake_fd = &HostServices::setWakeFd;
}

void HostServices::log(ipcsync_host* host, int level, const char* message) {
  try {
    const auto& self = from(host);
    const char* text = message ? message : "(null message)";
    switch (level) {
      case IPCSYNC_LOG_DEBUG: spdlog::debug("[{}] {}", self.m_instance, text); break;
      case IPCSYNC_LOG_INFO: spdlog::info("[{}] {}", self.m_instance, text); break;
      case IPCSYNC_LOG_WARN: spdlog::warn("[{}] {}", self.m_instance, text); break;
      default: spdlog::error("[{}] {}", self.m_instance, text); break;
    }
  } catch (...) {
    // A log line that cannot be written is dropped; nothing may reach the plugin.
  }
}

const char* HostServices::setting(ipcsync_host* host, const char* key) {
  try {
    if (!key) return nullptr;
    const auto& settings = from(host).m_settings;
    const auto it = settings.find(key);
    return it == settings.end() ? nullptr : it->second.c_str();
  } catch (...) {
    return nullptr;
  }
}

const char* HostServices::dataDir(ipcsync_host* host) { return from(host).m_dataDir.c_str(); }

int HostServices::emit(ipcsync_host* host, const ipcsync_envelope* changeSet, ipcsync_error* error) {
  return guarded(error, "emit", [&] {
    auto& self = from(host);
    if (const int rc = emitChecks(self, self.m_emitting, changeSet, "emit", error); rc != IPCSYNC_OK) return rc;
    std::string message;
    const int rc = self.m_sink.emit(*changeSet, message);
    if (rc != IPCSYNC_OK) setError(error, message);
    return rc;
  });
}

int HostServices::emitSnapshot(ipcsync_host* host, const ipcsync_envelope* piece, ipcsync_error* error) {
  return guarded(error, "emit_snapshot", [&] {
    auto& self = from(host);
    // Snapshots are requested while started; emitChecks enforces the same window.
    if (const int rc = emitChecks(self, self.m_emitting, piece, "emit_snapshot", error); rc != IPCSYNC_OK) return rc;
    std::string message;
    const int rc = self.m_sink.emitSnapshot(*piece, message);
    if (rc != IPCSYNC_OK) setError(error, message);
    return rc;
  });
}

int HostServices::reportConflict(ipcsync_host* host, const ipcsync_conflict* conflict, ipcsync_error* error) {
  return guarded(error, "report_conflict", [&] {
    auto& self = from(host);
    if (!conflict || conflict->struct_size < kConflictSize) {
      setError(error, "report_conflict: the conflict is NULL or its struct_size is smaller than ABI 1.0's " +
                          std::to_string(kConflictSize) + " bytes; set struct_size = sizeof(ipcsync_conflict)");
      return IPCSYNC_EINVAL;
    }
    if (conflict->change_size > 0 && !conflict->change) {
      setError(error, "report_conflict: change_size is set but change is NULL");
      return IPCSYNC_EINVAL;
    }
    std::string message;
    const int rc = self.m_sink.reportConflict(*conflict, message);
    if (rc != IPCSYNC_OK) setError(error, message);
    return rc;
  });
}

int HostServices::setWakeFd(ipcsync_host* host, int fd, ipcsync_error* error) {
  return guarded(error, "set_wake_fd", [&] {
    auto& self = from(host);
    if (fd < -1 || (fd >= 0 && ::fcntl(fd, F_GETFD) == -1)) {
      setError(error, "set_wake_fd: " + std::to_string(fd) +
                          " is not an open file descriptor; give a descriptor the plugin keeps open, or -1 to stop waking");
      return IPCSYNC_EINVAL;
    }
    if (fd >= 0 && self.m_wakeFd != fd)
      spdlog::info("[{}] the host polls the plugin as soon as descriptor {} is readable", self.m_instance, fd);
    self.m_wakeFd = fd;
    return IPCSYNC_OK;
  });
}

#if IPCSYNC_HAVE_PLUGIN_SDK

namespace {

struct Builder {
  plugin_sdk::ChangesetWriter writer;
};
struct Reader {
  std::optional<plugin_sdk::ChangesetReader> reader;
};

int builderNew(ipcsync_host*, ipcsync_changeset_builder** out, ipcsync_error* error) {
  return guarded(error, "changeset_builder_new", [&] {
    if (!out) {
      setError(error, "changeset_builder_new: out is NULL");
      return IPCSYNC_EINVAL;
    }
    *out = reinterpret_cast<ipcsync_changeset_builder*>(new Builder);
    return IPCSYNC_OK;
  });
}

int builderAdd(ipcsync_changeset_builder* builder, const char* table, int columnCount,
               const unsigned char* primaryKey, int op, const ipcsync_value* oldValues,
               const ipcsync_value* newValues, ipcsync_error* error) {
  return guarded(error, "changeset_builder_add", [&] {
    if (!builder || !table) {
      setError(error, "changeset_builder_add: builder or table is NULL");
      return IPCSYNC_EINVAL;
    }
    auto added = reinterpret_cast<Builder*>(builder)->writer.add(table, columnCount, primaryKey, op, oldValues, newValues);
    if (!added) {
      setError(error, added.error());
      return IPCSYNC_EINVAL;
    }
    return IPCSYNC_OK;
  });
}

int builderFinish(ipcsync_changeset_builder* builder, const void** data, std::size_t* size, ipcsync_error* error) {
  return guarded(error, "changeset_builder_finish", [&] {
    if (!builder || !data || !size) {
      setError(error, "changeset_builder_finish: builder, data or size is NULL");
      return IPCSYNC_EINVAL;
    }
    const auto& bytes = reinterpret_cast<Builder*>(builder)->writer.bytes();
    *data = bytes.data();
    *size = bytes.size();
    return IPCSYNC_OK;
  });
}

void builderFree(ipcsync_changeset_builder* builder) { delete reinterpret_cast<Builder*>(builder); }

int readerOpen(ipcsync_host*, const void* data, std::size_t size, ipcsync_changeset_reader** out,
               ipcsync_error* error) {
  return guarded(error, "changeset_reader_open", [&] {
    if (!out || (size > 0 && !data)) {
      setError(error, "changeset_reader_open: out is NULL, or size is set but data is NULL");
      return IPCSYNC_EINVAL;
    }
    auto opened = plugin_sdk::ChangesetReader::open(
        std::span<const unsigned char>(static_cast<const unsigned char*>(data), size));
    if (!opened) {
      setError(error, opened.error());
      return IPCSYNC_EINVAL;
    }
    auto* r = new Reader;
    r->reader.emplace(std::move(*opened));
    *out = reinterpret_cast<ipcsync_changeset_reader*>(r);
    return IPCSYNC_OK;
  });
}

int readerNext(ipcsync_changeset_reader* reader, ipcsync_change* change, ipcsync_error* error) {
  int result = -1;
  const int rc = guarded(error, "changeset_reader_next", [&] {
    if (!reader || !change) {
      setError(error, "changeset_reader_next: reader or change is NULL");
      return IPCSYNC_EINVAL;
    }
    // The plugin allocated *change and says how much of it there is: write no more than that (a
    // plugin built against an older minor version has a shorter struct).
    ipcsync_change full{};
    auto next = reinterpret_cast<Reader*>(reader)->reader->next(full);
    if (!next) {
      setError(error, next.error());
      return IPCSYNC_EINVAL;
    }
    const std::uint32_t room = change->struct_size ? change->struct_size : static_cast<std::uint32_t>(sizeof full);
    const std::size_t n = std::min<std::size_t>(room, sizeof full);
    full.struct_size = static_cast<std::uint32_t>(n);
    std::memcpy(change, &full, n);
    result = *next ? 1 : 0;
    return IPCSYNC_OK;
  });
  return rc == IPCSYNC_OK ? result : -1;
}

void readerFree(ipcsync_changeset_reader* reader) { delete reinterpret_cast<Reader*>(reader); }

}  // namespace

bool HostServices::hasChangesetHelpers() noexcept { return true; }

void HostServices::installChangesetHelpers() noexcept {
  m_table.changeset_builder_new = &builderNew;
  m_table.changeset_builder_add = &builderAdd;
  m_table.changeset_builder_finish = &builderFinish;
  m_table.changeset_builder_free = &builderFree;
  m_table.changeset_reader_open = &readerOpen;
  m_table.changeset_reader_next = &readerNext;
  m_table.changeset_reader_free = &readerFree;
}

#else

// plugin_sdk is not part of this build: the changeset helpers stay NULL, as the ABI allows a
// plugin to check for.
bool HostServices::hasChangesetHelpers() noexcept { return false; }
void HostServices::installChangesetHelpers() noexcept {}

#endif

}  // namespace ipcsync::plugin_host
