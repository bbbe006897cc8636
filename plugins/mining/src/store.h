// The mining database: opens or creates it (WAL), checks its schema version, keeps the
// top_customers view at the configured size, and wraps the write transaction that one change-set
// (all of its pieces) runs in, together with the route table that makes applying idempotent.
// One Store per plugin instance; not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "error.h"
#include "sales_ledger.h"
#include "sqlite_db.h"

namespace ipcsync::mining {

class Store {
 public:
  // Opens `path` (creating it and its tables), sets the top_customers view to `topCustomers` rows.
  // Storage names the path and SQLite's reason; Schema when the file holds a newer mining schema.
  static Expected<std::unique_ptr<Store>> open(const std::string& path, int64_t topCustomers);

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  ~Store();  // rolls back an open transaction

  // The last sequence committed on `route`, 0 if none.
  Expected<uint64_t> lastApplied(const std::string& route);

  Expected<> begin();
  // Records `route` -> `sequence` and commits everything since begin().
  Expected<> commit(const std::string& route, uint64_t sequence, const std::string& origin, int64_t commitTimeUs);
  // Undoes everything since begin(); harmless when no transaction is open.
  void rollback();
  bool inTransaction() const { return m_open; }

  SalesLedger& ledger() { return m_ledger; }

 private:
  Store(Database db, SalesLedger ledger, Statement last, Statement record)
      : m_db(std::move(db)), m_ledger(std::move(ledger)), m_last(std::move(last)), m_record(std::move(record)) {}
  Database m_db;
  SalesLedger m_ledger;
  Statement m_last, m_record;
  bool m_open = false;
};

}  // namespace ipcsync::mining
