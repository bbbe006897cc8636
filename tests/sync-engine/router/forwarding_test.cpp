// Forwarding across several routes: crm -> crm2 carries the north region's accounts without their
// industry, crm2 -> crm3 carries crm2's accounts. Plugins do not re-emit what they apply, so the
// sync engine forwards crm's change-sets to crm3 itself. What a user expects at crm3 is what crm2
// holds: only northern accounts (also after rows move in and out of the region), industry empty,
// and crm2's own changes too.
#include <gtest/gtest.h>

#include <algorithm>

#include "sync_fixture.h"

namespace ipcsync::sync::test {
namespace {

using namespace std::chrono_literals;

const char* kChain = R"([{"name":"north","from":"crm","to":["crm2"],
    "tables":[{"table":"accounts","row_filter":"region = 'north'","exclude_columns":["industry"]}]},
  {"name":"onward","from":"crm2","to":["crm3"],"tables":["accounts"]}])";

TEST_F(SyncE2eTest, AForwardedChangeReachesTheNextHopAsTheMiddleInstanceHoldsIt) {
  auto crm = startHost("crm", "crm");
  auto crm2 = startHost("crm2", "crm");
  auto crm3 = startHost("crm3", "crm");
  auto sync = startSync(kChain);
  ASSERT_TRUE(connected(*sync)) << log("sync");
  exec(db("crm"), "INSERT INTO accounts VALUES(1,'stays north','north','retail',1);"
                  "INSERT INTO accounts VALUES(2,'moves in','south','retail',1);"
                  "INSERT INTO accounts VALUES(3,'moves out','north','retail',1);");
  exec(db("crm"), "UPDATE accounts SET region = 'north', updated_at = 2 WHERE id = 2;"
                  "UPDATE accounts SET region = 'south', updated_at = 2 WHERE id = 3;"
                  "UPDATE accounts SET name = 'renamed', updated_at = 2 WHERE id = 1;");
  exec(db("crm2"), "INSERT INTO accounts VALUES(100,'crm2 own','east',NULL,1);");
  exec(db("crm"), "INSERT INTO accounts VALUES(4,'marker','north','retail',1);");
  const auto holds = [&](const std::string& instance, const std::string& ids) {
    return query(db(instance), "SELECT id FROM accounts ORDER BY id") == ids;
  };
  ASSERT_TRUE(eventually([&] { return holds("crm2", "1\n2\n4\n100\n") && holds("crm3", "1\n2\n4\n100\n"); }, 30s))
      << "crm2:\n" << query(db("crm2"), "SELECT * FROM accounts ORDER BY id") << "crm3:\n"
      << query(db("crm3"), "SELECT * FROM accounts ORDER BY id") << log("sync");
  const std::string all = "SELECT id, name, region, industry IS NULL, updated_at FROM accounts ORDER BY id";
  EXPECT_EQ(query(db("crm3"), all), query(db("crm2"), all));
  EXPECT_EQ(query(db("crm3"), "SELECT count(*) FROM accounts WHERE industry IS NOT NULL"), "0\n")
      << "the column crm -> crm2 does not carry must not reach crm3 around crm2";
  EXPECT_EQ(query(db("crm3"), "SELECT name FROM accounts WHERE id = 1"), "renamed\n");
  // Nothing collided on the way: no conflict, error or dead letter on either route.
  ASSERT_TRUE(eventually([&] {
    const auto status = readJson(statusPath());
    return status.contains("routes") && status["routes"].size() == 2 &&
           std::ranges::all_of(status["routes"], [&](const auto& r) { return r["cursor"] == status["journal"]["head"]; });
  }, 30s)) << readJson(statusPath()).dump(2);
  const auto status = readJson(statusPath());
  for (const auto& r : status["routes"]) {
    EXPECT_EQ(r["conflicts"], 0) << r.dump();
    EXPECT_EQ(r["errors"], 0) << r.dump();
    EXPECT_EQ(r["dead_letters"], 0) << r.dump();
  }
}

}  // namespace
}  // namespace ipcsync::sync::test
