// A route taken out of the topology (ipcsyncd restarts the sync engine on a reload) must stop
// holding the journal back: its cursor would otherwise keep every later change-set until the
// journal is full, and then hold every source back.
#include <gtest/gtest.h>
#include <signal.h>

#include "sync_fixture.h"

namespace ipcsync::sync::test {
namespace {

using namespace std::chrono_literals;

const char* kBoth = R"([{"name":"to-mining","from":"crm","to":["mining"],"tables":["accounts","orders"]},
  {"name":"to-crm2","from":"crm","to":["crm2"]}])";
const char* kMiningOnly = R"([{"name":"to-mining","from":"crm","to":["mining"],"tables":["accounts","orders"]}])";

TEST_F(SyncE2eTest, ARouteRemovedFromTheTopologyNoLongerHoldsTheJournalBack) {
  auto crm = startHost("crm", "crm");
  auto mining = startHost("mining", "mining");
  auto crm2 = startHost("crm2", "crm");
  auto sync = startSync(kBoth);
  ASSERT_TRUE(connected(*sync)) << log("sync");
  crm2->signalAndWait(SIGKILL);  // to-crm2 falls behind from here on
  exec(db("crm"), "INSERT INTO accounts VALUES(1,'a','north','retail',1);"
                  "INSERT INTO accounts VALUES(2,'b','south','retail',1);");
  const auto cursorOf = [&](const std::string& route) {
    return query(journalPath(), "SELECT sequence FROM cursors WHERE route = '" + route + "'");
  };
  const auto head = [&] { return query(journalPath(), "SELECT head FROM journal_state"); };
  ASSERT_TRUE(eventually([&] { return head() != "0\n" && cursorOf("to-mining") == head(); }, 30s)) << log("sync");
  EXPECT_EQ(sync->signalAndWait(SIGTERM), 0) << log("sync");
  EXPECT_GE(crm->waitExit(20000ms), 0);
  EXPECT_GE(mining->waitExit(20000ms), 0);
  ASSERT_EQ(cursorOf("to-crm2"), "0\n") << "crm2 never confirmed what it missed";
  ASSERT_NE(query(journalPath(), "SELECT count(*) FROM entries"), "0\n");

  crm = startHost("crm", "crm");
  mining = startHost("mining", "mining");
  sync = startSync(kMiningOnly);
  ASSERT_TRUE(connected(*sync)) << log("sync");
  exec(db("crm"), "INSERT INTO accounts VALUES(3,'c','east','retail',1);");
  EXPECT_TRUE(eventually([&] {
    return cursorOf("to-crm2").empty() && cursorOf("to-mining") == head() &&
           query(journalPath(), "SELECT count(*) FROM entries") == "0\n";
  }, 30s)) << "cursors: " << query(journalPath(), "SELECT * FROM cursors")
           << "entries: " << query(journalPath(), "SELECT count(*) FROM entries") << log("sync");
  EXPECT_NE(log("sync").find("'to-crm2' to 'crm2' is no longer in the topology"), std::string::npos) << log("sync");
}

}  // namespace
}  // namespace ipcsync::sync::test
