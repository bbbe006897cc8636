#include "aggregate_table.h"

namespace ipcsync::mining {
namespace {

void bindKey(Statement& stmt, int index, const Key& key) {
  if (const auto* i = std::get_if<int64_t>(&key))
    stmt.bindInt(index, *i);
  else if (const auto* s = std::get_if<std::string>(&key))
    stmt.bindText(index, *s);
  else
    stmt.bindNull(index);
}

std::string describeKey(const Key& key) {
  if (const auto* i = std::get_if<int64_t>(&key)) return std::to_string(*i);
  if (const auto* s = std::get_if<std::string>(&key)) return "'" + *s + "'";
  return "NULL";
}

}  // namespace

Expected<> accumulate(Totals& total, const Totals& delta, int sign) {
  int64_t* fields[] = {&total.orders, &total.units, &total.revenueCents};
  const int64_t deltas[] = {delta.orders, delta.units, delta.revenueCents};
  Totals result = total;
  int64_t* out[] = {&result.orders, &result.units, &result.revenueCents};
  for (int i = 0; i < 3; ++i) {
    const bool overflow = sign > 0 ? __builtin_add_overflow(*fields[i], deltas[i], out[i])
                                   : __builtin_sub_overflow(*fields[i], deltas[i], out[i]);
    if (overflow)
      return fail(ErrorKind::InvalidArgument,
                  "a sales total would overflow a 64-bit integer; mining keeps exact integer sums, so quantities and "
                  "prices this large cannot be aggregated (see docs/plugins/mining.md, limits)");
  }
  total = result;
  return {};
}

Expected<AggregateTable> AggregateTable::prepare(Database& db, const std::string& table, const std::string& keyColumn) {
  auto select = db.prepare("SELECT order_count, units, revenue_cents FROM " + table + " WHERE " + keyColumn + " IS ?1");
  if (!select) return std::unexpected(select.error());
  auto update = db.prepare("UPDATE " + table + " SET order_count = ?2, units = ?3, revenue_cents = ?4 WHERE " +
                           keyColumn + " IS ?1");
  if (!update) return std::unexpected(update.error());
  auto insert = db.prepare("INSERT INTO " + table + " (" + keyColumn +
                           ", order_count, units, revenue_cents) VALUES (?1, ?2, ?3, ?4)");
  if (!insert) return std::unexpected(insert.error());
  auto remove = db.prepare("DELETE FROM " + table + " WHERE " + keyColumn + " IS ?1");
  if (!remove) return std::unexpected(remove.error());
  return AggregateTable(table, std::move(*select), std::move(*update), std::move(*insert), std::move(*remove));
}

Expected<Totals> AggregateTable::stored(const Key& key) {
  bindKey(m_select, 1, key);
  auto row = m_select.step();
  if (!row) return std::unexpected(row.error());
  Totals t;
  if (*row) {
    t = {m_select.columnInt(0), m_select.columnInt(1), m_select.columnInt(2)};
    m_select.reset();
  }
  return t;
}

Expected<Totals> AggregateTable::get(const Key& key) {
  auto current = stored(key);
  if (!current) return std::unexpected(current.error());
  if (auto it = m_pending.find(key); it != m_pending.end())
    if (auto ok = accumulate(*current, it->second, +1); !ok)
      return std::unexpected(withContext(ok.error(), m_table + " key " + describeKey(key)));
  return *current;
}

Expected<> AggregateTable::add(const Key& key, const Totals& delta, int sign) {
  if (auto ok = accumulate(m_pending[key], delta, sign); !ok)
    return std::unexpected(withContext(ok.error(), m_table + " key " + describeKey(key)));
  return {};
}

Expected<> AggregateTable::flush() {
  for (const auto& [key, delta] : m_pending) {
    if (delta.orders == 0 && delta.units == 0 && delta.revenueCents == 0) continue;
    auto current = stored(key);
    if (!current) return std::unexpected(current.error());
    const bool existed = current->orders != 0;
    Totals next = *current;
    if (auto ok = accumulate(next, delta, +1); !ok)
      return std::unexpected(withContext(ok.error(), m_table + " key " + describeKey(key)));
    if (next.orders < 0 || (next.orders == 0 && (next.units != 0 || next.revenueCents != 0)))
      return fail(ErrorKind::Internal, m_table + " key " + describeKey(key) + " would hold " +
                                           std::to_string(next.orders) + " orders, " + std::to_string(next.units) +
                                           " units and " + std::to_string(next.revenueCents) +
                                           " cents: the aggregates disagree with mining's copies (a bug; please report it)");
    Expected<> written;
    if (next.orders == 0) {
      if (!existed) continue;
      bindKey(m_remove, 1, key);
      written = m_remove.run();
    } else {
      Statement& stmt = existed ? m_update : m_insert;
      bindKey(stmt, 1, key);
      stmt.bindInt(2, next.orders);
      stmt.bindInt(3, next.units);
      stmt.bindInt(4, next.revenueCents);
      written = stmt.run();
    }
    if (!written) return written;
  }
  m_pending.clear();
  return {};
}

}  // namespace ipcsync::mining
