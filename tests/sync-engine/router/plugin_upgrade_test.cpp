// A plugin upgraded in place: its hosts restart with a build that describes one more column. The
// routes that name it are shaped anew from the new description, so its change-sets travel.
// Before, the running sync engine kept the transform it built from the old description, and a
// route that transforms (here it leaves a column out) refused every change-set of the upgraded
// source ("6 columns but the source described 5") into the dead letters until it was restarted.
// A route that carries its tables as they are passes the bytes through and never noticed.
#include <gtest/gtest.h>
#include <signal.h>

#include "sync_fixture.h"

namespace ipcsync::sync::test {
namespace {

using namespace std::chrono_literals;

TEST_F(SyncE2eTest, APluginUpgradedInPlaceWithAnotherColumnTravelsByItsNewDescription) {
  auto crm = startHost("crm", "crm");
  auto crm2 = startHost("crm2", "crm");
  auto sync = startSync(
      R"([{"name":"pair","from":"crm","to":["crm2"],"tables":[{"table":"accounts","exclude_columns":["industry"]}]}])");
  ASSERT_TRUE(connected(*sync)) << log("sync");
  exec(db("crm"), "INSERT INTO accounts VALUES(1,'before','north','retail',1)");
  ASSERT_TRUE(eventually([&] { return query(db("crm2"), "SELECT name FROM accounts") == "before\n"; }, 30s))
      << log("sync");

  // The upgrade, as an operator does it: stop both hosts, migrate both files, start the new build.
  EXPECT_EQ(crm->signalAndWait(SIGTERM), 0) << log("crm");
  EXPECT_EQ(crm2->signalAndWait(SIGTERM), 0) << log("crm2");
  ASSERT_TRUE(gone("plugin.crm"));
  ASSERT_TRUE(gone("plugin.crm2"));
  ASSERT_TRUE(eventually([&] { return !sourcesConnected(statusPath(), sync->pid()); }, 30s)) << log("sync");
  for (const char* instance : {"crm", "crm2"}) exec(db(instance), "ALTER TABLE accounts ADD COLUMN tier TEXT");
  crm = startHost("crm", IPCSYNC_CRM_WIDE_PLUGIN);
  crm2 = startHost("crm2", IPCSYNC_CRM_WIDE_PLUGIN);
  ASSERT_TRUE(connected(*sync)) << log("sync");

  exec(db("crm"), "INSERT INTO accounts VALUES(2,'after','south','retail',2,'gold')");
  EXPECT_TRUE(eventually(
      [&] { return query(db("crm2"), "SELECT id, name, industry, tier FROM accounts ORDER BY id") ==
                   "1|before|NULL|NULL\n2|after|NULL|gold\n"; },
      60s))
      << query(db("crm2"), "SELECT * FROM accounts") << log("sync");
  EXPECT_NE(log("sync").find("describes different tables or columns than before"), std::string::npos) << log("sync");
  EXPECT_EQ(query(journalPath(), "SELECT count(*) FROM dead_letters"), "0\n") << log("sync");
}

}  // namespace
}  // namespace ipcsync::sync::test
