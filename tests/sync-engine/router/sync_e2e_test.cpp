// ipcsync-sync end to end: a real ipcsyncd, real plugin hosts running crm.so and mining.so, and
// the sync engine process, with rows written into the CRM database files with plain SQL.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <fstream>
#include <thread>

#include "ipcsync/plugin_sdk/changeset.h"
#include "ipcsync/sync/journal.h"
#include "sync_fixture.h"

namespace ipcsync::sync::test {
namespace {

using namespace std::chrono_literals;

const char* kRegions[] = {"north", "south", "east", "west"};
const char* kProducts[] = {"widget", "gadget", "gizmo"};

// `transactions` random transactions of plain SQL on a CRM file: accounts, orders placed,
// changed and deleted. Ids start at `idBase` so two writers never collide.
void workload(const std::filesystem::path& db, std::uint64_t seed, int transactions, std::int64_t idBase) {
  std::mt19937_64 rng(seed);
  std::int64_t nextAccount = idBase, nextOrder = idBase;
  const auto existing = query(db, "SELECT coalesce(max(id), 0) FROM accounts WHERE id >= " + std::to_string(idBase) +
                                      " AND id < " + std::to_string(idBase + 1000000));
  nextAccount = std::max<std::int64_t>(idBase, std::stoll(existing) + 1);
  const auto existingOrders = query(db, "SELECT coalesce(max(id), 0) FROM orders WHERE id >= " + std::to_string(idBase) +
                                            " AND id < " + std::to_string(idBase + 1000000));
  nextOrder = std::max<std::int64_t>(idBase, std::stoll(existingOrders) + 1);
  for (int t = 0; t < transactions; ++t) {
    std::string sql = "BEGIN;";
    const int ops = 1 + static_cast<int>(rng() % 4);
    for (int o = 0; o < ops; ++o) {
      const auto pick = rng() % 10;
      if (pick < 2 || nextAccount == idBase) {
        const auto id = nextAccount++;
        sql += "INSERT INTO accounts VALUES(" + std::to_string(id) + ",'acct " + std::to_string(id) + "','" +
               kRegions[rng() % 4] + "','retail',1);";
      } else if (pick < 7) {
        const auto account = idBase + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(nextAccount - idBase));
        sql += "INSERT INTO orders VALUES(" + std::to_string(nextOrder++) + "," + std::to_string(account) + ",'" +
               kProducts[rng() % 3] + "'," + std::to_string(1 + rng() % 9) + "," + std::to_string(100 + rng() % 900) +
               "," + std::to_string(1700000000000000 + static_cast<std::int64_t>(rng() % 100) * 86400000000) + ",1);";
      } else if (pick < 9 && nextOrder > idBase) {
        const auto id = idBase + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(nextOrder - idBase));
        sql += "UPDATE orders SET quantity = quantity + 1, updated_at = updated_at + 1 WHERE id = " + std::to_string(id) + ";";
      } else if (nextOrder > idBase) {
        const auto id = idBase + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(nextOrder - idBase));
        sql += "DELETE FROM orders WHERE id = " + std::to_string(id) + ";";
      }
    }
    exec(db, sql + "COMMIT;");
  }
}

std::uint64_t seedFor(const char* what) {
  std::uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("IPCSYNC_TEST_SEED")) seed = std::stoull(s);
  std::printf("%s: seed %llu (IPCSYNC_TEST_SEED=%llu repeats it)\n", what, static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  return seed;
}

// The mining aggregates as the GROUP BY over the CRM file, and as mining holds them.
const char* kCrmByRegion =
    "SELECT a.region, count(*), sum(o.quantity), sum(o.quantity * o.unit_price_cents) FROM orders o LEFT JOIN accounts a "
    "ON a.id = o.account_id WHERE typeof(o.quantity) = 'integer' GROUP BY a.region ORDER BY 1";
const char* kMiningByRegion = "SELECT region, order_count, units, revenue_cents FROM sales_by_region ORDER BY 1";
const char* kCrmByProduct =
    "SELECT product, count(*), sum(quantity), sum(quantity * unit_price_cents) FROM orders WHERE typeof(quantity) = "
    "'integer' GROUP BY product ORDER BY 1";
const char* kMiningByProduct = "SELECT product, order_count, units, revenue_cents FROM sales_by_product ORDER BY 1";
const char* kCrmByCustomer =
    "SELECT account_id, count(*), sum(quantity), sum(quantity * unit_price_cents) FROM orders WHERE typeof(quantity) = "
    "'integer' GROUP BY account_id ORDER BY 1";
const char* kMiningByCustomer = "SELECT account_id, order_count, units, revenue_cents FROM sales_by_customer ORDER BY 1";

