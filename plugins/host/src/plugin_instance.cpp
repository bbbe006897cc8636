// PluginInstance: the lifecycle calls of one plugin instance, each turning the plugin's status and
// message into an expected value.
#include "ipcsync/plugin_host/plugin_instance.h"

#include "host_services.h"

namespace ipcsync::plugin_host {

namespace {

PluginFailure failure(int status, ipcsync_error& error, const char* call) {
  error.message[sizeof error.message - 1] = '\0';
  return PluginFailure{status, error.message[0] ? std::string(error.message)
                                                : std::string(call) + "() failed with status " + std::to_string(status) +
                                                      " and no message"};
}

}  // namespace

PluginInstance::PluginInstance(std::shared_ptr<void> library, const ipcsync_plugin_descriptor* descriptor,
                               std::unique_ptr<HostServices> services)
    : m_library(std::move(library)), m_descriptor(descriptor), m_services(std::move(services)) {}

PluginInstance::~PluginInstance() {
  if (!m_plugin) return;
  if (m_started && !m_stopped) (void)stop();
  m_descriptor->destroy(m_plugin);
}

const std::string& PluginInstance::name() const noexcept { return m_services->instance(); }

int PluginInstance::wakeFd() const noexcept { return m_services->wakeFd(); }

void PluginInstance::dropWakeFd() noexcept { m_services->dropWakeFd(); }

std::expected<void, PluginFailure> PluginInstance::start(std::uint64_t journaledThrough) {
  if (m_started) return std::unexpected(PluginFailure{IPCSYNC_EINVAL, "the instance is already started"});
  if (m_stopped) return std::unexpected(PluginFailure{IPCSYNC_EINVAL, "the instance was stopped; it cannot start again"});
  ipcsync_start_args args{sizeof(ipcsync_start_args), journaledThrough};
  ipcsync_error error{};
  // start() may already emit what is pending.
  m_services->setEmitting(true);
  const int rc = m_descriptor->start(m_plugin, &args, &error);
  if (rc != IPCSYNC_OK) {
    m_services->setEmitting(false);
    m_stopped = true;  // the ABI: destroy() follows a failed start(), stop() does not
    return std::unexpected(failure(rc, error, "start"));
  }
  m_started = true;
  return {};
}

std::expected<void, PluginFailure> PluginInstance::poll() {
  ipcsync_error error{};
  const int rc = m_descriptor->poll(m_plugin, &error);
  if (rc != IPCSYNC_OK) return std::unexpected(failure(rc, error, "poll"));
  return {};
}

std::expected<ipcsync_apply_result, PluginFailure> PluginInstance::apply(const ipcsync_envelope& envelope) {
  ipcsync_envelope e = envelope;
  e.struct_size = sizeof e;
  ipcsync_apply_result result{};
  result.struct_size = sizeof result;
  ipcsync_error error{};
  const int rc = m_descriptor->apply(m_plugin, &e, &result, &error);
  if (rc != IPCSYNC_OK) return std::unexpected(failure(rc, error, "apply"));
  return result;
}

std::expected<std::uint64_t, PluginFailure> PluginInstance::snapshot(const std::string& table, const std::string& route,
                                                                     std::size_t maxPieceBytes) {
  ipcsync_snapshot_request request{sizeof(ipcsync_snapshot_request), table.c_str(), route.c_str(), maxPieceBytes};
  std::uint64_t asOf = 0;
  ipcsync_error error{};
  const int rc = m_descriptor->snapshot(m_plugin, &request, &asOf, &error);
  if (rc != IPCSYNC_OK) return std::unexpected(failure(rc, error, "snapshot"));
  return asOf;
}

std::expected<std::uint64_t, PluginFailure> PluginInstance::lastApplied(const std::string& route) {
  std::uint64_t sequence = 0;
  ipcsync_error error{};
  const int rc = m_descriptor->last_applied(m_plugin, route.c_str(), &sequence, &error);
  if (rc != IPCSYNC_OK) return std::unexpected(failure(rc, error, "last_applied"));
  return sequence;
}

std::expected<void, PluginFailure> PluginInstance::acknowledge(std::uint64_t sequence) {
  ipcsync_error error{};
  const int rc = m_descriptor->acknowledge(m_plugin, sequence, &error);
  if (rc != IPCSYNC_OK) return std::unexpected(failure(rc, error, "acknowledge"));
  return {};
}

std::expected<void, PluginFailure> PluginInstance::stop() {
  if (!m_started || m_stopped) {
    m_stopped = true;
    return {};
  }
  m_stopped = true;
  ipcsync_error error{};
  const int rc = m_descriptor->stop(m_plugin, &error);
  m_services->setEmitting(false);
  if (rc != IPCSYNC_OK) return std::unexpected(failure(rc, error, "stop"));
  return {};
}

}  // namespace ipcsync::plugin_host
