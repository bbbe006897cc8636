// Each conflict policy end to end under the whole daemon: the same account row is changed at the
// CRM and at its replica while the sync engine is held (SIGSTOP), then let go; the row each side
// ends with, the parked conflicts `ipcsync conflicts` lists and what `ipcsync conflicts resolve ID
// --take source|target` does with them.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <sstream>
#include <thread>
#include <tuple>

#include "daemon_fixture.h"

namespace ipcsync::sync::test {
namespace {

using namespace std::chrono_literals;

class ConflictPolicyTest : public SyncDaemonTest {
 protected:
  // crm -> crm2 (accounts) with `policy`; rows 1 and 2 written at crm and synced to crm2.
  void startPair(const std::string& policy, bool bidirectional) {
    std::string route = "  - name: pair\n    from: crm\n    to: crm2\n    tables: [accounts]\n    conflict: " + policy + "\n";
    if (policy == "last_writer_wins") route += "    timestamp_column: updated_at\n";
    if (bidirectional) route += "    bidirectional: true\n";
    writeConfig({{"crm", "crm"}, {"crm2", "crm"}}, route);
    ASSERT_TRUE(startDaemon());
    exec(db("crm"), "INSERT INTO accounts VALUES(1,'one','north','retail',1000);"
                    "INSERT INTO accounts VALUES(2,'two','south','retail',1000);");
    ASSERT_TRUE(eventually([&] { return rows("crm2") == "1|one|1000\n2|two|1000\n" && drained(); }, 30s))
        << rows("crm2") << syncStatus().dump(1);
  }
  // Runs `atCrm` and `atCrm2` while the sync engine is stopped, so neither side's change reaches
  // the other first; then waits until everything was delivered.
  void concurrently(const std::string& atCrm, const std::string& atCrm2) {
    const pid_t sync = pidOf("sync");
    ASSERT_GT(sync, 0);
    ASSERT_EQ(::kill(sync, SIGSTOP), 0);
    exec(db("crm"), atCrm);
    exec(db("crm2"), atCrm2);
    std::this_thread::sleep_for(100ms);  // both hosts cut their change-sets meanwhile
    ASSERT_EQ(::kill(sync, SIGCONT), 0);
    ASSERT_TRUE(eventually([&] {
      auto s = syncStatus();
      return drained() && s["sources"].size() == 2 && s["sources"][0]["journaled_through"] > 1 &&
             s["sources"][1]["journaled_through"] > 0;
    }, 30s)) << syncStatus().dump(1);
  }
  std::string rows(const std::string& instance) const {
    return query(db(instance), "SELECT id, name, updated_at FROM accounts ORDER BY id");
  }
  std::uint64_t conflicts(const std::string& route, const std::string& subscriber) const {
    const auto r = routeStatus(route, subscriber);
    return r.is_null() ? 0 : r.at("conflicts").get<std::uint64_t>();
  }
};

TEST_F(ConflictPolicyTest, SourceWinsReplacesTheTargetsRowWithTheSources) {
  startPair("source_wins", false);
  concurrently("UPDATE accounts SET name = 'crm', updated_at = 2000 WHERE id = 1;",
               "UPDATE accounts SET name = 'crm2', updated_at = 3000 WHERE id = 1;");
  EXPECT_EQ(rows("crm2"), "1|crm|2000\n2|two|1000\n");
  EXPECT_EQ(rows("crm"), rows("crm2"));
  EXPECT_EQ(conflicts("pair", "crm2"), 1u) << syncStatus().dump(1);
}

TEST_F(ConflictPolicyTest, TargetWinsKeepsTheTargetsRowAndTheRouteCarriesOn) {
  startPair("target_wins", false);
  concurrently("UPDATE accounts SET name = 'crm', updated_at = 2000 WHERE id = 1;",
               "UPDATE accounts SET name = 'crm2', updated_at = 3000 WHERE id = 1;");
  EXPECT_EQ(rows("crm2"), "1|crm2|3000\n2|two|1000\n");
  EXPECT_EQ(conflicts("pair", "crm2"), 1u) << syncStatus().dump(1);
  // Not stuck: a later change to the row, made from what the target holds, is applied.
  exec(db("crm"), "UPDATE accounts SET name = 'two again', updated_at = 4000 WHERE id = 2;");
  EXPECT_TRUE(eventually([&] { return rows("crm2") == "1|crm2|3000\n2|two again|4000\n"; }, 30s)) << rows("crm2");
}

TEST_F(ConflictPolicyTest, LastWriterWinsKeepsTheNewerRowOnBothSidesWhicheverSideWroteIt) {
  startPair("last_writer_wins", true);
  // Row 1: crm wrote later; row 2: crm2 did. Each delivery compares both ways round.
  concurrently("UPDATE accounts SET name = 'crm', updated_at = 3000 WHERE id = 1;"
               "UPDATE accounts SET name = 'crm', updated_at = 2000 WHERE id = 2;",
               "UPDATE accounts SET name = 'crm2', updated_at = 2000 WHERE id = 1;"
               "UPDATE accounts SET name = 'crm2', updated_at = 3000 WHERE id = 2;");
  EXPECT_EQ(rows("crm"), "1|crm|3000\n2|crm2|3000\n");
  EXPECT_EQ(rows("crm2"), "1|crm|3000\n2|crm2|3000\n");
  EXPECT_EQ(conflicts("pair", "crm2"), 2u) << syncStatus().dump(1);
  EXPECT_EQ(conflicts("pair.reverse.crm2", "crm"), 2u) << syncStatus().dump(1);
  EXPECT_EQ(query(db("crm"), "SELECT * FROM accounts ORDER BY id"), query(db("crm2"), "SELECT * FROM accounts ORDER BY id"));
}

// One row of `ipcsync conflicts list`: its id, subscriber and key (the first, fourth and last words).
struct Listed {
  std::string id, subscriber, key;
};
std::vector<Listed> parseConflicts(const std::string& out) {
  std::vector<Listed> rows;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    if (w.size() < 5 || w[0] == "ID") continue;
    rows.push_back({w[0], w[3], w.back()});
  }
  return rows;
}

TEST_F(ConflictPolicyTest, ParkedConflictsAreListedAndResolvedByTakeSourceOrTakeTarget) {
  startPair("park", true);
  concurrently("UPDATE accounts SET name = 'crm', updated_at = 2000 WHERE id IN (1, 2);",
               "UPDATE accounts SET name = 'crm2', updated_at = 3000 WHERE id IN (1, 2);");
  // Parked: neither side changed; each side's change waits at the other, four in all.
  EXPECT_EQ(rows("crm"), "1|crm|2000\n2|crm|2000\n");
  EXPECT_EQ(rows("crm2"), "1|crm2|3000\n2|crm2|3000\n");
  std::vector<Listed> listed;
  ASSERT_TRUE(eventually([&] {
    listed = parseConflicts(cli({"conflicts", "list"}).second);
    return listed.size() == 4;
  }, 10s)) << cli({"conflicts", "list"}).second;
  std::map<std::pair<std::string, std::string>, std::string> ids;  // (subscriber, key) -> id
  for (const auto& l : listed) ids[{l.subscriber, l.key}] = l.id;
  const std::string key1 = R"({"id":1})", key2 = R"({"id":2})";
  ASSERT_EQ(ids.size(), 4u) << cli({"conflicts", "list"}).second;
  // Row 1 becomes crm's everywhere: crm2 takes the source (crm), crm keeps its own (target).
  // Row 2 becomes crm2's everywhere: crm2 keeps its own, crm takes the source (crm2).
  const std::tuple<std::string, std::string, std::string> steps[] = {
      {"crm2", key1, "source"}, {"crm", key1, "target"}, {"crm2", key2, "target"}, {"crm", key2, "source"}};
  for (const auto& [subscriber, key, take] : steps) {
    const auto id = ids[{subscriber, key}];
    ASSERT_FALSE(id.empty()) << subscriber << " " << key;
    const auto [code, out] = cli({"conflicts", "resolve", id, "--take", take});
    EXPECT_EQ(code, 0) << out;
  }
  ASSERT_TRUE(eventually([&] { return cli({"conflicts", "list"}).second.find("no unresolved conflicts") == 0; }, 20s))
      << cli({"conflicts", "list"}).second << daemonLog();
  EXPECT_EQ(rows("crm"), "1|crm|2000\n2|crm2|3000\n");
  EXPECT_EQ(rows("crm2"), "1|crm|2000\n2|crm2|3000\n");
  EXPECT_EQ(query(db("crm"), "SELECT * FROM accounts ORDER BY id"), query(db("crm2"), "SELECT * FROM accounts ORDER BY id"));
  // Resolved once: a second answer is refused (exit 1), and the rows stay.
  const auto [again, out] = cli({"conflicts", "resolve", ids[{"crm2", key1}], "--take", "target"});
  EXPECT_EQ(again, 1) << out;
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(rows("crm2"), "1|crm|2000\n2|crm2|3000\n");
  // The resolutions did not echo back as new changes: both journals' heads stay put.
  EXPECT_TRUE(drained()) << syncStatus().dump(1);
}

// What the disabled test below asks of a bidirectional source_wins route, written as two one-way
// routes: the reverse direction resolves with target_wins, so crm's row wins on both sides and
// the replicas converge (this is also today's workaround).
TEST_F(ConflictPolicyTest, MirroredPoliciesOnTheTwoDirectionsConvergeOnTheRouteSourcesRow) {
  writeConfig({{"crm", "crm"}, {"crm2", "crm"}},
              "  - name: there\n    from: crm\n    to: crm2\n    tables: [accounts]\n    conflict: source_wins\n"
              "  - name: back\n    from: crm2\n    to: crm\n    tables: [accounts]\n    conflict: target_wins\n");
  ASSERT_TRUE(startDaemon());
  exec(db("crm"), "INSERT INTO accounts VALUES(1,'one','north','retail',1000);");
  ASSERT_TRUE(eventually([&] { return rows("crm2") == "1|one|1000\n" && drained(); }, 30s)) << rows("crm2");
  concurrently("UPDATE accounts SET name = 'crm', updated_at = 2000 WHERE id = 1;",
               "UPDATE accounts SET name = 'crm2', updated_at = 3000 WHERE id = 1;");
  EXPECT_EQ(rows("crm"), "1|crm|2000\n");
  EXPECT_EQ(rows("crm2"), "1|crm|2000\n");
}

// On a bidirectional route "source" is the route's `from` in both directions: with source_wins
// crm's row wins on both sides. (The reverse delivery crm2 -> crm once ran with the same policy,
// so each side took the other's row and the replicas ended swapped.)
TEST_F(ConflictPolicyTest, BidirectionalSourceWinsLeavesBothReplicasWithTheRouteSourcesRow) {
  startPair("source_wins", true);
  concurrently("UPDATE accounts SET name = 'crm', updated_at = 2000 WHERE id = 1;",
               "UPDATE accounts SET name = 'crm2', updated_at = 3000 WHERE id = 1;");
  EXPECT_EQ(rows("crm"), "1|crm|2000\n2|two|1000\n");
  EXPECT_EQ(rows("crm2"), "1|crm|2000\n2|two|1000\n");
}

}  // namespace
}  // namespace ipcsync::sync::test