// Every row of the four CRM tables, for comparing replicas.
std::string crmRows(const std::filesystem::path& db) {
  std::string out;
  for (const char* t : {"accounts", "contacts", "interactions", "orders"})
    out += std::string(t) + ":\n" + query(db, std::string("SELECT * FROM ") + t + " ORDER BY id");
  return out;
}

bool miningMatches(const std::filesystem::path& crm, const std::filesystem::path& mining) {
  return query(crm, kCrmByRegion) == query(mining, kMiningByRegion) &&
         query(crm, kCrmByProduct) == query(mining, kMiningByProduct) &&
         query(crm, kCrmByCustomer) == query(mining, kMiningByCustomer) && !query(crm, kCrmByCustomer).empty();
}

nlohmann::json syncStatus(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return {};
  try {
    return nlohmann::json::parse(in);
  } catch (...) {
    return {};
  }
}

const char* kCrmToMining = R"([{"name":"crm-mining","from":"crm","to":["mining"],"tables":["accounts","orders"]}])";

TEST_F(SyncE2eTest, CrmChangesReachMiningAndItsAggregatesEqualTheGroupBy) {
  auto crm = startHost("crm", "crm");
  auto mining = startHost("mining", "mining");
  auto sync = startSync(kCrmToMining);
  workload(db("crm"), seedFor("crm to mining"), 200, 1);
  ASSERT_TRUE(eventually([&] { return miningMatches(db("crm"), db("mining")); }, 60s))
      << query(db("crm"), kCrmByRegion) << "---\n" << query(db("mining"), kMiningByRegion) << log("sync");
  ASSERT_TRUE(eventually([&] {
    auto s = syncStatus(statusPath());
    return !s.empty() && s["routes"][0]["applied"].get<int>() > 0 && s["routes"][0]["lag_ms"].get<int>() == 0;
  }, 10s)) << syncStatus(statusPath()).dump(1);
  const auto s = syncStatus(statusPath());
  EXPECT_EQ(s["routes"][0]["route"], "crm-mining");
  EXPECT_EQ(s["routes"][0]["conflicts"], 0);
  EXPECT_EQ(s["routes"][0]["dead_letters"], 0);
  EXPECT_GT(s["journal"]["head"].get<int>(), 0);
  EXPECT_EQ(log("mining").find("conflict(s)"), std::string::npos) << log("mining");
  EXPECT_EQ(sync->signalAndWait(SIGTERM), 0) << log("sync");
}

TEST_F(SyncE2eTest, PoisonChangeSetGoesToTheDeadLettersAndTheRouteCarriesOn) {
  auto crm = startHost("crm", "crm");
  auto mining = startHost("mining", "mining");
  auto sync = startSync(R"([{"name":"crm-mining","from":"crm","to":["mining"],"tables":["accounts","orders"],"max_retries":2}])");
  exec(db("crm"), "INSERT INTO accounts VALUES(1,'a','north',NULL,1);");
  exec(db("crm"), "INSERT INTO orders VALUES(1,1,'widget',2,100,0,1);");
  ASSERT_TRUE(eventually([&] { return miningMatches(db("crm"), db("mining")); }, 30s)) << log("sync");
  // A quantity mining cannot compute with: IPCSYNC_ESCHEMA, quarantined at once.
  exec(db("crm"), "INSERT INTO orders VALUES(2,1,'widget','lots',100,0,1);");
  ASSERT_TRUE(eventually([&] { return log("sync").find("moved to the dead letters") != std::string::npos; }, 30s))
      << log("sync");
  exec(db("crm"), "INSERT INTO orders VALUES(3,1,'gadget',5,300,0,1);");
  ASSERT_TRUE(eventually([&] {
    return query(db("mining"), "SELECT id FROM orders ORDER BY id") == "1\n3\n";
  }, 30s)) << query(db("mining"), "SELECT id FROM orders") << log("sync");
  EXPECT_TRUE(miningMatches(db("crm"), db("mining")));
  JournalConfig config;
  config.path = journalPath();
  auto journal = Journal::open(config);
  ASSERT_TRUE(journal) << journal.error().message;
  auto letters = (*journal)->deadLetters();
  ASSERT_TRUE(letters);
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ(letters->front().route, "crm-mining");
  EXPECT_EQ(letters->front().subscriber, "mining");
  EXPECT_NE(letters->front().error.find("quantity"), std::string::npos) << letters->front().error;
  EXPECT_NE(log("sync").find("moved to the dead letters"), std::string::npos);
  // Nothing was lost: the change-set is still in the journal for a replay.
  auto kept = (*journal)->read(letters->front().sequence - 1, 1);
  ASSERT_TRUE(kept);
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ(kept->front().sequence, letters->front().sequence);
}

