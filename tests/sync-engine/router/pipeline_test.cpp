// Batched delivery (docs/design/sync-engine.md, "Delivery and numbering"): a backlog of small
// change-sets travels as few Applies, each carrying several consecutive journal entries as one
// transaction recorded under the last entry's sequence. These tests build such backlogs (the
// subscriber's host is absent while the source writes) and check what batching must not change:
// order, exactly-once across a killed subscriber, and one dead letter for one poison change-set.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "ipcsync/sync/changeset_transform.h"
#include "ipcsync/sync/journal.h"
#include "sync_fixture.h"

namespace ipcsync::sync::test {
namespace {

using namespace std::chrono_literals;

std::int64_t number(const std::filesystem::path& db, const std::string& sql) {
  const auto text = query(db, sql);
  return text.empty() || text.front() == '(' ? -1 : std::stoll(text);
}

// Waits until crm's change log is empty: everything written so far is journaled (and
// acknowledged), so the next write becomes a journal entry of its own.
bool journaled(const std::filesystem::path& crm) {
  return eventually([&] { return number(crm, "SELECT count(*) FROM _ipcsync_changes") == 0; }, 30s);
}

// Rows whose final values depend on the order their updates are applied in: every transaction
// sets the quantity of a few orders to its own number, and some delete and re-insert an order.
// With `separately`, each transaction is journaled before the next is written, so each becomes
// a journal entry of its own (crm would otherwise cut several into one change-set).
void orderedWrites(const std::filesystem::path& crm, int transactions, int firstTransaction, bool separately = false) {
  for (int t = firstTransaction; t < firstTransaction + transactions; ++t) {
    if (separately) {
      const auto deadline = std::chrono::steady_clock::now() + 30s;
      while (number(crm, "SELECT count(*) FROM _ipcsync_changes") != 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    }
    std::string sql = "BEGIN;";
    for (int k = 0; k < 3; ++k) {
      const int id = 1 + (t * 7 + k * 13) % 40;
      sql += "UPDATE orders SET quantity = " + std::to_string(t) + ", updated_at = updated_at + 1 WHERE id = " +
             std::to_string(id) + ";";
    }
    if (t % 5 == 0) {
      const int id = 1 + t % 40;
      sql += "DELETE FROM orders WHERE id = " + std::to_string(id) + ";INSERT INTO orders VALUES(" + std::to_string(id) +
             ",1,'widget'," + std::to_string(t) + ",100,0,1);";
    }
    exec(crm, sql + "COMMIT;");
  }
}

// Every row of the CRM tables, for comparing replicas.
std::string rowsOf(const std::filesystem::path& db) {
  std::string out;
  for (const char* t : {"accounts", "orders"}) out += std::string(t) + ":\n" + query(db, std::string("SELECT * FROM ") + t + " ORDER BY id");
  return out;
}

// Mining's aggregates beside the GROUP BY over the CRM file: equal when mining applied every
// change exactly once.
const char* const kGroupBys[][2] = {
    {"SELECT a.region, count(*), sum(o.quantity), sum(o.quantity * o.unit_price_cents) FROM orders o LEFT JOIN accounts "
     "a ON a.id = o.account_id GROUP BY a.region ORDER BY 1",
     "SELECT region, order_count, units, revenue_cents FROM sales_by_region ORDER BY 1"},
    {"SELECT product, count(*), sum(quantity), sum(quantity * unit_price_cents) FROM orders GROUP BY product ORDER BY 1",
     "SELECT product, order_count, units, revenue_cents FROM sales_by_product ORDER BY 1"},
    {"SELECT account_id, count(*), sum(quantity), sum(quantity * unit_price_cents) FROM orders GROUP BY account_id "
     "ORDER BY 1",
     "SELECT account_id, order_count, units, revenue_cents FROM sales_by_customer ORDER BY 1"},
};
bool miningAgrees(const std::filesystem::path& crm, const std::filesystem::path& mining) {
  for (const auto& q : kGroupBys)
    if (query(crm, q[0]) != query(mining, q[1])) return false;
  return true;
}
std::string miningBeside(const std::filesystem::path& crm, const std::filesystem::path& mining) {
  std::string out;
  for (const auto& q : kGroupBys) out += "crm:\n" + query(crm, q[0]) + "mining:\n" + query(mining, q[1]);
  return out;
}

class PipelineTest : public SyncE2eTest {};

// Which routes may skip decoding and encoding: only one that carries every table the entry
// touches as it is.
TEST(PassThroughTest, OnlyTablesCarriedAsTheyAreMayPassThrough) {
  SchemaMap both;
  for (const char* sql : {"CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT, region TEXT)",
                          "CREATE TABLE orders (id INTEGER PRIMARY KEY, quantity INTEGER)"}) {
    const std::string name = std::string(sql).substr(13, std::string(sql).find(' ', 13) - 13);
    auto schema = schemaFromSql(name, sql);
    ASSERT_TRUE(schema) << schema.error();
    schema->produces = schema->accepts = true;
    both[name] = *schema;
  }
  const std::vector<std::string> accounts{"accounts"}, orders{"orders"}, bothTables{"accounts", "orders"};
  auto plain = ChangesetTransform::create(std::vector<TableRule>{}, both, both);
  ASSERT_TRUE(plain) << plain.error();
  EXPECT_TRUE(plain->passesThrough(bothTables));
  EXPECT_FALSE(plain->passesThrough(std::vector<std::string>{}));
  EXPECT_FALSE(plain->passesThrough(std::vector<std::string>{"contacts"}));
  for (const TableRule& rule : {TableRule{.table = "accounts", .excludeColumns = {"region"}},
                                TableRule{.table = "accounts", .includeColumns = {"id", "name"}},
                                TableRule{.table = "accounts", .rowFilter = "region = 'north'"}}) {
    auto t = ChangesetTransform::create(std::vector<TableRule>{rule, TableRule{.table = "orders"}}, both, both);
    ASSERT_TRUE(t) << t.error();
    EXPECT_FALSE(t->passesThrough(accounts));
    EXPECT_FALSE(t->passesThrough(bothTables));
    EXPECT_TRUE(t->passesThrough(orders));
  }
  auto onlyOrders = ChangesetTransform::create(std::vector<TableRule>{TableRule{.table = "orders"}}, both, both);
  ASSERT_TRUE(onlyOrders) << onlyOrders.error();
  EXPECT_FALSE(onlyOrders->passesThrough(bothTables)) << "accounts must be dropped, which needs decoding";
}

TEST_F(PipelineTest, BatchedBacklogKeepsOrderAndAppliesEveryChangeOnceAcrossAKilledSubscriber) {
  auto crm = startHost("crm", "crm");
  auto sync = startSync(R"([{"name":"crm-crm2","from":"crm","to":["crm2"]},
                            {"name":"crm-mining","from":"crm","to":["mining"],"tables":["accounts","orders"]}])");
  exec(db("crm"), "INSERT INTO accounts VALUES(1,'a','north',NULL,1);");
  std::string seed = "BEGIN;";
  for (int id = 1; id <= 40; ++id) seed += "INSERT INTO orders VALUES(" + std::to_string(id) + ",1,'widget',1,100,0,1);";
  exec(db("crm"), seed + "COMMIT;");
  // The backlog: many small journal entries while neither subscriber is there.
  orderedWrites(db("crm"), 300, 1, true);
  ASSERT_TRUE(journaled(db("crm"))) << log("sync");
  const auto head = number(journalPath(), "SELECT max(sequence) FROM entries");
  auto crm2 = startHost("crm2", "crm");
  auto mining = startHost("mining", "mining");
  // Kill mining while it drains (as soon as it holds some of the backlog but not all), and the
  // crm2 host too, then bring both back: they resume from what they recorded as applied.
  const auto applied = [&](const char* instance) { return number(db(instance), "SELECT count(*) FROM orders"); };
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (applied("mining") <= 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  mining->signalAndWait(SIGKILL);
  ASSERT_TRUE(gone("plugin.mining"));
  // crm2 drains the whole backlog. What it records as applied is the journal position of the last
  // entry (2 x its sequence): a batch is recorded under its last entry, so a restarted subscriber
  // resumes after everything the batch held and applies none of it again.
  ASSERT_TRUE(eventually([&] { return rowsOf(db("crm")) == rowsOf(db("crm2")); }, 60s))
      << log("sync");
  EXPECT_EQ(number(db("crm2"), "SELECT sequence FROM _ipcsync_applied WHERE route = 'crm-crm2'"), 2 * head);
  crm2->signalAndWait(SIGKILL);
  ASSERT_TRUE(gone("plugin.crm2"));
  orderedWrites(db("crm"), 100, 301);
  mining = startHost("mining", "mining");
  crm2 = startHost("crm2", "crm");
  orderedWrites(db("crm"), 50, 401);
  ASSERT_TRUE(eventually([&] {
    return rowsOf(db("crm")) == rowsOf(db("crm2")) && miningAgrees(db("crm"), db("mining"));
  }, 90s)) << miningBeside(db("crm"), db("mining"))
           << log("sync");
  // Exactly once: a change-set applied twice would meet rows that had already changed (a
  // conflict); and the journal did hold a backlog of many entries to batch.
  EXPECT_EQ(log("mining").find("conflict(s)"), std::string::npos) << log("mining");
  nlohmann::json status;
  ASSERT_TRUE(eventually([&] {
    std::ifstream in(statusPath());
    status = nlohmann::json::parse(in, nullptr, false);
    return status.is_object() && status.contains("routes") && status["routes"].size() == 2;
  }, 5s));
  for (const auto& r : status["routes"]) EXPECT_EQ(r["conflicts"], 0) << r.dump();
  EXPECT_GT(head, 100) << "the backlog was not journaled as many entries";
  EXPECT_EQ(query(db("crm"), "SELECT count(*), sum(quantity) FROM orders"),
            query(db("crm2"), "SELECT count(*), sum(quantity) FROM orders"));
  EXPECT_EQ(sync->signalAndWait(SIGTERM), 0) << log("sync");
}

TEST_F(PipelineTest, AFailingBatchIsAppliedOneChangeSetAtATimeAndOnlyThePoisonOneIsDeadLettered) {
  auto crm = startHost("crm", "crm");
  auto sync = startSync(R"([{"name":"crm-mining","from":"crm","to":["mining"],"tables":["accounts","orders"],"max_retries":2}])");
  // Five journal entries for mining's backlog; the fourth holds a quantity mining refuses
  // (IPCSYNC_ESCHEMA). Together they are one batch, which fails as a whole.
  const char* writes[] = {"INSERT INTO accounts VALUES(1,'a','north',NULL,1);",
                          "INSERT INTO orders VALUES(1,1,'widget',2,100,0,1);",
                          "INSERT INTO orders VALUES(2,1,'gadget',3,100,0,1);",
                          "INSERT INTO orders VALUES(3,1,'widget','lots',100,0,1);",
                          "INSERT INTO orders VALUES(4,1,'gizmo',5,300,0,1);"};
  for (const char* sql : writes) {
    exec(db("crm"), sql);
    ASSERT_TRUE(journaled(db("crm"))) << log("sync");
  }
  auto mining = startHost("mining", "mining");
  ASSERT_TRUE(eventually([&] { return query(db("mining"), "SELECT id FROM orders ORDER BY id") == "1\n2\n4\n"; }, 30s))
      << query(db("mining"), "SELECT id FROM orders ORDER BY id") << log("sync");
  EXPECT_NE(log("sync").find("applying them one at a time"), std::string::npos) << log("sync");
  JournalConfig config;
  config.path = journalPath();
  auto journal = Journal::open(config);
  ASSERT_TRUE(journal) << journal.error().message;
  auto letters = (*journal)->deadLetters();
  ASSERT_TRUE(letters);
  ASSERT_EQ(letters->size(), 1u);
  auto entry = (*journal)->read(letters->front().sequence - 1, 1);
  ASSERT_TRUE(entry);
  ASSERT_EQ(entry->size(), 1u);
  EXPECT_EQ(entry->front().originSequence, 4u) << "the dead letter is not the poison change-set";
  EXPECT_NE(letters->front().error.find("quantity"), std::string::npos) << letters->front().error;
  EXPECT_EQ(sync->signalAndWait(SIGTERM), 0) << log("sync");
}

}  // namespace
}  // namespace ipcsync::sync::test
