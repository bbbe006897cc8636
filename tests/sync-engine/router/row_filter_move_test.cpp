// An UPDATE that moves a row into or out of a route's row filter. What a user of a filtered
// replica ("the north region's accounts") expects: a row that now matches appears at the target
// with all its columns, and a row that no longer matches is removed there.
//
// crm's UPDATEs carry the whole old row, so the transform judges both the old and the new row
// against the filter: moving in travels as an INSERT of the whole row, moving out as a DELETE.
#include <gtest/gtest.h>
#include <signal.h>

#include "sync_fixture.h"

namespace ipcsync::sync::test {
namespace {

using namespace std::chrono_literals;

const char* kNorth = R"([{"name":"north","from":"crm","to":["crm2"],
    "tables":[{"table":"accounts","row_filter":"region = 'north'"}]}])";

TEST_F(SyncE2eTest, RowsMovingAcrossTheFilterAppearAndDisappearAtTheTarget) {
  auto crm = startHost("crm", "crm");
  auto crm2 = startHost("crm2", "crm");
  auto sync = startSync(kNorth);
  ASSERT_TRUE(connected(*sync)) << log("sync");
  exec(db("crm"), "INSERT INTO accounts VALUES(1,'stays north','north','retail',1);"
                  "INSERT INTO accounts VALUES(2,'moves in','south','retail',1);"
                  "INSERT INTO accounts VALUES(3,'moves out','north','retail',1);");
  ASSERT_TRUE(eventually([&] { return query(db("crm2"), "SELECT id FROM accounts ORDER BY id") == "1\n3\n"; }, 30s))
      << log("sync");
  exec(db("crm"), "UPDATE accounts SET region = 'north', updated_at = 2 WHERE id = 2;"
                  "UPDATE accounts SET region = 'south', updated_at = 2 WHERE id = 3;");
  exec(db("crm"), "INSERT INTO accounts VALUES(4,'marker','north','retail',1);");
  ASSERT_TRUE(eventually([&] { return query(db("crm2"), "SELECT count(*) FROM accounts WHERE id = 4") == "1\n"; }, 30s))
      << log("sync");
  EXPECT_EQ(query(db("crm2"), "SELECT * FROM accounts ORDER BY id"),
            query(db("crm"), "SELECT * FROM accounts WHERE region = 'north' ORDER BY id"));
}

}  // namespace
}  // namespace ipcsync::sync::test
