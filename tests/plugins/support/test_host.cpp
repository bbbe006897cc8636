#include "test_host.h"

#include <dlfcn.h>

#include <cstddef>
#include <stdexcept>

namespace ipcsync::test {
namespace {

RecordedEnvelope record(const ipcsync_envelope& e) {
  RecordedEnvelope r;
  r.origin = e.origin ? e.origin : "";
  r.sequence = e.sequence;
  r.commitTimeUs = e.commit_time_us;
  r.pieceIndex = e.piece_index;
  r.pieceCount = e.piece_count;
  const auto* bytes = static_cast<const unsigned char*>(e.data);
  r.data.assign(bytes, bytes + e.size);
  return r;
}

std::string text(const char* s) { return s ? s : ""; }

}  // namespace

TestHost::TestHost(const std::filesystem::path& library, std::map<std::string, std::string> settings,
                   std::filesystem::path dataDir)
    : m_settings(std::move(settings)), m_dataDir(dataDir.string()) {
  m_library = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!m_library) throw std::runtime_error(std::string("dlopen: ") + dlerror());
  auto entry = reinterpret_cast<ipcsync_plugin_entry_fn>(dlsym(m_library, IPCSYNC_PLUGIN_ENTRY_SYMBOL));
  if (!entry) throw std::runtime_error(library.string() + " has no " IPCSYNC_PLUGIN_ENTRY_SYMBOL);
  m_descriptor = entry();
  if (!m_descriptor || m_descriptor->abi_major != IPCSYNC_PLUGIN_ABI_MAJOR ||
      m_descriptor->abi_minor > IPCSYNC_PLUGIN_ABI_MINOR)
    throw std::runtime_error(library.string() + ": ABI version mismatch");
  std::filesystem::create_directories(dataDir);

  m_services.struct_size = sizeof m_services;
  m_services.abi_major = IPCSYNC_PLUGIN_ABI_MAJOR;
  m_services.abi_minor = IPCSYNC_PLUGIN_ABI_MINOR;
  m_services.host = self(this);
  m_services.log = &doLog;
  m_services.setting = &doSetting;
  m_services.data_dir = &doDataDir;
  m_services.emit = &doEmit;
  m_services.emit_snapshot = &doEmitSnapshot;
  m_services.report_conflict = &doReportConflict;
  m_services.set_wake_fd = &doSetWakeFd;
}

void TestHost::offerAbi10Services() {
  m_services.struct_size = static_cast<uint32_t>(offsetof(ipcsync_host_services, set_wake_fd));
  m_services.abi_minor = 0;
  m_services.set_wake_fd = nullptr;
}

int TestHost::doSetWakeFd(ipcsync_host* host, int fd, ipcsync_error*) {
  from(host)->wakeFd = fd;
  return IPCSYNC_OK;
}

TestHost::~TestHost() {
  destroy();
  if (m_library) dlclose(m_library);
}

int TestHost::finish(int status) {
  if (status == IPCSYNC_OK) m_lastError.clear();
  return status;
}

#define IPCSYNC_TEST_CALL(expr)                        \
  do {                                                 \
    ipcsync_error error{};                             \
    const int status = (expr);                         \
    if (status != IPCSYNC_OK) m_lastError = error.message; \
    return finish(status);                             \
  } while (false)

int TestHost::create() { IPCSYNC_TEST_CALL(m_descriptor->create(&m_services, &m_plugin, &error)); }

int TestHost::start(uint64_t journaledThrough) {
  ipcsync_start_args args{sizeof(ipcsync_start_args), journaledThrough};
  m_started = true;
  IPCSYNC_TEST_CALL(m_descriptor->start(m_plugin, &args, &error));
}

int TestHost::poll() { IPCSYNC_TEST_CALL(m_descriptor->poll(m_plugin, &error)); }

int TestHost::apply(const ipcsync_envelope& envelope, ipcsync_apply_result& result) {
  result = {};
  result.struct_size = sizeof result;
  IPCSYNC_TEST_CALL(m_descriptor->apply(m_plugin, &envelope, &result, &error));
}

int TestHost::snapshot(const std::string& table, const std::string& route, size_t maxPieceBytes, uint64_t& asOf) {
  ipcsync_snapshot_request request{sizeof(ipcsync_snapshot_request), table.c_str(), route.c_str(), maxPieceBytes};
  IPCSYNC_TEST_CALL(m_descriptor->snapshot(m_plugin, &request, &asOf, &error));
}

int TestHost::lastApplied(const std::string& route, uint64_t& sequence) {
  IPCSYNC_TEST_CALL(m_descriptor->last_applied(m_plugin, route.c_str(), &sequence, &error));
}

int TestHost::acknowledge(uint64_t sequence) { IPCSYNC_TEST_CALL(m_descriptor->acknowledge(m_plugin, sequence, &error)); }

int TestHost::stop() {
  m_started = false;
  IPCSYNC_TEST_CALL(m_descriptor->stop(m_plugin, &error));
}

#undef IPCSYNC_TEST_CALL

void TestHost::destroy() {
  if (!m_plugin) return;
  if (m_started) stop();
  m_descriptor->destroy(m_plugin);
  m_plugin = nullptr;
}

void TestHost::doLog(ipcsync_host* host, int level, const char* message) {
  from(host)->logs.emplace_back(level, text(message));
}

const char* TestHost::doSetting(ipcsync_host* host, const char* key) {
  auto& settings = from(host)->m_settings;
  auto it = settings.find(text(key));
  return it == settings.end() ? nullptr : it->second.c_str();
}

const char* TestHost::doDataDir(ipcsync_host* host) { return from(host)->m_dataDir.c_str(); }

int TestHost::doEmit(ipcsync_host* host, const ipcsync_envelope* envelope, ipcsync_error* /*error*/) {
  TestHost* self = from(host);
  if (self->busyEmits > 0) {
    --self->busyEmits;
    return IPCSYNC_EBUSY;
  }
  self->emitted.push_back(record(*envelope));
  return IPCSYNC_OK;
}

int TestHost::doEmitSnapshot(ipcsync_host* host, const ipcsync_envelope* envelope, ipcsync_error* /*error*/) {
  from(host)->snapshotPieces.push_back(record(*envelope));
  return IPCSYNC_OK;
}

int TestHost::doReportConflict(ipcsync_host* host, const ipcsync_conflict* c, ipcsync_error* /*error*/) {
  RecordedConflict r{text(c->route), text(c->origin), text(c->table), text(c->kind),
                     text(c->key_json), text(c->source_json), text(c->target_json), c->sequence, {}};
  const auto* bytes = static_cast<const unsigned char*>(c->change);
  r.change.assign(bytes, bytes + c->change_size);
  from(host)->conflicts.push_back(std::move(r));
  return IPCSYNC_OK;
}

}  // namespace ipcsync::test
