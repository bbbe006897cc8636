// `ipcsync validate` against the real crm.so and mining.so (their --describe through the real
// ipcsync-plugin-host), and ipcsyncd refusing to start on an invalid topology (exit 2).
#include <gtest/gtest.h>

#include <fstream>

#include "processes.h"
#include "run_program.h"

namespace ipcsync::test {
namespace {

class ValidateTest : public ::testing::Test {
 protected:
  std::filesystem::path file() const { return dir.path() / "topology.yaml"; }
  // crm, crm2 and mining from the build's plugins, then `routes` (which so starts on line 8).
  std::pair<int, std::string> validate(const std::string& routes) {
    std::ofstream(file()) << "plugins_dir: " << IPCSYNC_PLUGINS_DIR << "\nplugin_host: " << IPCSYNC_PLUGIN_HOST
                          << "\nstate_dir: " << (dir.path() / "state").string()
                          << "\nplugins:\n  - {name: crm, library: crm.so}\n  - {name: crm2, library: crm.so}\n"
                             "  - {name: mining, library: mining.so}\n"
                          << routes;
    return runProgram({IPCSYNC_CLI, "validate", file().string()});
  }
  std::string at(int line, int col) const { return file().string() + ":" + std::to_string(line) + ":" + std::to_string(col) + ": "; }
  TempDir dir;
};

TEST_F(ValidateTest, TheExampleConfigurationIsValid) {
  const std::string example = std::string(IPCSYNC_SOURCE_DIR) + "/config/example.yaml";
  const auto [code, out] = runProgram({IPCSYNC_CLI, "validate", example});
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, example + ": ok (3 plugins, 2 routes)\n");
}

TEST_F(ValidateTest, ATableTheTargetDoesNotAcceptIsRefused) {
  const auto [code, out] = validate("routes:\n  - from: crm\n    to: mining\n    tables: [accounts, contacts]\n");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find(at(11, 24) + "route 'crm-to-mining': table 'contacts' is not accepted by 'mining' (mining.so accepts: "
                                  "accounts, orders)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(file().string() + ": invalid (1 error)"), std::string::npos) << out;
}

TEST_F(ValidateTest, ARenameTheTargetDoesNotAcceptIsRefused) {
  const auto [code, out] = validate("routes:\n  - from: crm\n    to: crm2\n    tables: [{name: orders, rename: sales}]\n");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("table 'sales' (renamed from 'orders') is not accepted by 'crm2'"), std::string::npos) << out;
}

TEST_F(ValidateTest, AnExcludedPrimaryKeyIsRefused) {
  const auto [code, out] = validate("routes:\n  - from: crm\n    to: mining\n    tables:\n      - {name: accounts, exclude: [industry, id]}\n");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find(at(12, 9) + "route 'crm-to-mining': 'exclude' names column 'id', which is part of the primary key of "
                                 "'accounts'"),
            std::string::npos)
      << out;
}

TEST_F(ValidateTest, AFilterThatDoesNotCompileIsRefusedWithSqlitesReason) {
  const auto [code, out] = validate(
      "routes:\n  - from: crm\n    to: mining\n    tables:\n      - {name: orders, filter: \"quantity >\"}\n"
      "      - {name: accounts, filter: \"regoin = 'north'\"}\n");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find(at(12, 9) + "route 'crm-to-mining': filter of table 'orders' does not compile as an SQL expression over "
                                 "its columns: near \")\": syntax error (filter: quantity >)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(at(13, 9) + "route 'crm-to-mining': filter of table 'accounts' does not compile as an SQL expression "
                                 "over its columns: no such column: regoin"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("invalid (2 errors)"), std::string::npos) << out;
}

TEST_F(ValidateTest, AMissingTimestampColumnIsRefused) {
  const auto [code, out] = validate(
      "routes:\n  - from: crm\n    to: crm2\n    tables: [accounts]\n    conflict: last_writer_wins\n"
      "    timestamp_column: modified\n");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find(at(11, 14) + "route 'crm-to-crm2': timestamp_column 'modified' is not a column of table 'accounts' of "
                                  "'crm'; columns of 'accounts': id, name, region, industry, updated_at"),
            std::string::npos)
      << out;
}

TEST_F(ValidateTest, ABadYamlKeyIsRefusedBeforeAnyPluginIsAsked) {
  const auto [code, out] = validate("routes:\n  - from: crm\n    to: mining\n    bidirectionel: true\n");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find(at(11, 5) + "unknown key 'bidirectionel' in a route; did you mean 'bidirectional'?"), std::string::npos) << out;
}

TEST_F(ValidateTest, AMissingFileCannotBeValidated) {
  const auto [code, out] = runProgram({IPCSYNC_CLI, "validate", (dir.path() / "nope.yaml").string()});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("nope.yaml: no such file"), std::string::npos) << out;
}

