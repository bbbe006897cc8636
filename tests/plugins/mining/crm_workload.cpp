#include "crm_workload.h"

#include <array>
#include <iterator>

namespace ipcsync::test {

int64_t CrmWorkload::uniform(int64_t low, int64_t high) {
  return std::uniform_int_distribution<int64_t>(low, high)(m_random);
}

bool CrmWorkload::chance(double p) { return std::bernoulli_distribution(p)(m_random); }

int64_t CrmWorkload::pick(const std::set<int64_t>& ids) {
  auto it = ids.begin();
  std::advance(it, uniform(0, static_cast<int64_t>(ids.size()) - 1));
  return *it;
}

std::string CrmWorkload::region() {
  static const std::array<const char*, 6> regions = {"north", "south", "east", "west", "", "North"};
  return regions[static_cast<size_t>(chance(0.05) ? uniform(4, 5) : uniform(0, 3))];
}

std::string CrmWorkload::product() {
  static const std::array<const char*, 7> products = {"widget", "gadget", "sprocket", "gizmo",
                                                      "doohickey", "thingamajig", "w\xc3\xa4lzlager"};
  return products[static_cast<size_t>(uniform(0, 6))];
}

int64_t CrmWorkload::orderedAt() {
  constexpr int64_t kDay = 86'400'000'000;
  const int64_t base = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z
  const double r = std::uniform_real_distribution<double>(0, 1)(m_random);
  if (r < 0.02) return uniform(-3, 3);                                   // around the epoch, both sides
  if (r < 0.04) return -uniform(1, 40) * kDay + uniform(-5, 5);          // before 1970
  if (r < 0.05) return 400'000'000'000'000'000 + uniform(0, 1000);       // past year 9999: no date
  if (r < 0.10) return base + uniform(0, 30) * kDay + (chance(0.5) ? 0 : kDay - 1);  // day edges
  return base + uniform(0, 60 * kDay);
}

int64_t CrmWorkload::accountForOrder() {
  const double r = std::uniform_real_distribution<double>(0, 1)(m_random);
  if (r < 0.15 || m_accounts.empty()) return m_nextAccount + uniform(0, 3);  // before its account exists
  if (r < 0.22 && !m_deletedAccounts.empty()) return pick(m_deletedAccounts);
  return pick(m_accounts);
}

void CrmWorkload::insertAccount() {
  int64_t id;
  if (!m_deletedAccounts.empty() && chance(0.2)) {
    id = pick(m_deletedAccounts);
    m_deletedAccounts.erase(id);
  } else {
    id = m_nextAccount++;
  }
  m_source.run("INSERT INTO accounts (id, name, region, industry, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
               {id, "account " + std::to_string(id), region(), std::string("retail"), m_clock++});
  m_accounts.insert(id);
}

void CrmWorkload::updateAccount() {
  if (m_accounts.empty()) return insertAccount();
  const int64_t id = pick(m_accounts);
  if (chance(0.7))
    m_source.run("UPDATE accounts SET region = ?2, updated_at = ?3 WHERE id = ?1", {id, region(), m_clock++});
  else if (chance(0.5))
    m_source.run("UPDATE accounts SET name = ?2, updated_at = ?3 WHERE id = ?1",
                 {id, "renamed " + std::to_string(uniform(0, 1000)), m_clock++});
  else
    m_source.run("UPDATE accounts SET industry = ?2, updated_at = ?3 WHERE id = ?1",
                 {id, std::string("industry ") + std::to_string(uniform(0, 9)), m_clock++});
}

void CrmWorkload::deleteAccount() {
  if (m_accounts.empty()) return insertAccount();
  const int64_t id = pick(m_accounts);
  m_source.run("DELETE FROM accounts WHERE id = ?1", {id});
  m_accounts.erase(id);
  m_deletedAccounts.insert(id);
}

void CrmWorkload::insertOrder() {
  const int64_t id = m_nextOrder++;
  m_source.run(
      "INSERT INTO orders (id, account_id, product, quantity, unit_price_cents, ordered_at, updated_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
      {id, accountForOrder(), product(), uniform(0, 50), uniform(0, 200'000), orderedAt(), m_clock++});
  m_orders.insert(id);
}

void CrmWorkload::updateOrder() {
  if (m_orders.empty()) return insertOrder();
  const int64_t id = pick(m_orders);
  std::string set;
  std::vector<Param> params = {id};
  auto column = [&](const char* name, Param value) {
    params.push_back(std::move(value));
    set += std::string(set.empty() ? "" : ", ") + name + " = ?" + std::to_string(params.size());
  };
  if (chance(0.4)) column("quantity", uniform(0, 50));
  if (chance(0.3)) column("unit_price_cents", uniform(0, 200'000));
  if (chance(0.2)) column("product", product());
  if (chance(0.2)) column("account_id", accountForOrder());
  if (chance(0.2)) column("ordered_at", orderedAt());
  column("updated_at", m_clock++);
  m_source.run("UPDATE orders SET " + set + " WHERE id = ?1", params);
}

void CrmWorkload::deleteOrder() {
  if (m_orders.empty()) return insertOrder();
  const int64_t id = pick(m_orders);
  m_source.run("DELETE FROM orders WHERE id = ?1", {id});
  m_orders.erase(id);
}

void CrmWorkload::step() {
  ++m_operations;
  const int64_t r = uniform(0, 99);
  if (r < 14) return insertAccount();
  if (r < 24) return updateAccount();
  if (r < 28) return deleteAccount();
  if (r < 62) return insertOrder();
  if (r < 88) return updateOrder();
  return deleteOrder();
}

}  // namespace ipcsync::test
