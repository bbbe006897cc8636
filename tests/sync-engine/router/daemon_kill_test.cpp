// kill -9 of the whole daemon (ipcsyncd, every plugin host and ipcsync-sync at once; or ipcsyncd
// alone, the others then ending by themselves) at random moments while the call-centre simulator writes to the CRM, then a restart with nothing cleaned
// up: every change is applied exactly once (mining's additive aggregates equal the GROUP BY over
// the CRM, the replica equals the CRM row for row), no route is stuck and the journal is sound.
#include <gtest/gtest.h>
#include <signal.h>

#include <random>
#include <thread>

#include "daemon_fixture.h"

namespace ipcsync::sync::test {
namespace {

using namespace std::chrono_literals;

const char* kRoutes = R"(  - name: crm-mining
    from: crm
    to: mining
    tables: [accounts, orders]
  - name: crm-replica
    from: crm
    to: crm2
)";

TEST_F(SyncDaemonTest, KilledWholeDaemonRestartsOverItsLeftoversAndAppliesEveryChangeExactlyOnce) {
  const auto seed = testSeed("daemon kill -9");
  std::mt19937_64 rng(seed);
  writeConfig({{"crm", "crm"}, {"crm2", "crm"}, {"mining", "mining"}}, kRoutes);
  ASSERT_TRUE(startDaemon());
  // Rows before the simulator starts, so that orders have accounts in every region.
  crmWorkload(db("crm"), seed, 40, 1);
  Process callcentre({IPCSYNC_CALLCENTRE_BIN, "--database", db("crm").string(), "--duration", "60", "--rate", "150",
                      "--seed", std::to_string(seed), "--quiet"},
                     dir.path() / "callcentre.log");
  constexpr int kKills = 3;
  for (int k = 0; k < kKills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(400 + rng() % 1600));
    ASSERT_TRUE(callcentre.running()) << "the simulator stopped early";
    const auto before = daemonTree();
    ASSERT_GE(before.size(), 5u) << "ipcsyncd, three hosts and the sync engine";
    // Everything at once, or (every other time) ipcsyncd alone, its hosts and sync engine then
    // ending by themselves mid-work.
    if (k % 2 == 0) killDaemon();
    else killDaemonOnly();
    // The simulator keeps writing while nothing runs: captured by the triggers, emitted after the restart.
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 500));
    ASSERT_TRUE(startDaemon()) << "restart " << k + 1 << " after kill -9";
  }
  callcentre.signalAndWait(SIGTERM);
  crmWorkload(db("crm"), seed + 100, 20, 1);
  ASSERT_TRUE(eventually([&] {
    return miningEqualsGroupBy(db("crm"), db("mining")) && crmTableRows(db("crm")) == crmTableRows(db("crm2")) && drained();
  }, 120s)) << miningComparison(db("crm"), db("mining")) << "crm:\n" << crmChecksums(db("crm")) << "crm2:\n"
            << crmChecksums(db("crm2")) << syncStatus().dump(1);
  std::printf("after %d kills: crm\n%scrm2\n%s", kKills, crmChecksums(db("crm")).c_str(), crmChecksums(db("crm2")).c_str());
  EXPECT_EQ(crmChecksums(db("crm")), crmChecksums(db("crm2")));
  // Nothing stuck, nothing dead-lettered, nothing applied twice (a second application of an
  // insert or update meets a row that already changed: a conflict).
  const auto status = syncStatus();
  ASSERT_TRUE(status.contains("routes")) << status.dump(1);
  for (const auto& r : status.at("routes")) {
    EXPECT_EQ(r.at("dead_letters"), 0) << r.dump();
    EXPECT_EQ(r.at("conflicts"), 0) << r.dump();
    EXPECT_EQ(r.at("lag_changesets"), 0) << r.dump();
  }
  EXPECT_EQ(cli({"deadletter", "list"}).second.find("no dead letters"), 0u);
  // The restarts found what the killed daemon left and took it over rather than failing.
  EXPECT_NE(daemonLog().find("replaced the admin segment left behind by engine pid"), std::string::npos) << daemonLog();
  EXPECT_EQ(stopDaemon(), 0);
  EXPECT_EQ(integrityCheck(journalPath()), "ok");
  for (const char* i : {"crm", "crm2", "mining"}) EXPECT_EQ(integrityCheck(db(i)), "ok") << i;
  EXPECT_TRUE(miningEqualsGroupBy(db("crm"), db("mining")));
}

}  // namespace
}  // namespace ipcsync::sync::test
