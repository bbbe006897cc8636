#include "sales_ledger.h"

#include <map>

#include "mining_schema.h"

namespace ipcsync::mining {

const char* conflictKind(Outcome o) {
  switch (o) {
    case Outcome::Applied: return "none";
    case Outcome::ReplacedExisting: return "conflict";
    case Outcome::OldValuesDiffered: return "data";
    case Outcome::NotFound: return "notfound";
  }
  return "?";
}

struct SalesLedger::Statements {
  Statement findAccount, putAccount, deleteAccount;
  Statement findOrder, putOrder, deleteOrder;
  Statement dayOf;
  AggregateTable byRegion, byProduct, byCustomer, byDay;
  // The day (kDaySql's answer) of each whole UTC day seen, by days since the epoch: orders of one
  // change-set mostly share a few days, and asking SQLite for each costs a statement per order.
  std::map<int64_t, Key> days;
};

SalesLedger::SalesLedger(std::unique_ptr<Statements> s) : m_s(std::move(s)) {}
SalesLedger::~SalesLedger() = default;
SalesLedger::SalesLedger(SalesLedger&&) noexcept = default;
SalesLedger& SalesLedger::operator=(SalesLedger&&) noexcept = default;

Expected<SalesLedger> SalesLedger::prepare(Database& db) {
  const char* sql[] = {
      "SELECT name, region FROM accounts WHERE id = ?1",
      "INSERT OR REPLACE INTO accounts (id, name, region) VALUES (?1, ?2, ?3)",
      "DELETE FROM accounts WHERE id = ?1",
      "SELECT account_id, product, quantity, unit_price_cents, ordered_at FROM orders WHERE id = ?1",
      "INSERT OR REPLACE INTO orders (id, account_id, product, quantity, unit_price_cents, ordered_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      "DELETE FROM orders WHERE id = ?1",
      kDaySql,
  };
  std::vector<Statement> stmts;
  for (const char* s : sql) {
    auto stmt = db.prepare(s);
    if (!stmt) return std::unexpected(stmt.error());
    stmts.push_back(std::move(*stmt));
  }
  auto region = AggregateTable::prepare(db, "sales_by_region", "region");
  if (!region) return std::unexpected(region.error());
  auto product = AggregateTable::prepare(db, "sales_by_product", "product");
  if (!product) return std::unexpected(product.error());
  auto customer = AggregateTable::prepare(db, "sales_by_customer", "account_id");
  if (!customer) return std::unexpected(customer.error());
  auto day = AggregateTable::prepare(db, "sales_by_day", "day");
  if (!day) return std::unexpected(day.error());
  return SalesLedger(std::unique_ptr<Statements>(new Statements{
      std::move(stmts[0]), std::move(stmts[1]), std::move(stmts[2]), std::move(stmts[3]), std::move(stmts[4]),
      std::move(stmts[5]), std::move(stmts[6]), std::move(*region), std::move(*product), std::move(*customer),
      std::move(*day)}));
}

Expected<Outcome> SalesLedger::apply(const Change& change, CrmTable table) {
  return table == CrmTable::Accounts ? applyAccount(change) : applyOrder(change);
}

Expected<> SalesLedger::flush() {
  for (AggregateTable* t : {&m_s->byRegion, &m_s->byProduct, &m_s->byCustomer, &m_s->byDay})
    if (auto ok = t->flush(); !ok) return ok;
  return {};
}

void SalesLedger::discard() {
  for (AggregateTable* t : {&m_s->byRegion, &m_s->byProduct, &m_s->byCustomer, &m_s->byDay}) t->discard();
}

Expected<std::optional<AccountRow>> SalesLedger::findAccount(int64_t id) {
  Statement& q = m_s->findAccount;
  q.bindInt(1, id);
  auto row = q.step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::optional<AccountRow>{};
  AccountRow a{id, q.columnText(0), q.columnText(1)};
  q.reset();
  return std::optional<AccountRow>{std::move(a)};
}

Expected<std::optional<OrderRow>> SalesLedger::findOrder(int64_t id) {
  Statement& q = m_s->findOrder;
  q.bindInt(1, id);
  auto row = q.step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return std::optional<OrderRow>{};
  OrderRow o{id, q.columnInt(0), q.columnText(1), q.columnInt(2), q.columnInt(3), q.columnInt(4)};
  q.reset();
  return std::optional<OrderRow>{std::move(o)};
}

Expected<> SalesLedger::regionOf(int64_t accountId, Key& region) {
  auto account = findAccount(accountId);
  if (!account) return std::unexpected(account.error());
  if (*account)
    region = (*account)->region;
  else
    region = std::monostate{};
  return {};
}

Expected<> SalesLedger::contribute(const OrderRow& order, int sign) {
  Totals delta{1, order.quantity, 0};
  if (__builtin_mul_overflow(order.quantity, order.unitPriceCents, &delta.revenueCents))
    return fail(ErrorKind::InvalidArgument,
                "orders row id=" + std::to_string(order.id) + ": quantity " + std::to_string(order.quantity) +
                    " * unit_price_cents " + std::to_string(order.unitPriceCents) +
                    " overflows a 64-bit integer; mining cannot compute its revenue exactly; correct the source row");
  Key region;
  if (auto ok = regionOf(order.accountId, region); !ok) return ok;
  // kDaySql floors the microseconds to seconds; the date depends only on the whole day.
  const int64_t seconds = order.orderedAt / 1000000 - (order.orderedAt % 1000000 < 0);
  const int64_t dayNumber = seconds / 86400 - (seconds % 86400 < 0);
  Key dayKey;
  if (auto known = m_s->days.find(dayNumber); known != m_s->days.end()) {
    dayKey = known->second;
  } else {
    Statement& day = m_s->dayOf;
    day.bindInt(1, order.orderedAt);
    auto row = day.step();
    if (!row) return std::unexpected(row.error());
    if (*row) {
      if (!day.columnIsNull(0)) dayKey = day.columnText(0);
      day.reset();
    }
    if (m_s->days.size() >= 4096) m_s->days.clear();
    m_s->days.emplace(dayNumber, dayKey);
  }
  if (auto ok = m_s->byRegion.add(region, delta, sign); !ok) return ok;
  if (auto ok = m_s->byProduct.add(Key{order.product}, delta, sign); !ok) return ok;
  if (auto ok = m_s->byCustomer.add(Key{order.accountId}, delta, sign); !ok) return ok;
  return m_s->byDay.add(dayKey, delta, sign);
}

Expected<> SalesLedger::moveCustomer(int64_t accountId, const Key& from, const Key& to) {
  if (from == to) return {};
  auto totals = m_s->byCustomer.get(Key{accountId});
  if (!totals) return std::unexpected(totals.error());
  if (totals->orders == 0) return {};
  if (auto ok = m_s->byRegion.add(from, *totals, -1); !ok) return ok;
  return m_s->byRegion.add(to, *totals, +1);
}

Expected<Outcome> SalesLedger::applyAccount(const Change& change) {
  auto id = primaryKeyOf(change);
  if (!id) return std::unexpected(id.error());
  auto existing = findAccount(*id);
  if (!existing) return std::unexpected(existing.error());
  const Key oldRegion = *existing ? Key{(*existing)->region} : Key{};

  if (change.op == Op::Delete) {
    if (!*existing) return Outcome::NotFound;
    const bool same = matches(**existing, change.oldValues);
    m_s->deleteAccount.bindInt(1, *id);
    if (auto ok = m_s->deleteAccount.run(); !ok) return std::unexpected(ok.error());
    if (auto ok = moveCustomer(*id, oldRegion, Key{}); !ok) return std::unexpected(ok.error());
    return same ? Outcome::Applied : Outcome::OldValuesDiffered;
  }

  AccountRow next;
  Outcome outcome = Outcome::Applied;
  if (change.op == Op::Insert) {
    auto row = accountFrom(change, change.newValues);
    if (!row) return std::unexpected(row.error());
    next = std::move(*row);
    if (*existing) outcome = Outcome::ReplacedExisting;
  } else {
    if (!*existing) return Outcome::NotFound;
    next = **existing;
    if (!matches(next, change.oldValues)) outcome = Outcome::OldValuesDiffered;
    if (auto ok = applyUpdate(change, next); !ok) return std::unexpected(ok.error());
  }
  Statement& put = m_s->putAccount;
  put.bindInt(1, next.id);
  put.bindText(2, next.name);
  put.bindText(3, next.region);
  if (auto ok = put.run(); !ok) return std::unexpected(ok.error());
  if (auto ok = moveCustomer(*id, oldRegion, Key{next.region}); !ok) return std::unexpected(ok.error());
  return outcome;
}

Expected<Outcome> SalesLedger::applyOrder(const Change& change) {
  auto id = primaryKeyOf(change);
  if (!id) return std::unexpected(id.error());
  auto existing = findOrder(*id);
  if (!existing) return std::unexpected(existing.error());

  OrderRow next;
  Outcome outcome = Outcome::Applied;
  if (change.op == Op::Delete) {
    if (!*existing) return Outcome::NotFound;
    if (!matches(**existing, change.oldValues)) outcome = Outcome::OldValuesDiffered;
  } else if (change.op == Op::Insert) {
    auto row = orderFrom(change, change.newValues);
    if (!row) return std::unexpected(row.error());
    next = std::move(*row);
    if (*existing) outcome = Outcome::ReplacedExisting;
  } else {
    if (!*existing) return Outcome::NotFound;
    next = **existing;
    if (!matches(next, change.oldValues)) outcome = Outcome::OldValuesDiffered;
    if (auto ok = applyUpdate(change, next); !ok) return std::unexpected(ok.error());
  }

  if (*existing)
    if (auto ok = contribute(**existing, -1); !ok) return std::unexpected(ok.error());
  if (change.op == Op::Delete) {
    m_s->deleteOrder.bindInt(1, *id);
    if (auto ok = m_s->deleteOrder.run(); !ok) return std::unexpected(ok.error());
    return outcome;
  }
  if (auto ok = contribute(next, +1); !ok) return std::unexpected(ok.error());
  Statement& put = m_s->putOrder;
  put.bindInt(1, next.id);
  put.bindInt(2, next.accountId);
  put.bindText(3, next.product);
  put.bindInt(4, next.quantity);
  put.bindInt(5, next.unitPriceCents);
  put.bindInt(6, next.orderedAt);
  if (auto ok = put.run(); !ok) return std::unexpected(ok.error());
  return outcome;
}

}  // namespace ipcsync::mining
