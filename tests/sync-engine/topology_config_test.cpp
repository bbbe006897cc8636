// The topology keys of the daemon's YAML file: routes and journal. Every bad value is refused
// with file:line:col, what was found and what was expected; nothing is half-applied (a refused
// file yields no configuration at all).
#include <gtest/gtest.h>

#include <fstream>

#include "ipcsync/sync/engine_config_file.h"
#include "processes.h"

namespace ipcsync {
namespace {

constexpr const char* kInstances = R"(plugins:
  - {name: crm, library: crm.so}
  - {name: crm2, library: crm.so}
  - {name: mining, library: mining.so}
)";

class TopologyConfigTest : public ::testing::Test {
 protected:
  TopologyConfigTest() {
    std::filesystem::create_directories(plugins());
    std::ofstream(plugins() / "crm.so") << "not really a library";
    std::ofstream(plugins() / "mining.so") << "not really a library";
  }
  std::filesystem::path plugins() const { return dir.path() / "plugins"; }
  std::filesystem::path file() const { return dir.path() / "engine.yaml"; }
  // Loads the three instances above followed by `text` (which so starts on line 5).
  std::expected<DaemonConfig, ConfigError> load(const std::string& text) {
    std::ofstream(file()) << kInstances << text;
    DaemonConfig base;
    base.plugins.pluginsDir = plugins();
    return loadDaemonConfig(file(), base);
  }
  std::string errorOf(const std::string& text) {
    auto r = load(text);
    EXPECT_FALSE(r) << "accepted:\n" << text;
    return r ? std::string() : r.error().message;
  }
  std::string at(int line, int col) const { return file().string() + ":" + std::to_string(line) + ":" + std::to_string(col) + ": "; }
  test::TempDir dir;
};

TEST_F(TopologyConfigTest, ReadsRoutesTableRulesAndTheJournal) {
  auto c = load(R"(routes:
  - name: feed
    from: crm
    to: [mining, crm2]
    tables:
      - accounts
      - {name: orders, rename: sales, exclude: [product], filter: "quantity > 0"}
      - {name: contacts, include: [name, email]}
    conflict: last_writer_wins
    timestamp_column: updated_at
    snapshot: true
    max_retries: 9
  - from: crm2
    to: crm
    bidirectional: yes
    conflict: park
journal:
  path: j/journal.db
  durability: full
  group_commit_ms: 5
  group_commit_max: 64
  max_bytes: 64MiB
  warn_at_percent: 90
  retention_s: 3600
  piece_bytes: 64KiB
)");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->topology.routes.size(), 2u);
  const auto& r = c->topology.routes[0];
  EXPECT_EQ(r.name, "feed");
  EXPECT_EQ(r.from, "crm");
  EXPECT_EQ(r.to, (std::vector<std::string>{"mining", "crm2"}));
  ASSERT_EQ(r.tables.size(), 3u);
  EXPECT_EQ(r.tables[0].table, "accounts");
  EXPECT_EQ(r.tables[1].renameTo, "sales");
  EXPECT_EQ(r.tables[1].excludeColumns, std::vector<std::string>{"product"});
  EXPECT_EQ(r.tables[1].rowFilter, "quantity > 0");
  EXPECT_EQ(r.tables[2].includeColumns, (std::vector<std::string>{"name", "email"}));
  EXPECT_EQ(r.tables[1].where, at(11, 9).substr(0, at(11, 9).size() - 2));
  EXPECT_EQ(r.conflict, ConflictPolicy::LastWriterWins);
  EXPECT_EQ(r.timestampColumn, "updated_at");
  EXPECT_TRUE(r.snapshot);
  EXPECT_EQ(r.maxRetries, 9u);
  const auto& r2 = c->topology.routes[1];
  EXPECT_EQ(r2.name, "crm2-to-crm") << "the default name is <from>-to-<first target>";
  EXPECT_TRUE(r2.bidirectional);
  EXPECT_EQ(r2.conflict, ConflictPolicy::Park);
  EXPECT_TRUE(r2.tables.empty());
  const auto& j = c->topology.journal;
  EXPECT_EQ(j.path, (dir.path() / "j/journal.db").lexically_normal()) << "relative to the file's directory";
  EXPECT_EQ(j.durability, Durability::Full);
  EXPECT_EQ(j.groupCommit, std::chrono::milliseconds(5));
  EXPECT_EQ(j.groupCommitMax, 64u);
  EXPECT_EQ(j.maxBytes, 64ull << 20);
  EXPECT_EQ(j.warnAtPercent, 90u);
  EXPECT_EQ(j.retention, std::chrono::seconds(3600));
  EXPECT_EQ(j.pieceBytes, 64ull << 10);
  EXPECT_EQ(effectiveJournalPath(*c), j.path);
}

TEST_F(TopologyConfigTest, KeepsTheDocumentedDefaultsWhenKeysAreAbsent) {
  auto c = load("routes:\n  - {from: crm, to: mining}\n");
  ASSERT_TRUE(c) << c.error().message;
  const auto& r = c->topology.routes.at(0);
  EXPECT_EQ(r.conflict, ConflictPolicy::SourceWins);
  EXPECT_FALSE(r.bidirectional);
  EXPECT_FALSE(r.snapshot);
  EXPECT_EQ(r.maxRetries, 5u);
  const JournalConfig defaults;
  EXPECT_EQ(c->topology.journal.maxBytes, defaults.maxBytes);
  EXPECT_EQ(c->topology.journal.durability, Durability::Normal);
  EXPECT_TRUE(c->topology.journal.path.empty());
}

TEST_F(TopologyConfigTest, AnUnknownRouteKeyIsRefusedWithTheNearestKnownOne) {
  const auto e = errorOf("routes:\n  - from: crm\n    to: mining\n    tabels: [accounts]\n");
  EXPECT_NE(e.find(at(8, 5) + "unknown key 'tabels' in a route; did you mean 'tables'?"), std::string::npos) << e;
}

TEST_F(TopologyConfigTest, AnUnknownJournalKeyIsRefusedWithTheNearestKnownOne) {
  const auto e = errorOf("journal:\n  max_byte: 1GiB\n");
  EXPECT_NE(e.find(at(6, 3) + "unknown key 'max_byte' in 'journal'; did you mean 'max_bytes'?"), std::string::npos) << e;
}

TEST_F(TopologyConfigTest, AnUnknownTableRuleKeyIsRefusedWithTheNearestKnownOne) {
  const auto e = errorOf("routes:\n  - from: crm\n    to: mining\n    tables:\n      - {name: orders, filtre: \"x\"}\n");
  EXPECT_NE(e.find(at(9, 24) + "unknown key 'filtre' in a table of route 'crm-to-mining'; did you mean 'filter'?"),
            std::string::npos)
      << e;
}

TEST_F(TopologyConfigTest, ARouteFromAnUnknownInstanceIsRefusedWithTheNearestConfiguredOne) {
  const auto e = errorOf("routes:\n  - from: crn\n    to: mining\n");
  EXPECT_NE(e.find(at(6, 11) + "route 'at " + at(6, 5).substr(0, at(6, 5).size() - 2) +
                   "': 'from' names 'crn', which is not a configured plugin instance; did you mean 'crm'?"),
            std::string::npos)
      << e;
}

TEST_F(TopologyConfigTest, ARouteToAnUnknownInstanceIsRefusedListingTheConfiguredOnes) {
  const auto e = errorOf("routes:\n  - name: r\n    from: crm\n    to: [mining, warehouse]\n");
  EXPECT_NE(e.find(at(8, 18) + "route 'r': 'to' names 'warehouse', which is not a configured plugin instance; "
                               "configured instances: crm, crm2, mining"),
            std::string::npos)
      << e;
}

TEST_F(TopologyConfigTest, ARouteFromAnInstanceToItselfIsRefused) {
  const auto e = errorOf("routes:\n  - name: loop\n    from: crm\n    to: [mining, crm]\n");
  EXPECT_NE(e.find(at(8, 18) + "route 'loop' goes from 'crm' to itself"), std::string::npos) << e;
}

TEST_F(TopologyConfigTest, DuplicateRouteNamesAreRefusedNamingTheFirst) {
  const auto e = errorOf("routes:\n  - {name: r, from: crm, to: mining}\n  - name: r\n    from: crm2\n    to: mining\n");
  EXPECT_NE(e.find(at(7, 11) + "duplicate route name 'r' (first defined at " + file().string() + ":6:5)"), std::string::npos)
      << e;
}

TEST_F(TopologyConfigTest, TwoUnnamedRoutesWithTheSameDefaultNameAreRefused) {
  const auto e = errorOf("routes:\n  - {from: crm, to: mining}\n  - {from: crm, to: [mining]}\n");
  EXPECT_NE(e.find(at(7, 5) + "duplicate route name 'crm-to-mining'"), std::string::npos) << e;
  EXPECT_NE(e.find("give each a 'name'"), std::string::npos) << e;
}

TEST_F(TopologyConfigTest, LastWriterWinsWithoutATimestampColumnIsRefused) {
  const auto e = errorOf("routes:\n  - from: crm\n    to: crm2\n    conflict: last_writer_wins\n");
  EXPECT_NE(e.find(at(8, 15) + "route 'crm-to-crm2' resolves conflicts by last_writer_wins but has no 'timestamp_column'"),
            std::string::npos)
      << e;
}

TEST_F(TopologyConfigTest, AnUnknownConflictPolicyIsRefusedWithTheNearestOne) {
  const auto e = errorOf("routes:\n  - from: crm\n    to: crm2\n    conflict: source_win\n");
  EXPECT_NE(e.find(at(8, 15) + "'conflict' is 'source_win'; expected source_wins, target_wins, last_writer_wins or park "
                               "(did you mean 'source_wins'?)"),
            std::string::npos)
      << e;
}

TEST_F(TopologyConfigTest, IncludeAndExcludeTogetherAreRefused) {
  const auto e = errorOf("routes:\n  - from: crm\n    to: mining\n    tables:\n      - {name: orders, include: [id], exclude: [product]}\n");
  EXPECT_NE(e.find(at(9, 48) + "table 'orders' of route 'crm-to-mining' has both 'include' and 'exclude'"), std::string::npos)
      << e;
}

TEST_F(TopologyConfigTest, ATableListedTwiceInARouteIsRefused) {
  const auto e = errorOf("routes:\n  - from: crm\n    to: mining\n    tables: [orders, accounts, orders]\n");
  EXPECT_NE(e.find(at(8, 32) + "table 'orders' appears twice in route 'crm-to-mining' (first at " + file().string() + ":8:14)"),
            std::string::npos)
      << e;
}

TEST_F(TopologyConfigTest, BadScalarsAreRefusedWithWhatWasExpected) {
  EXPECT_NE(errorOf("routes:\n  - {from: crm, to: mining, snapshot: maybe}\n")
                .find(at(6, 39) + "'snapshot' is 'maybe'; expected true or false"),
            std::string::npos);
  EXPECT_NE(errorOf("routes:\n  - {from: crm, to: mining, max_retries: -1}\n")
                .find(at(6, 42) + "'max_retries' is '-1'; expected a whole number from 1 to 1000"),
            std::string::npos);
  // 0 would dead-letter a change-set before its first attempt; the sync engine refused it at start.
  EXPECT_NE(errorOf("routes:\n  - {from: crm, to: mining, max_retries: 0}\n")
                .find(at(6, 42) + "'max_retries' is '0'; expected a whole number from 1 to 1000"),
            std::string::npos);
  EXPECT_NE(errorOf("journal:\n  durability: always\n").find(at(6, 15) + "'durability' is 'always'; expected full, normal or off"),
            std::string::npos);
  EXPECT_NE(errorOf("journal:\n  max_bytes: 1TB\n").find(at(6, 14) + "'max_bytes' is '1TB'; unknown unit 'TB'"), std::string::npos);
  EXPECT_NE(errorOf("journal:\n  max_bytes: 1MiB\n  piece_bytes: 2MiB\n")
                .find(at(7, 16) + "'piece_bytes' (2097152 B) is larger than 'max_bytes' (1048576 B)"),
            std::string::npos);
  EXPECT_NE(errorOf("routes: {from: crm}\n").find(at(5, 9) + "'routes' must be a list of routes"), std::string::npos);
  EXPECT_NE(errorOf("routes:\n  - {from: crm, to: mining, tables: [{rename: x}]}\n")
                .find(at(6, 38) + "a table of route 'crm-to-mining' has no 'name'"),
            std::string::npos);
}

}  // namespace
}  // namespace ipcsync
