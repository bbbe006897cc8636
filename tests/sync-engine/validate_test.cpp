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
  EXPECT_NE(out.find("invalid topology (1 errors)"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "state" / "crm")) << "a plugin host was started";
}

}  // namespace
}  // namespace ipcsync::test
