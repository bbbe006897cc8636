// The crm plugin behind the C ABI: reads its settings, owns two connections to the CRM database
// (one for capture and crm's bookkeeping, one for applying incoming change-sets, so an apply
// transaction left open between pieces never blocks the capture side's reads), and turns every
// error and exception into a status and a message at the boundary.
#include <ipcsync/plugin.h>

#include <fmt/format.h>

#include <charconv>
#include <cstring>
#include <exception>
#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include "crm_apply.h"
#include "crm_capture.h"
#include "crm_schema.h"

namespace ipcsync::crm {
namespace {

constexpr int kBusyTimeoutMs = 5000;

class CrmPlugin {
 public:
  static Result<std::unique_ptr<CrmPlugin>> create(const ipcsync_host_services& services) {
    auto settings = readSettings(services);
    if (!settings) return std::unexpected(settings.error());
    auto capture = Database::open(settings->database, kBusyTimeoutMs);
    if (!capture) return std::unexpected(capture.error());
    if (auto r = installSchema(*capture, settings->database); !r) return std::unexpected(r.error());
    auto apply = Database::open(settings->database, kBusyTimeoutMs);
    if (!apply) return std::unexpected(apply.error());
    auto plugin = std::unique_ptr<CrmPlugin>(new CrmPlugin(services, std::move(*settings), std::move(*capture), std::move(*apply)));
    if (auto r = plugin->m_capture.load(); !r) return std::unexpected(r.error());
    plugin->watchForWakeUps();
    const std::string line = fmt::format("crm: database '{}', pieces of at most {} bytes, change-sets of at most {} rows",
                                         plugin->m_settings.database, plugin->m_settings.maxPieceBytes, plugin->m_settings.batchRows);
    services.log(services.host, IPCSYNC_LOG_INFO, line.c_str());
    return plugin;
  }

  Result<void> start(uint64_t journaledThrough) { return ownWrites(m_capture.start(journaledThrough)); }
  Result<void> poll() { return m_capture.poll(m_applier.transactionOpen()); }
  Result<void> apply(const ipcsync_envelope& e, ipcsync_apply_result& r) { return ownWrites(m_applier.apply(e, r)); }
  Result<uint64_t> lastApplied(const std::string& route) { return m_applier.lastApplied(route); }
  Result<void> acknowledge(uint64_t sequence) {
    return ownWrites(m_capture.acknowledge(sequence, m_applier.transactionOpen()));
  }
  void stop() { m_capture.stop(); }
  Result<uint64_t> snapshot(const ipcsync_snapshot_request& request) {
    if (!request.table) return fail(IPCSYNC_EINVAL, "snapshot: no table named");
    const TableInfo* table = findCrmTable(request.table);
    if (!table)
      return fail(IPCSYNC_EUNSUPPORTED, fmt::format("snapshot: crm has no table '{}' (it has accounts, contacts, "
                                                    "interactions, orders)", request.table));
    if (m_applier.transactionOpen())
      return fail(IPCSYNC_EBUSY, "snapshot: an incoming change-set is half applied; ask again after its last piece");
    return ownWrites(m_capture.snapshot(*table, request.route ? request.route : "", request.max_piece_bytes));
  }
  ~CrmPlugin() { m_applier.abandon(); }

 private:
  // After a call that may have committed: its events must not wake the host (see WalWatch).
  template <class T>
  T ownWrites(T result) {
    m_capture.readOwnWakeEvents();
    return result;
  }

  // Asks a host of ABI 1.1 or later to poll as soon as another process commits to the database
  // (an inotify watch on its files), instead of up to --poll-ms later. Without it (a 1.0 host, no
  // inotify), the periodic poll alone finds every change, as before.
  void watchForWakeUps() {
    const ipcsync_host_services& s = m_services;
    if (!m_settings.wakeOnCommit) return;
    if (s.struct_size < offsetof(ipcsync_host_services, set_wake_fd) + sizeof s.set_wake_fd || !s.set_wake_fd) return;
    auto watch = WalWatch::open(m_settings.database);
    if (!watch) {
      const std::string line = "crm: no wake-up on commits (" + watch.error().message + "); the periodic poll finds them";
      s.log(s.host, IPCSYNC_LOG_WARN, line.c_str());
      return;
    }
    m_wake.emplace(std::move(*watch));
    ipcsync_error error{};
    if (s.set_wake_fd(s.host, m_wake->fd(), &error) != IPCSYNC_OK) {
      const std::string line = std::string("crm: the host refused the wake descriptor (") + error.message + ")";
      s.log(s.host, IPCSYNC_LOG_WARN, line.c_str());
      m_wake.reset();
      return;
    }
    m_capture.setWakeWatch(&*m_wake);
  }

