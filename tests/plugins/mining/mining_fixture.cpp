#include "mining_fixture.h"

#include <sqlite3.h>

#include <stdexcept>

namespace ipcsync::test {

ipcsync_envelope envelopeFor(const Bytes& data, const char* route, uint64_t sequence, uint32_t index, uint32_t count) {
  ipcsync_envelope e{};
  e.struct_size = sizeof e;
  e.origin = "crm";
  e.sequence = sequence;
  e.route = route;
  e.commit_time_us = 1'700'000'000'000'000 + static_cast<int64_t>(sequence);
  e.piece_index = index;
  e.piece_count = count;
  e.data = data.data();
  e.size = data.size();
  e.conflict_policy = IPCSYNC_CONFLICT_SOURCE_WINS;
  return e;
}

#define IPCSYNC_DAY_OF(col) "date(" col " / 1000000 - (" col " % 1000000 < 0), 'unixepoch')"

const std::vector<AggregateQuery>& aggregateQueries() {
  static const std::vector<AggregateQuery> queries = {
      {"sales_by_region",
       "SELECT a.region, count(*), sum(o.quantity), sum(o.quantity * o.unit_price_cents) "
       "FROM orders o LEFT JOIN accounts a ON a.id = o.account_id GROUP BY a.region ORDER BY 1",
       "SELECT region, order_count, units, revenue_cents FROM sales_by_region ORDER BY 1"},
      {"sales_by_product",
       "SELECT product, count(*), sum(quantity), sum(quantity * unit_price_cents) FROM orders GROUP BY product "
       "ORDER BY 1",
       "SELECT product, order_count, units, revenue_cents FROM sales_by_product ORDER BY 1"},
      {"sales_by_customer",
       "SELECT account_id, count(*), sum(quantity), sum(quantity * unit_price_cents) FROM orders "
       "GROUP BY account_id ORDER BY 1",
       "SELECT account_id, order_count, units, revenue_cents FROM sales_by_customer ORDER BY 1"},
      {"sales_by_day",
       "SELECT " IPCSYNC_DAY_OF("ordered_at") ", count(*), sum(quantity), sum(quantity * unit_price_cents) "
       "FROM orders GROUP BY 1 ORDER BY 1",
       "SELECT day, order_count, units, revenue_cents FROM sales_by_day ORDER BY 1"},
      {"accounts copy", "SELECT id, name, region FROM accounts ORDER BY id",
       "SELECT id, name, region FROM accounts ORDER BY id"},
      {"orders copy",
       "SELECT id, account_id, product, quantity, unit_price_cents, ordered_at FROM orders ORDER BY id",
       "SELECT id, account_id, product, quantity, unit_price_cents, ordered_at FROM orders ORDER BY id"},
  };
  return queries;
}

std::string topCustomersFromSource(int64_t limit) {
  return "SELECT o.account_id, a.name, a.region, count(*), sum(o.quantity), sum(o.quantity * o.unit_price_cents) "
         "FROM orders o LEFT JOIN accounts a ON a.id = o.account_id GROUP BY o.account_id "
         "ORDER BY 6 DESC, 1 ASC LIMIT " +
         std::to_string(limit);
}

void MiningTest::SetUp() { host = makeHost(); }

std::unique_ptr<TestHost> MiningTest::makeHost(std::map<std::string, std::string> settings) {
  auto h = std::make_unique<TestHost>(IPCSYNC_MINING_PLUGIN, std::move(settings), dataDir());
  const int status = h->create();
  EXPECT_EQ(status, IPCSYNC_OK) << h->lastError();
  return h;
}

int MiningTest::apply(const Bytes& data, const char* route, uint64_t sequence, ipcsync_apply_result& result) {
  return host->apply(envelopeFor(data, route, sequence), result);
}

ipcsync_apply_result MiningTest::applyOk(const Bytes& data, const char* route, uint64_t sequence) {
  ipcsync_apply_result result{};
  EXPECT_EQ(apply(data, route, sequence, result), IPCSYNC_OK) << host->lastError();
  return result;
}

Rows MiningTest::miningRows(const std::string& sql) const {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(databasePath().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + databasePath().string());
  }
  try {
    Rows rows = queryRows(db, sql);
    sqlite3_close(db);
    return rows;
  } catch (...) {
    sqlite3_close(db);
    throw;
  }
}

void MiningTest::expectMatchesSource(const CrmSource& source, const std::string& context, int64_t topCustomers) const {
  for (const auto& q : aggregateQueries())
    ASSERT_EQ(miningRows(q.fromMining), source.query(q.fromSource)) << q.name << " differs " << context;
  ASSERT_EQ(miningRows("SELECT * FROM top_customers"), source.query(topCustomersFromSource(topCustomers)))
      << "top_customers differs " << context;
}

Rows MiningTest::everything() const {
  Rows all;
  for (const char* table : {"accounts", "orders", "sales_by_region", "sales_by_product", "sales_by_customer",
                            "sales_by_day", "applied_routes"}) {
    all.push_back({std::string("table ") + table});
    for (auto& row : miningRows(std::string("SELECT * FROM ") + table + " ORDER BY 1")) all.push_back(row);
  }
  return all;
}

}  // namespace ipcsync::test