TEST_F(ValidateTest, TheDaemonRefusesToStartOnAnInvalidTopologyWithExitCodeTwo) {
  validate("routes:\n  - from: crm\n    to: mining\n    tables: [interactions]\n");
  const auto [code, out] = runProgram({IPCSYNC_DAEMON, "--config", file().string(), "--namespace",
                                       "hd5-invalid-" + std::to_string(::getpid()), "--runtime-dir", dir.path().string()});
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find(at(11, 14) + "route 'crm-to-mining': table 'interactions' is not accepted by 'mining'"), std::string::npos)
      << out;
  EXPECT_NE(out.find("invalid topology (1 error); check it with"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "state" / "crm")) << "a plugin host was started";
}

// Two ways from one origin to one subscriber (a diamond) would deliver each change twice, and the
// copies, under two cursors, can arrive out of order: refused, naming both ways and what to do.
TEST_F(ValidateTest, TwoWaysThatCarryOneTableToOneSubscriberAreRefusedNamingBoth) {
  const auto [code, out] = validate(
      "routes:\n"
      "  - {name: replicas, from: crm, to: crm2, bidirectional: true}\n"
      "  - {name: crm-to-mining, from: crm, to: mining}\n"
      "  - {name: crm2-to-mining, from: crm2, to: mining}\n");
  EXPECT_EQ(code, 2) << out;
  const std::string fix = ". The copies travel apart, so an older one could overwrite a newer row; keep one way: leave these "
                          "tables out of one of the routes on these ways, or remove one";
  EXPECT_NE(out.find(at(11, 5) + "route 'crm2-to-mining': 'mining' would receive each change 'crm' makes to tables accounts, "
                                 "orders twice: by route 'crm-to-mining' (crm → mining) and by route 'crm2-to-mining' (crm → crm2 → "
                                 "mining)" + fix),
            std::string::npos)
      << out;
  // And crm2's changes, which reach mining through crm by the replicas' reverse direction.
  EXPECT_NE(out.find("'mining' would receive each change 'crm2' makes to tables accounts, orders twice: by route 'crm-to-mining' "
                     "(crm2 → crm → mining) and by route 'crm2-to-mining' (crm2 → mining)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("invalid (2 errors)"), std::string::npos) << out;
}

TEST_F(ValidateTest, TwoRoutesThatBothCarryATableFromOneSourceToOneTargetAreRefused) {
  const auto [code, out] = validate(
      "routes:\n  - {name: a, from: crm, to: mining, tables: [accounts]}\n"
      "  - {name: b, from: crm, to: mining, tables: [accounts, orders]}\n");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find(at(10, 5) + "route 'b': 'mining' would receive each change 'crm' makes to table accounts twice: by route 'a' "
                                 "(crm → mining) and by route 'b' (crm → mining)"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("orders twice"), std::string::npos) << out;
}

// A row filter on one way does not make the other's copies harmless: the rows it lets through
// still arrive twice.
TEST_F(ValidateTest, AFilteredWayBesideAWholeOneIsStillTwoWays) {
  const auto [code, out] = validate(
      "routes:\n  - {name: ab, from: crm, to: crm2}\n  - {name: bm, from: crm2, to: mining}\n"
      "  - {name: am, from: crm, to: mining, tables: [{name: orders, filter: \"quantity > 5\"}]}\n");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("route 'am': 'mining' would receive each change 'crm' makes to table orders twice: by route 'bm' (crm → crm2 → "
                     "mining) and by route 'am' (crm → mining)"),
            std::string::npos)
      << out;
}

// Two routes that carry one table under two names deliver each change once to each of two tables:
// nothing is overwritten twice, so that is valid.
TEST_F(ValidateTest, OneTableCarriedTwiceUnderTwoNamesIsValid) {
  const auto [code, out] = validate(
      "routes:\n  - {name: a, from: crm, to: crm2, tables: [accounts]}\n"
      "  - {name: b, from: crm, to: crm2, tables: [{name: accounts, rename: contacts}]}\n");
  // (validate checks names, not column shapes: the sync engine would refuse accounts' columns in
  // contacts when it builds the route; what matters here is that no two ways are reported.)
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out.find("twice"), std::string::npos) << out;
}

// The same shape is fine when the ways carry different tables: each change has one way.
TEST_F(ValidateTest, ADiamondWhoseWaysCarryDifferentTablesIsValid) {
  const auto [code, out] = validate(
      "routes:\n"
      "  - {name: replicas, from: crm, to: crm2, bidirectional: true}\n"
      "  - {name: crm-to-mining, from: crm, to: mining, tables: [accounts]}\n"
      "  - {name: crm2-to-mining, from: crm2, to: mining, tables: [orders]}\n");
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, file().string() + ": ok (3 plugins, 3 routes)\n");
}

}  // namespace
}  // namespace ipcsync::test