  CrmPlugin(const ipcsync_host_services& services, Settings settings, Database capture, Database apply)
      : m_services(services),
        m_settings(std::move(settings)),
        m_captureDb(std::move(capture)),
        m_applyDb(std::move(apply)),
        m_capture(m_captureDb, m_services, m_settings),
        m_applier(m_applyDb, m_services) {}

  static Result<int64_t> positive(const ipcsync_host_services& s, const char* key, int64_t fallback, const char* example) {
    const char* text = s.setting(s.host, key);
    if (!text) return fallback;
    int64_t value = 0;
    const char* end = text + std::strlen(text);
    auto [ptr, ec] = std::from_chars(text, end, value);
    if (ec != std::errc() || ptr != end || value <= 0)
      return fail(IPCSYNC_EINVAL, fmt::format("setting '{}' is '{}': expected a positive whole number, e.g. {}", key, text, example));
    return value;
  }

  static Result<Settings> readSettings(const ipcsync_host_services& s) {
    Settings out;
    // An absolute 'database' is used as it is; a relative one, or none, lives in the instance's data
    // directory (never the host's working directory, which nobody chose).
    const char* db = s.setting(s.host, "database");
    const std::string name = db && *db ? db : "crm.db";
    if (name.front() == '/') {
      out.database = name;
    } else {
      const char* dir = s.data_dir(s.host);
      if (!dir || !*dir)
        return fail(IPCSYNC_EINVAL, "crm: 'database' is the relative path '" + name + "' and the host gave no data directory");
      out.database = std::string(dir) + "/" + name;
    }
    auto piece = positive(s, "max_piece_bytes", 256 * 1024, "262144");
    if (!piece) return std::unexpected(piece.error());
    auto rows = positive(s, "batch_rows", 10000, "10000");
    if (!rows) return std::unexpected(rows.error());
    out.maxPieceBytes = static_cast<size_t>(*piece);
    out.batchRows = *rows;
    if (const char* wake = s.setting(s.host, "wake_on_commit")) {
      const std::string w = wake;
      if (w == "true" || w == "1") out.wakeOnCommit = true;
      else if (w == "false" || w == "0") out.wakeOnCommit = false;
      else return fail(IPCSYNC_EINVAL, fmt::format("setting 'wake_on_commit' is '{}': expected true or false", w));
    }
    return out;
  }

