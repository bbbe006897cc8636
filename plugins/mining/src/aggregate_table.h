// One aggregate table of the mining database: (key, order_count, units, revenue_cents), one row per
// key that has at least one order, changed by deltas. The key may be NULL (an order whose account
// is unknown, or a day outside SQLite's date range). Sums are checked: a total that would overflow
// 64 bits fails the change-set instead of silently turning into a float.
//
// Deltas are summed per key in memory and written by flush(), once per key: one change-set moves
// few keys many times (every order of a day moves that day's row), so this turns a SELECT and an
// UPDATE per order and table into one of each per key and change-set. The caller flushes before
// it commits and discards after a rollback; get() sees what is pending.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>

#include "error.h"
#include "sqlite_db.h"

namespace ipcsync::mining {

using Key = std::variant<std::monostate, int64_t, std::string>;  // monostate = NULL

struct Totals {
  int64_t orders = 0;
  int64_t units = 0;
  int64_t revenueCents = 0;
};

// Adds `sign` (+1 or -1) times `delta` to `total`; InvalidArgument when it overflows 64 bits.
Expected<> accumulate(Totals& total, const Totals& delta, int sign);

class AggregateTable {
 public:
  // Prepares the statements for table `table` keyed by column `keyColumn` of connection `db`.
  static Expected<AggregateTable> prepare(Database& db, const std::string& table, const std::string& keyColumn);

  // Adds sign * delta to the row of `key` (pending until flush()). InvalidArgument when the
  // pending sum overflows 64 bits.
  Expected<> add(const Key& key, const Totals& delta, int sign);
  // The row of `key` with what is pending, zeros when there is none.
  Expected<Totals> get(const Key& key);
  // Writes what is pending: creates a key's row, updates it, or deletes it when its order count
  // drops to 0. On an error the caller must roll back (some rows may be written).
  Expected<> flush();
  // Forgets what is pending (the transaction it belonged to was rolled back).
  void discard() { m_pending.clear(); }

 private:
  Expected<Totals> stored(const Key& key);
  AggregateTable(std::string table, Statement select, Statement update, Statement insert, Statement remove)
      : m_table(std::move(table)), m_select(std::move(select)), m_update(std::move(update)),
        m_insert(std::move(insert)), m_remove(std::move(remove)) {}
  std::string m_table;
  Statement m_select, m_update, m_insert, m_remove;
  std::map<Key, Totals> m_pending;
};

}  // namespace ipcsync::mining
