// Applies single CRM changes to mining's copies (accounts, orders) and moves the aggregates by the
// difference, so that after every change each aggregate table equals its GROUP BY over the copies
// (docs/plugins/mining.md gives the SQL) once flush() has run. Runs inside the caller's transaction; on an error the
// caller must roll back, since the copies and aggregates may be half-changed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "aggregate_table.h"
#include "changeset_reader.h"
#include "crm_tables.h"
#include "error.h"
#include "sqlite_db.h"

namespace ipcsync::mining {

// What became of one change. Mining is a sink of copies: the source always wins.
enum class Outcome {
  Applied,          // took effect, no conflict
  ReplacedExisting, // an insert met a row mining already had: overwritten (kind "conflict")
  OldValuesDiffered,// an update/delete whose old values differ from mining's copy: applied (kind "data")
  NotFound          // an update/delete of a row mining does not have: skipped (kind "notfound")
};
inline bool isConflict(Outcome o) { return o != Outcome::Applied; }
const char* conflictKind(Outcome o);

class SalesLedger {
 public:
  // Prepares every statement on `db`, which must outlive the ledger.
  static Expected<SalesLedger> prepare(Database& db);
  ~SalesLedger();
  SalesLedger(SalesLedger&&) noexcept;
  SalesLedger& operator=(SalesLedger&&) noexcept;

  // Applies one change of `table` (already checked by classify()). The aggregates' part stays
  // pending until flush().
  Expected<Outcome> apply(const Change& change, CrmTable table);
  // Writes the aggregates' pending deltas; call before committing. On an error, roll back.
  Expected<> flush();
  // Forgets pending deltas (after a rollback).
  void discard();

 private:
  struct Statements;
  explicit SalesLedger(std::unique_ptr<Statements> s);
  Expected<Outcome> applyAccount(const Change& change);
  Expected<Outcome> applyOrder(const Change& change);

  Expected<std::optional<AccountRow>> findAccount(int64_t id);
  Expected<std::optional<OrderRow>> findOrder(int64_t id);
  // The region of the account as mining knows it; NULL (monostate) when it does not.
  // (An out-parameter: GCC 12 warns falsely about an Expected<Key> return at -O2.)
  Expected<> regionOf(int64_t accountId, Key& region);
  // Adds (sign +1) or retracts (-1) one order's contribution to every aggregate.
  Expected<> contribute(const OrderRow& order, int sign);
  // Moves all of an account's orders' totals from one region to another.
  Expected<> moveCustomer(int64_t accountId, const Key& from, const Key& to);

  std::unique_ptr<Statements> m_s;
};

}  // namespace ipcsync::mining
