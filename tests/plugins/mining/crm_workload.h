// A seeded random workload on a CrmSource: inserts, updates and deletes of accounts and orders,
// including region moves, orders placed before their account exists, account deletes that orphan
// orders, re-used ids, dates before 1970 and beyond SQLite's date range.
#pragma once

#include <cstdint>
#include <random>
#include <set>

#include "crm_source.h"

namespace ipcsync::test {

class CrmWorkload {
 public:
  CrmWorkload(CrmSource& source, uint64_t seed) : m_source(source), m_random(seed) {}

  // Runs one random operation on the source (inside whatever transaction is open).
  void step();
  uint64_t operations() const { return m_operations; }

 private:
  int64_t pick(const std::set<int64_t>& ids);
  int64_t uniform(int64_t low, int64_t high);
  bool chance(double p);
  std::string region();
  std::string product();
  int64_t orderedAt();
  int64_t accountForOrder();

  void insertAccount();
  void updateAccount();
  void deleteAccount();
  void insertOrder();
  void updateOrder();
  void deleteOrder();

  CrmSource& m_source;
  std::mt19937_64 m_random;
  std::set<int64_t> m_accounts, m_orders, m_deletedAccounts;
  int64_t m_nextAccount = 1, m_nextOrder = 1, m_clock = 1;
  uint64_t m_operations = 0;
};

}  // namespace ipcsync::test