  const ipcsync_host_services& m_services;
  Settings m_settings;
  Database m_captureDb, m_applyDb;
  Capture m_capture;
  Applier m_applier;
  std::optional<WalWatch> m_wake;  // given to the host with set_wake_fd; read empty by m_capture
};

CrmPlugin* self(ipcsync_plugin* p) { return reinterpret_cast<CrmPlugin*>(p); }

void setError(ipcsync_error* error, std::string_view message) {
  if (!error) return;
  const size_t n = std::min(message.size(), sizeof error->message - 1);
  std::memcpy(error->message, message.data(), n);
  error->message[n] = '\0';
}

// Runs `body` at the ABI boundary: an Error or an exception becomes a status and a message.
template <class F>
int guarded(ipcsync_error* error, const char* call, F&& body) {
  try {
    Result<void> r = body();
    if (r) return IPCSYNC_OK;
    setError(error, r.error().message);
    return r.error().status;
  } catch (const std::exception& e) {
    setError(error, fmt::format("crm {}: unexpected failure: {}", call, e.what()));
  } catch (...) {
    setError(error, fmt::format("crm {}: unexpected failure", call));
  }
  return IPCSYNC_EINTERNAL;
}

int crmCreate(const ipcsync_host_services* services, ipcsync_plugin** out, ipcsync_error* error) {
  return guarded(error, "create", [&]() -> Result<void> {
    if (!services || !out) return fail(IPCSYNC_EINVAL, "create: services and out must not be null");
    if (services->struct_size < offsetof(ipcsync_host_services, changeset_builder_new))
      return fail(IPCSYNC_EINVAL, "create: the host's services table is too small for ABI 1.0");
    auto plugin = CrmPlugin::create(*services);
    if (!plugin) return std::unexpected(plugin.error());
    *out = reinterpret_cast<ipcsync_plugin*>(plugin->release());
    return {};
  });
}

int crmStart(ipcsync_plugin* p, const ipcsync_start_args* args, ipcsync_error* error) {
  return guarded(error, "start", [&] { return self(p)->start(args ? args->journaled_through : 0); });
}

int crmPoll(ipcsync_plugin* p, ipcsync_error* error) {
  return guarded(error, "poll", [&] { return self(p)->poll(); });
}

int crmApply(ipcsync_plugin* p, const ipcsync_envelope* e, ipcsync_apply_result* result, ipcsync_error* error) {
  return guarded(error, "apply", [&]() -> Result<void> {
    if (!e || !result) return fail(IPCSYNC_EINVAL, "apply: envelope and result must not be null");
    return self(p)->apply(*e, *result);
  });
}

int crmSnapshot(ipcsync_plugin* p, const ipcsync_snapshot_request* request, uint64_t* asOf, ipcsync_error* error) {
  return guarded(error, "snapshot", [&]() -> Result<void> {
    if (!request || !asOf) return fail(IPCSYNC_EINVAL, "snapshot: request and as_of must not be null");
    auto r = self(p)->snapshot(*request);
    if (!r) return std::unexpected(r.error());
    *asOf = *r;
    return {};
  });
}

int crmLastApplied(ipcsync_plugin* p, const char* route, uint64_t* sequence, ipcsync_error* error) {
  return guarded(error, "last_applied", [&]() -> Result<void> {
    if (!route || !sequence) return fail(IPCSYNC_EINVAL, "last_applied: route and sequence must not be null");
    auto r = self(p)->lastApplied(route);
    if (!r) return std::unexpected(r.error());
    *sequence = *r;
    return {};
  });
}

int crmAcknowledge(ipcsync_plugin* p, uint64_t sequence, ipcsync_error* error) {
  return guarded(error, "acknowledge", [&] { return self(p)->acknowledge(sequence); });
}

int crmStop(ipcsync_plugin* p, ipcsync_error* error) {
  return guarded(error, "stop", [&]() -> Result<void> {
    self(p)->stop();
    return {};
  });
}

void crmDestroy(ipcsync_plugin* p) {
  try {
    delete self(p);
  } catch (...) {
  }
}

std::vector<ipcsync_table_desc> describeTables() {
  std::vector<ipcsync_table_desc> out;
  for (const auto& t : crmTables())
    out.push_back(ipcsync_table_desc{sizeof(ipcsync_table_desc), t.name.c_str(), t.createSql.c_str(),
                                     IPCSYNC_TABLE_PRODUCES | IPCSYNC_TABLE_ACCEPTS});
  return out;
}

}  // namespace
}  // namespace ipcsync::crm

extern "C" IPCSYNC_PLUGIN_EXPORT const ipcsync_plugin_descriptor* ipcsync_plugin_entry(void) {
  using namespace ipcsync::crm;
  static const std::vector<ipcsync_table_desc> tables = describeTables();
  static const ipcsync_plugin_descriptor descriptor = {
      sizeof(ipcsync_plugin_descriptor), IPCSYNC_PLUGIN_ABI_MAJOR, IPCSYNC_PLUGIN_ABI_MINOR, "crm", "1.0.0",
      "CRM tables (accounts, contacts, interactions, orders) in a SQLite file, captured by triggers",
      tables.data(), tables.size(), &crmCreate, &crmStart, &crmPoll, &crmApply, &crmSnapshot, &crmLastApplied,
      &crmAcknowledge, &crmStop, &crmDestroy};
  return &descriptor;
}
