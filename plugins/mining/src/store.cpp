#include "store.h"

#include "mining_schema.h"

namespace ipcsync::mining {
namespace {

Expected<> createSchema(Database& db, const std::string& path, int64_t topCustomers) {
  auto version = db.queryInt("PRAGMA user_version");
  if (!version) return std::unexpected(withContext(version.error(), "reading the mining database '" + path + "'"));
  const int64_t found = version->value_or(0);
  if (found > kMiningSchemaVersion)
    return fail(ErrorKind::Schema, "the mining database '" + path + "' has schema version " + std::to_string(found) +
                                       ", newer than this plugin's " + std::to_string(kMiningSchemaVersion) +
                                       "; run a newer mining plugin or point the 'database' setting elsewhere");
  std::string sql = std::string("BEGIN IMMEDIATE;") + kMiningSchemaSql + topCustomersViewSql(topCustomers) +
                    "PRAGMA user_version = " + std::to_string(kMiningSchemaVersion) + "; COMMIT;";
  if (auto ok = db.exec(sql); !ok) {
    (void)db.exec("ROLLBACK");
    return std::unexpected(withContext(ok.error(), "creating the tables of the mining database '" + path + "'"));
  }
  return {};
}

}  // namespace

Expected<std::unique_ptr<Store>> Store::open(const std::string& path, int64_t topCustomers) {
  auto db = Database::open(path);
  if (!db) return std::unexpected(db.error());
  sqlite3_busy_timeout(db->handle(), 2000);
  auto mode = db->prepare("PRAGMA journal_mode = WAL");
  if (!mode) return std::unexpected(withContext(mode.error(), "'" + path + "'"));
  if (auto ok = mode->step(); !ok) return std::unexpected(withContext(ok.error(), "'" + path + "'"));
  const std::string journal = mode->columnText(0);
  mode->reset();
  if (journal != "wal")
    return fail(ErrorKind::Storage, "the mining database '" + path + "' cannot use write-ahead logging (journal mode '" +
                                        journal + "'); put it on a local file system");
  if (auto ok = db->exec("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;"); !ok)
    return std::unexpected(ok.error());
  if (auto ok = createSchema(*db, path, topCustomers); !ok) return std::unexpected(ok.error());

  auto ledger = SalesLedger::prepare(*db);
  if (!ledger) return std::unexpected(ledger.error());
  auto last = db->prepare("SELECT last_sequence FROM applied_routes WHERE route = ?1");
  if (!last) return std::unexpected(last.error());
  auto record = db->prepare(
      "INSERT INTO applied_routes (route, last_sequence, origin, commit_time_us) VALUES (?1, ?2, ?3, ?4) "
      "ON CONFLICT (route) DO UPDATE SET last_sequence = excluded.last_sequence, origin = excluded.origin, "
      "commit_time_us = excluded.commit_time_us");
  if (!record) return std::unexpected(record.error());
  return std::unique_ptr<Store>(new Store(std::move(*db), std::move(*ledger), std::move(*last), std::move(*record)));
}

Store::~Store() { rollback(); }

Expected<uint64_t> Store::lastApplied(const std::string& route) {
  m_last.bindText(1, route);
  auto row = m_last.step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return uint64_t{0};
  const auto value = static_cast<uint64_t>(m_last.columnInt(0));
  m_last.reset();
  return value;
}

Expected<> Store::begin() {
  if (m_open) return fail(ErrorKind::Internal, "a transaction is already open (a bug; please report it)");
  m_ledger.discard();
  if (auto ok = m_db.exec("BEGIN IMMEDIATE"); !ok) return ok;
  m_open = true;
  return {};
}

Expected<> Store::commit(const std::string& route, uint64_t sequence, const std::string& origin, int64_t commitTimeUs) {
  if (!m_open) return fail(ErrorKind::Internal, "commit without an open transaction (a bug; please report it)");
  if (auto ok = m_ledger.flush(); !ok) return ok;
  m_record.bindText(1, route);
  m_record.bindInt(2, static_cast<int64_t>(sequence));
  m_record.bindText(3, origin);
  m_record.bindInt(4, commitTimeUs);
  if (auto ok = m_record.run(); !ok) return ok;
  if (auto ok = m_db.exec("COMMIT"); !ok) return ok;
  m_open = false;
  return {};
}

void Store::rollback() {
  m_ledger.discard();
  if (!m_open) return;
  (void)m_db.exec("ROLLBACK");
  m_open = false;
}

}  // namespace ipcsync::mining
