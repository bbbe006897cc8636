// Dead letters end to end under the whole daemon: a change-set the replica refuses (a unique
// index only the replica has) goes to the dead letters while the route carries on; replayed
// before the cause is fixed it fails again and stays; after the fix `ipcsync deadletter replay ID`
// applies it exactly once, also across a kill -9 of the whole daemon afterwards.
#include <gtest/gtest.h>

#include <sstream>
#include <thread>
#include <tuple>

#include "daemon_fixture.h"

namespace ipcsync::sync::test {
namespace {

using namespace std::chrono_literals;

struct Letter {
  std::string id, sequence, attempts;
};
// The rows of `ipcsync deadletter list` (ID ROUTE SUBSCRIBER SEQUENCE ATTEMPTS ...).
std::vector<Letter> parseLetters(const std::string& out) {
  std::vector<Letter> rows;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    if (w.size() < 6 || w[0] == "ID") continue;
    rows.push_back({w[0], w[3], w[4]});
  }
  return rows;
}

TEST_F(SyncDaemonTest, DeadLetterReplayedAfterTheFixIsAppliedExactlyOnce) {
  writeConfig({{"crm", "crm"}, {"crm2", "crm"}},
              "  - name: pair\n    from: crm\n    to: crm2\n    tables: [accounts]\n    max_retries: 2\n");
  ASSERT_TRUE(startDaemon());
  // The replica has a rule the CRM does not: account names are unique there.
  exec(db("crm2"), "CREATE UNIQUE INDEX accounts_name ON accounts(name);"
                   "INSERT INTO accounts VALUES(100,'taken','north',NULL,1);");
  const auto ids = [&] { return query(db("crm2"), "SELECT id FROM accounts ORDER BY id"); };
  // One change-set each (a change-set is applied whole or not at all).
  exec(db("crm"), "INSERT INTO accounts VALUES(1,'free','north',NULL,1);");
  ASSERT_TRUE(eventually([&] { return ids() == "1\n100\n"; }, 30s)) << ids() << daemonLog();
  exec(db("crm"), "INSERT INTO accounts VALUES(2,'taken','south',NULL,1);");
  std::vector<Letter> letters;
  ASSERT_TRUE(eventually([&] {
    letters = parseLetters(cli({"deadletter", "list"}).second);
    return letters.size() == 1;
  }, 30s)) << cli({"deadletter", "list"}).second << daemonLog();
  const auto listed = cli({"deadletter", "list"}).second;
  EXPECT_NE(listed.find("violates a constraint"), std::string::npos) << listed;
  // The route carries on past the poison change-set.
  exec(db("crm"), "INSERT INTO accounts VALUES(3,'later','east',NULL,1);");
  ASSERT_TRUE(eventually([&] { return ids() == "1\n3\n100\n"; }, 30s)) << ids() << daemonLog();
  const std::string sequence = letters[0].sequence;

  // Replayed before the fix: it fails again and stays a dead letter, one more attempt counted.
  auto [code, out] = cli({"deadletter", "replay", letters[0].id});
  ASSERT_EQ(code, 0) << out;
  ASSERT_TRUE(eventually([&] {
    const auto l = parseLetters(cli({"deadletter", "list"}).second);
    return l.size() == 1 && l[0].sequence == sequence && std::stoi(l[0].attempts) > std::stoi(letters[0].attempts) &&
           cli({"deadletter", "list"}).second.find("requested") == std::string::npos;
  }, 20s)) << cli({"deadletter", "list"}).second << daemonLog();
  EXPECT_EQ(ids(), "1\n3\n100\n");
  letters = parseLetters(cli({"deadletter", "list"}).second);
  ASSERT_EQ(letters.size(), 1u);

  // The fix, then the replay: applied once.
  exec(db("crm2"), "DROP INDEX accounts_name;");
  std::tie(code, out) = cli({"deadletter", "replay", letters[0].id});
  ASSERT_EQ(code, 0) << out;
  ASSERT_TRUE(eventually([&] { return cli({"deadletter", "list"}).second.find("no dead letters") == 0; }, 20s))
      << cli({"deadletter", "list"}).second << daemonLog();
  EXPECT_EQ(query(db("crm2"), "SELECT id, name FROM accounts ORDER BY id"), "1|free\n2|taken\n3|later\n100|taken\n");
  EXPECT_EQ(query(db("crm2"), "SELECT count(*) FROM _ipcsync_applied WHERE route LIKE 'pair#deadletter-%'"), "1\n");
  EXPECT_EQ(routeStatus("pair", "crm2")["conflicts"], 0) << syncStatus().dump(1);
  // The letter is gone: asking again names the id as unknown (exit 3).
  std::tie(code, out) = cli({"deadletter", "replay", letters[0].id});
  EXPECT_EQ(code, 3) << out;

  // A kill -9 of everything afterwards applies nothing again, and the route still works.
  killDaemon();
  ASSERT_TRUE(startDaemon());
  exec(db("crm"), "INSERT INTO accounts VALUES(4,'after','west',NULL,1);");
  ASSERT_TRUE(eventually([&] { return ids() == "1\n2\n3\n4\n100\n" && drained(); }, 60s)) << ids() << daemonLog();
  EXPECT_EQ(cli({"deadletter", "list"}).second.find("no dead letters"), 0u);
  EXPECT_EQ(routeStatus("pair", "crm2")["conflicts"], 0) << syncStatus().dump(1);
  EXPECT_EQ(routeStatus("pair", "crm2")["duplicates"], 0) << syncStatus().dump(1);
}

// A replay that fails again leaves the same letter (same id, one more attempt) for the operator to
// retry. (It used to be removed and recorded anew: the id the operator had just used was gone, and
// a kill between the two lost the letter and with it the pin that keeps its change-set in the journal.)
TEST_F(SyncDaemonTest, AReplayThatFailsAgainKeepsTheLetterAndItsId) {
  writeConfig({{"crm", "crm"}, {"crm2", "crm"}},
              "  - name: pair\n    from: crm\n    to: crm2\n    tables: [accounts]\n    max_retries: 1\n");
  ASSERT_TRUE(startDaemon());
  exec(db("crm2"), "CREATE UNIQUE INDEX accounts_name ON accounts(name);"
                   "INSERT INTO accounts VALUES(100,'taken','north',NULL,1);");
  exec(db("crm"), "INSERT INTO accounts VALUES(2,'taken','south',NULL,1);");
  std::vector<Letter> letters;
  ASSERT_TRUE(eventually([&] {
    letters = parseLetters(cli({"deadletter", "list"}).second);
    return letters.size() == 1;
  }, 30s)) << cli({"deadletter", "list"}).second;
  const auto [code, out] = cli({"deadletter", "replay", letters[0].id});
  ASSERT_EQ(code, 0) << out;
  ASSERT_TRUE(eventually([&] {
    const auto l = parseLetters(cli({"deadletter", "list"}).second);
    return l.size() == 1 && l[0].attempts != letters[0].attempts;
  }, 20s)) << cli({"deadletter", "list"}).second;
  EXPECT_EQ(parseLetters(cli({"deadletter", "list"}).second)[0].id, letters[0].id) << cli({"deadletter", "list"}).second;
}

}  // namespace
}  // namespace ipcsync::sync::test
