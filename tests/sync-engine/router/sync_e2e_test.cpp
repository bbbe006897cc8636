// ipcsync-sync end to end: a real ipcsyncd, real plugin hosts running crm.so and mining.so, and
// the sync engine process, with rows written into the CRM database files with plain SQL.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <fstream>
#include <thread>

#include "ipcsync/plugin_sdk/changeset.h"
#include "ipcsync/sync/journal.h"
#include "sync_fixture.h"

namespace ipcsync::sync::test {
namespace {

using namespace std::chrono_literals;

const char* kRegions[] = {"north", "south", "east", "west"};
const char* kCrmToMining = R"([{"name":"crm-mining","from":"crm","to":["mining"],"tables":["accounts","orders"]}])";

TEST_F(SyncE2eTest, CrmChangesReachMiningAndItsAggregatesEqualTheGroupBy) {
  auto crm = startHost("crm", "crm");
  auto mining = startHost("mining", "mining");
  auto sync = startSync(kCrmToMining);
  crmWorkload(db("crm"), testSeed("crm to mining"), 200, 1);
  ASSERT_TRUE(eventually([&] { return miningEqualsGroupBy(db("crm"), db("mining")); }, 60s))
      << miningComparison(db("crm"), db("mining")) << log("sync");
  ASSERT_TRUE(eventually([&] {
    auto s = readJson(statusPath());
    return !s.empty() && s["routes"][0]["applied"].get<int>() > 0 && s["routes"][0]["lag_ms"].get<int>() == 0;
  }, 10s)) << readJson(statusPath()).dump(1);
  const auto s = readJson(statusPath());
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
  ASSERT_TRUE(eventually([&] { return miningEqualsGroupBy(db("crm"), db("mining")); }, 30s)) << log("sync");
  // A quantity mining cannot compute with: IPCSYNC_ESCHEMA, quarantined at once.
  exec(db("crm"), "INSERT INTO orders VALUES(2,1,'widget','lots',100,0,1);");
  ASSERT_TRUE(eventually([&] { return log("sync").find("moved to the dead letters") != std::string::npos; }, 30s))
      << log("sync");
  exec(db("crm"), "INSERT INTO orders VALUES(3,1,'gadget',5,300,0,1);");
  ASSERT_TRUE(eventually([&] {
    return query(db("mining"), "SELECT id FROM orders ORDER BY id") == "1\n3\n";
  }, 30s)) << query(db("mining"), "SELECT id FROM orders") << log("sync");
  EXPECT_TRUE(miningEqualsGroupBy(db("crm"), db("mining")));
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
  const auto seed = testSeed("kill -9");
  auto crm = startHost("crm", "crm");
  auto crm2 = startHost("crm2", "crm");
  auto mining = startHost("mining", "mining");
  const char* routes = R"([{"name":"crm-mining","from":"crm","to":["mining"],"tables":["accounts","orders"]},
                           {"name":"crm-crm2","from":"crm","to":["crm2"]}])";
  auto sync = startSync(routes);
  crmWorkload(db("crm"), seed, 150, 1);
  // The mining host dies mid-stream and comes back.
  mining->signalAndWait(SIGKILL);
  ASSERT_TRUE(gone("plugin.mining"));
  crmWorkload(db("crm"), seed + 1, 100, 1);
  mining = startHost("mining", "mining");
  crmWorkload(db("crm"), seed + 2, 100, 1);
  // Only a host the sync engine has started ends with its session (one still waiting for its
  // Start keeps waiting): let the new mining host be started and catch up first.
  ASSERT_TRUE(eventually([&] { return miningEqualsGroupBy(db("crm"), db("mining")); }, 60s)) << log("sync");
  // The sync engine dies mid-stream; the hosts it had started end with their sessions (as under
  // the daemon, their supervisor restarts them) and everything comes back.
  sync->signalAndWait(SIGKILL);
  for (auto* h : {&crm, &crm2, &mining}) EXPECT_EQ((*h)->waitExit(20s), 1);
  for (const char* n : {"plugin.crm", "plugin.crm2", "plugin.mining", "sync"}) ASSERT_TRUE(gone(n)) << n;
  crmWorkload(db("crm"), seed + 3, 50, 1);
  crm = startHost("crm", "crm");
  crm2 = startHost("crm2", "crm");
  mining = startHost("mining", "mining");
  sync = startSync(routes);
  crmWorkload(db("crm"), seed + 4, 100, 1);
  ASSERT_TRUE(eventually([&] { return miningEqualsGroupBy(db("crm"), db("mining")) && crmTableRows(db("crm")) == crmTableRows(db("crm2")); },
                         90s))
      << log("sync");
  // Exactly once: nothing was applied twice (a second application would meet rows that already
  // changed: conflicts), and replicas are equal row for row.
  EXPECT_EQ(log("mining").find("conflict(s)"), std::string::npos) << log("mining");
  ASSERT_TRUE(eventually([&] { return readJson(statusPath()).contains("routes"); }, 5s));
  const auto final = readJson(statusPath());
  for (const auto& r : final["routes"]) EXPECT_EQ(r["conflicts"], 0) << r.dump();
  EXPECT_EQ(query(db("crm"), "SELECT count(*), sum(quantity) FROM orders"),
            query(db("crm2"), "SELECT count(*), sum(quantity) FROM orders"));
}