TEST_F(SyncE2eTest, KilledHostAndSyncEngineResumeAndApplyEveryChangeExactlyOnce) {
  const auto seed = seedFor("kill -9");
  auto crm = startHost("crm", "crm");
  auto crm2 = startHost("crm2", "crm");
  auto mining = startHost("mining", "mining");
  const char* routes = R"([{"name":"crm-mining","from":"crm","to":["mining"],"tables":["accounts","orders"]},
                           {"name":"crm-crm2","from":"crm","to":["crm2"]}])";
  auto sync = startSync(routes);
  workload(db("crm"), seed, 150, 1);
  // The mining host dies mid-stream and comes back.
  mining->signalAndWait(SIGKILL);
  ASSERT_TRUE(gone("plugin.mining"));
  workload(db("crm"), seed + 1, 100, 1);
  mining = startHost("mining", "mining");
  workload(db("crm"), seed + 2, 100, 1);
  // Only a host the sync engine has started ends with its session (one still waiting for its
  // Start keeps waiting): let the new mining host be started and catch up first.
  ASSERT_TRUE(eventually([&] { return miningMatches(db("crm"), db("mining")); }, 60s)) << log("sync");
  // The sync engine dies mid-stream; the hosts it had started end with their sessions (as under
  // the daemon, their supervisor restarts them) and everything comes back.
  sync->signalAndWait(SIGKILL);
  for (auto* h : {&crm, &crm2, &mining}) EXPECT_EQ((*h)->waitExit(20s), 1);
  for (const char* n : {"plugin.crm", "plugin.crm2", "plugin.mining", "sync"}) ASSERT_TRUE(gone(n)) << n;
  workload(db("crm"), seed + 3, 50, 1);
  crm = startHost("crm", "crm");
  crm2 = startHost("crm2", "crm");
  mining = startHost("mining", "mining");
  sync = startSync(routes);
  workload(db("crm"), seed + 4, 100, 1);
  ASSERT_TRUE(eventually([&] { return miningMatches(db("crm"), db("mining")) && crmRows(db("crm")) == crmRows(db("crm2")); },
                         90s))
      << log("sync");
  // Exactly once: nothing was applied twice (a second application would meet rows that already
  // changed: conflicts), and replicas are equal row for row.
  EXPECT_EQ(log("mining").find("conflict(s)"), std::string::npos) << log("mining");
  ASSERT_TRUE(eventually([&] { return syncStatus(statusPath()).contains("routes"); }, 5s));
  const auto final = syncStatus(statusPath());
  for (const auto& r : final["routes"]) EXPECT_EQ(r["conflicts"], 0) << r.dump();
  EXPECT_EQ(query(db("crm"), "SELECT count(*), sum(quantity) FROM orders"),
            query(db("crm2"), "SELECT count(*), sum(quantity) FROM orders"));
}

TEST_F(SyncE2eTest, BidirectionalReplicasEndIdenticalAndNothingEchoes) {
  const auto seed = seedFor("bidirectional");
  auto crm = startHost("crm", "crm");
  auto crm2 = startHost("crm2", "crm");
  // Retention keeps what was delivered, so the test can read every journaled change afterwards.
  auto sync = startSync(R"([{"name":"pair","from":"crm","to":["crm2"],"bidirectional":true}])", R"(,"retention_s":3600)");
  workload(db("crm"), seed, 60, 1);
  workload(db("crm2"), seed + 1, 60, 5000000);
  workload(db("crm"), seed + 2, 40, 1);
  ASSERT_TRUE(eventually([&] { return crmRows(db("crm")) == crmRows(db("crm2")); }, 60s))
      << crmRows(db("crm")) << "----\n" << crmRows(db("crm2")) << log("sync");
  EXPECT_NE(query(db("crm"), "SELECT count(*) FROM accounts WHERE id >= 5000000"), "0\n");
  // No echo: every journaled change-set holds only rows its origin wrote itself (crm's ids are
  // below 5000000, crm2's above), and the journal stops growing.
  std::this_thread::sleep_for(1000ms);
  const auto head = syncStatus(statusPath())["journal"]["head"].get<std::uint64_t>();
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(syncStatus(statusPath())["journal"]["head"].get<std::uint64_t>(), head);
  JournalConfig config;
  config.path = journalPath();
  auto journal = Journal::open(config);
  ASSERT_TRUE(journal) << journal.error().message;
  auto entries = (*journal)->read(0, 100000);
  ASSERT_TRUE(entries);
  std::size_t changes = 0;
  for (const auto& e : *entries) {
    for (const auto& piece : e.pieces) {
      auto reader = plugin_sdk::ChangesetReader::open(piece);
      ASSERT_TRUE(reader);
      ipcsync_change c{};
      c.struct_size = sizeof c;
      while (*reader->next(c)) {
        const ipcsync_value& id = (c.new_values ? c.new_values : c.old_values)[0];
        const std::int64_t key = id.type == IPCSYNC_VALUE_INTEGER ? id.integer : c.old_values[0].integer;
        EXPECT_EQ(e.origin == "crm", key < 5000000) << "echo: entry " << e.sequence << " from " << e.origin << " holds "
                                                      << c.table << " id " << key;
        ++changes;
      }
    }
  }
  EXPECT_GT(changes, 0u);
  EXPECT_LE(head, 160u);
  EXPECT_EQ(crmRows(db("crm")), crmRows(db("crm2")));
}

