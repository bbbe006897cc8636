// The plugin's face to the host: its descriptor and the CRM schema it accepts, the calls that are
// trivial for a sink (start, poll, stop, acknowledge, snapshot), conflicts, the top-customers view,
// and orders that arrive before their account.
#include <sqlite3.h>

#include <fstream>
#include <sstream>

#include "changeset_pieces.h"
#include "mining_fixture.h"

namespace ipcsync::test {
namespace {

using MiningPluginTest = MiningTest;

Rows tableInfo(const std::string& createSql, const std::string& table) {
  sqlite3* db = nullptr;
  sqlite3_open(":memory:", &db);
  sqlite3_exec(db, createSql.c_str(), nullptr, nullptr, nullptr);
  Rows rows = queryRows(db, "PRAGMA table_info(" + table + ")");
  sqlite3_close(db);
  return rows;
}

TEST_F(MiningPluginTest, TheDescriptorAcceptsAccountsAndOrdersExactlyAsTheCrmSchemaDeclaresThem) {
  const auto& d = host->descriptor();
  EXPECT_STREQ(d.name, "mining");
  ASSERT_EQ(d.table_count, 2u);
  std::ifstream in(IPCSYNC_CRM_SCHEMA_SQL);
  std::stringstream schema;
  schema << in.rdbuf();
  for (size_t i = 0; i < d.table_count; ++i) {
    const auto& t = d.tables[i];
    EXPECT_EQ(t.flags, IPCSYNC_TABLE_ACCEPTS) << t.name;
    const Rows declared = tableInfo(t.schema_sql, t.name);
    EXPECT_FALSE(declared.empty()) << t.name;
    EXPECT_EQ(declared, tableInfo(schema.str(), t.name)) << t.name << " differs from plugins/crm/schema.sql";
  }
  EXPECT_STREQ(d.tables[0].name, "accounts");
  EXPECT_STREQ(d.tables[1].name, "orders");
}

TEST_F(MiningPluginTest, ItProducesNothingAndSaysSo) {
  EXPECT_EQ(host->poll(), IPCSYNC_EINVAL);
  EXPECT_NE(host->lastError().find("poll() called before start()"), std::string::npos) << host->lastError();
  ASSERT_EQ(host->start(0), IPCSYNC_OK) << host->lastError();
  EXPECT_EQ(host->start(0), IPCSYNC_EINVAL);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(host->poll(), IPCSYNC_OK) << host->lastError();
  EXPECT_EQ(host->acknowledge(0), IPCSYNC_OK);
  EXPECT_EQ(host->acknowledge(4), IPCSYNC_EINVAL);
  EXPECT_NE(host->lastError().find("mining emits no change-sets"), std::string::npos) << host->lastError();
  uint64_t asOf = 77;
  EXPECT_EQ(host->snapshot("orders", "r", 1 << 20, asOf), IPCSYNC_EUNSUPPORTED);
  EXPECT_NE(host->lastError().find("snapshot of table 'orders'"), std::string::npos) << host->lastError();
  EXPECT_NE(host->lastError().find("(crm)"), std::string::npos) << host->lastError();
  EXPECT_EQ(host->stop(), IPCSYNC_OK);
  EXPECT_EQ(host->poll(), IPCSYNC_EINVAL);
  EXPECT_TRUE(host->emitted.empty());
  EXPECT_TRUE(host->snapshotPieces.empty());
}

TEST_F(MiningPluginTest, OrdersBeforeTheirAccountCountUnderNoRegionUntilItArrives) {
  CrmSource source;
  auto step = [&](uint64_t sequence, const std::function<void()>& body) {
    applyOk(source.capture(body), "r", sequence);
    expectMatchesSource(source, "after sequence " + std::to_string(sequence));
  };
  step(1, [&] {
    source.run("INSERT INTO orders VALUES (1, 7, 'widget', 3, 250, 0, 0)");
    source.run("INSERT INTO orders VALUES (2, 7, 'gadget', 1, 1000, 0, 0)");
  });
  EXPECT_EQ(miningRows("SELECT * FROM sales_by_region"),
            (Rows{{"NULL", "i:2", "i:4", "i:1750"}}));
  step(2, [&] { source.run("INSERT INTO accounts VALUES (7, 'Acme', 'east', NULL, 0)"); });
  EXPECT_EQ(miningRows("SELECT * FROM sales_by_region"), (Rows{{"t:east", "i:2", "i:4", "i:1750"}}));
  step(3, [&] { source.run("UPDATE accounts SET region = 'west' WHERE id = 7"); });
  EXPECT_EQ(miningRows("SELECT * FROM sales_by_region"), (Rows{{"t:west", "i:2", "i:4", "i:1750"}}));
  step(4, [&] { source.run("UPDATE orders SET quantity = 5, account_id = 8 WHERE id = 1"); });
  EXPECT_EQ(miningRows("SELECT * FROM sales_by_region ORDER BY 1"),
            (Rows{{"NULL", "i:1", "i:5", "i:1250"}, {"t:west", "i:1", "i:1", "i:1000"}}));
  step(5, [&] { source.run("DELETE FROM accounts WHERE id = 7"); });
  EXPECT_EQ(miningRows("SELECT * FROM sales_by_region"), (Rows{{"NULL", "i:2", "i:6", "i:2250"}}));
  step(6, [&] { source.run("DELETE FROM orders"); });
  EXPECT_TRUE(miningRows("SELECT * FROM sales_by_region").empty());
  EXPECT_TRUE(miningRows("SELECT * FROM sales_by_day").empty());
}

TEST_F(MiningPluginTest, TheTopCustomersViewListsAsManyAsTheSettingSays) {
  host = makeHost({{"top_customers", "3"}});
  CrmSource source;
  applyOk(source.capture([&] {
    for (int64_t id = 1; id <= 8; ++id) {
      source.run("INSERT INTO accounts VALUES (?1, ?2, 'north', NULL, 0)", {id, "customer " + std::to_string(id)});
      source.run("INSERT INTO orders VALUES (?1, ?1, 'widget', ?2, 100, 0, 0)", {id, (id * 37) % 11});
    }
  }),
          "r", 1);
  EXPECT_EQ(miningRows("SELECT count(*) FROM top_customers"), (Rows{{"i:3"}}));
  expectMatchesSource(source, "with top_customers = 3", 3);
  host = makeHost({{"top_customers", "5"}});  // a restart with a new setting redefines the view
  expectMatchesSource(source, "with top_customers = 5", 5);
}

TEST_F(MiningPluginTest, ConflictsAreResolvedWithTheSourceWinningAndCounted) {
  CrmSource source;
  applyOk(source.capture([&] {
    source.run("INSERT INTO accounts VALUES (1, 'Acme', 'north', NULL, 0)");
    source.run("INSERT INTO orders VALUES (1, 1, 'widget', 2, 100, 0, 0)");
  }),
          "r", 1);
  const std::vector<bool> orderKey = {true, false, false, false, false, false, false};
  ChangesetWriter w;
  // An insert of a row mining has: it overwrites ("conflict").
  w.add("orders", orderKey, SQLITE_INSERT, {},
        {int64_t{1}, int64_t{1}, std::string("widget"), int64_t{9}, int64_t{100}, int64_t{0}, int64_t{0}});
  // An update whose old values differ from mining's copy: applied ("data").
  w.add("orders", orderKey, SQLITE_UPDATE,
        {int64_t{1}, Undefined{}, Undefined{}, int64_t{4}, Undefined{}, Undefined{}, Undefined{}},
        {Undefined{}, Undefined{}, Undefined{}, int64_t{10}, Undefined{}, Undefined{}, Undefined{}});
  // An update and a delete of rows mining does not have: skipped ("notfound").
  w.add("orders", orderKey, SQLITE_UPDATE,
        {int64_t{42}, Undefined{}, Undefined{}, int64_t{1}, Undefined{}, Undefined{}, Undefined{}},
        {Undefined{}, Undefined{}, Undefined{}, int64_t{2}, Undefined{}, Undefined{}, Undefined{}});
  w.add("orders", orderKey, SQLITE_DELETE,
        {int64_t{43}, int64_t{1}, std::string("w"), int64_t{1}, int64_t{1}, int64_t{0}, int64_t{0}}, {});
  ipcsync_apply_result result = applyOk(w.bytes(), "r", 2);
  EXPECT_EQ(result.status, IPCSYNC_CONFLICTS);
  EXPECT_EQ(result.conflicts, 4u);
  EXPECT_EQ(result.changes_applied, 2u);
  EXPECT_EQ(miningRows("SELECT quantity FROM orders WHERE id = 1"), (Rows{{"i:10"}}));
  EXPECT_EQ(miningRows("SELECT count(*) FROM orders"), (Rows{{"i:1"}}));
  // The aggregates still equal a GROUP BY over mining's own copies.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(databasePath().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  for (const auto& q : aggregateQueries()) EXPECT_EQ(queryRows(db, q.fromMining), queryRows(db, q.fromSource)) << q.name;
  sqlite3_close(db);
  bool warned = false;
  for (const auto& [level, line] : host->logs)
    warned = warned || (level == IPCSYNC_LOG_WARN && line.find("4 conflict(s)") != std::string::npos);
  EXPECT_TRUE(warned);
  uint64_t last = 0;
  EXPECT_EQ(host->lastApplied("r", last), IPCSYNC_OK);
  EXPECT_EQ(last, 2u);
}

TEST_F(MiningPluginTest, AnEmptyChangesetStillAdvancesTheRoute) {
  CrmSource source;
  const Bytes empty = source.capture([&] {
    source.run("INSERT INTO orders VALUES (1, 1, 'widget', 2, 100, 0, 0)");
    source.run("DELETE FROM orders WHERE id = 1");
  });
  EXPECT_TRUE(empty.empty());
  ipcsync_apply_result result = applyOk(empty, "r", 1);
  EXPECT_EQ(result.status, IPCSYNC_APPLIED);
  EXPECT_EQ(result.changes_applied, 0u);
  uint64_t last = 0;
  EXPECT_EQ(host->lastApplied("r", last), IPCSYNC_OK);
  EXPECT_EQ(last, 1u);
}

}  // namespace
}  // namespace ipcsync::test