TEST_F(SyncE2eTest, BidirectionalReplicasEndIdenticalAndNothingEchoes) {
  const auto seed = testSeed("bidirectional");
  auto crm = startHost("crm", "crm");
  auto crm2 = startHost("crm2", "crm");
  // Retention keeps what was delivered, so the test can read every journaled change afterwards.
  auto sync = startSync(R"([{"name":"pair","from":"crm","to":["crm2"],"bidirectional":true}])", R"(,"retention_s":3600)");
  crmWorkload(db("crm"), seed, 60, 1);
  crmWorkload(db("crm2"), seed + 1, 60, 5000000);
  crmWorkload(db("crm"), seed + 2, 40, 1);
  ASSERT_TRUE(eventually([&] { return crmTableRows(db("crm")) == crmTableRows(db("crm2")); }, 60s))
      << crmTableRows(db("crm")) << "----\n" << crmTableRows(db("crm2")) << log("sync");
  EXPECT_NE(query(db("crm"), "SELECT count(*) FROM accounts WHERE id >= 5000000"), "0\n");
  // No echo: every journaled change-set holds only rows its origin wrote itself (crm's ids are
  // below 5000000, crm2's above), and the journal stops growing.
  std::this_thread::sleep_for(1000ms);
  const auto head = readJson(statusPath())["journal"]["head"].get<std::uint64_t>();
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(readJson(statusPath())["journal"]["head"].get<std::uint64_t>(), head);
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
  EXPECT_EQ(crmTableRows(db("crm")), crmTableRows(db("crm2")));
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
  const auto seed = testSeed("snapshot");
  auto crm = startHost("crm", "crm");
  auto crm2 = startHost("crm2", "crm");
  // Rows that exist before the route does, and keep changing while it starts.
  crmWorkload(db("crm"), seed, 80, 1);
  auto sync = startSync(R"([{"name":"snap","from":"crm","to":["crm2"],"tables":["accounts","orders"],"snapshot":true}])");
  crmWorkload(db("crm"), seed + 1, 80, 1);
  ASSERT_TRUE(eventually([&] {
    return query(db("crm"), "SELECT * FROM orders ORDER BY id") == query(db("crm2"), "SELECT * FROM orders ORDER BY id") &&
           query(db("crm"), "SELECT * FROM accounts ORDER BY id") == query(db("crm2"), "SELECT * FROM accounts ORDER BY id");
  }, 60s)) << log("sync");
  // The tables can match the moment the snapshot's apply commits, just before the line is logged.
  EXPECT_TRUE(eventually([&] { return log("sync").find("snapshot of") != std::string::npos; }, 5s)) << log("sync");
  ASSERT_TRUE(eventually([&] { return readJson(statusPath()).contains("routes"); }, 5s));
  const auto r = readJson(statusPath())["routes"][0];
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