TEST_F(SyncE2eTest, RowFilterAndColumnExclusionAreHonoured) {
  auto crm = startHost("crm", "crm");
  auto crm2 = startHost("crm2", "crm");
  auto sync = startSync(R"([{"name":"north","from":"crm","to":["crm2"],
      "tables":[{"table":"accounts","row_filter":"region = 'north'","exclude_columns":["industry"]}]}])");
  std::string sql = "BEGIN;";
  for (int i = 1; i <= 40; ++i)
    sql += "INSERT INTO accounts VALUES(" + std::to_string(i) + ",'a" + std::to_string(i) + "','" + kRegions[i % 4] +
           "','industry " + std::to_string(i) + "'," + std::to_string(i) + ");";
  exec(db("crm"), sql + "INSERT INTO contacts VALUES(1,1,'c',NULL,NULL,1);COMMIT;");
  exec(db("crm"), "UPDATE accounts SET name = 'renamed' WHERE id IN (4, 5);");  // 4 is north, 5 is not
  exec(db("crm"), "UPDATE accounts SET industry = 'changed' WHERE id = 8;");    // only an excluded column
  const std::string expected =
      query(db("crm"), "SELECT id, name, region, NULL, updated_at FROM accounts WHERE region = 'north' ORDER BY id");
  ASSERT_TRUE(eventually([&] {
    return query(db("crm2"), "SELECT id, name, region, industry, updated_at FROM accounts ORDER BY id") == expected;
  }, 30s)) << query(db("crm2"), "SELECT * FROM accounts") << log("sync");
  EXPECT_EQ(query(db("crm2"), "SELECT count(*) FROM contacts"), "0\n");
  EXPECT_EQ(query(db("crm2"), "SELECT name FROM accounts WHERE id = 4"), "renamed\n");
}

TEST_F(SyncE2eTest, SnapshotThenStreamHasNoGapAndNoDuplicate) {
  const auto seed = seedFor("snapshot");
  auto crm = startHost("crm", "crm");
  auto crm2 = startHost("crm2", "crm");
  // Rows that exist before the route does, and keep changing while it starts.
  workload(db("crm"), seed, 80, 1);
  auto sync = startSync(R"([{"name":"snap","from":"crm","to":["crm2"],"tables":["accounts","orders"],"snapshot":true}])");
  workload(db("crm"), seed + 1, 80, 1);
  ASSERT_TRUE(eventually([&] {
    return query(db("crm"), "SELECT * FROM orders ORDER BY id") == query(db("crm2"), "SELECT * FROM orders ORDER BY id") &&
           query(db("crm"), "SELECT * FROM accounts ORDER BY id") == query(db("crm2"), "SELECT * FROM accounts ORDER BY id");
  }, 60s)) << log("sync");
  // The tables can match the moment the snapshot's apply commits, just before the line is logged.
  EXPECT_TRUE(eventually([&] { return log("sync").find("snapshot of") != std::string::npos; }, 5s)) << log("sync");
  ASSERT_TRUE(eventually([&] { return syncStatus(statusPath()).contains("routes"); }, 5s));
  const auto r = syncStatus(statusPath())["routes"][0];
  EXPECT_EQ(r["conflicts"], 0) << r.dump();  // nothing the snapshot held was applied again
  EXPECT_EQ(r["dead_letters"], 0) << r.dump();
}

TEST_F(SyncE2eTest, BadTopologyIsRefusedWithExitCodeTwoAndAClearMessage) {
  const auto file = dir.path() / "bad.json";
  std::ofstream(file) << R"({"routes":[{"from":"crm","to":["crm"]}]})";
  Process p({IPCSYNC_SYNC_BIN, "--namespace", ns, "--runtime-dir", dir.path().string(), "--topology", file.string(),
             "--journal", journalPath().string()},
            logOf("bad"));
  EXPECT_EQ(p.waitExit(20s), 2);
  EXPECT_NE(log("bad").find("routes 'crm' to itself"), std::string::npos) << log("bad");
}

}  // namespace
}  // namespace ipcsync::sync::test
