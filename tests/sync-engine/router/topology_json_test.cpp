// The topology JSON file: defaults, every key, and errors that name the JSON path.
#include <gtest/gtest.h>

#include "ipcsync/sync/topology_json.h"

namespace ipcsync::sync {
namespace {

TEST(TopologyJsonTest, ReadsEveryKey) {
  auto t = parseTopologyJson(R"({"routes":[{"name":"r","from":"crm","to":["a","b"],"bidirectional":true,
      "conflict":"last_writer_wins","timestamp_column":"updated_at","snapshot":true,"max_retries":3,
      "tables":["orders",{"table":"accounts","rename_to":"clients","exclude_columns":["industry"],
                          "include_columns":[],"row_filter":"region = 'north'"}]}],
      "journal":{"path":"/tmp/j.db","durability":"full","group_commit_ms":5,"group_commit_max":9,
                 "max_bytes":1000,"warn_at_percent":50,"retention_s":2,"piece_bytes":4096}})",
                             "t.json");
  ASSERT_TRUE(t) << t.error();
  const auto& r = t->routes.at(0);
  EXPECT_EQ(r.to, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(r.bidirectional && r.snapshot);
  EXPECT_EQ(r.conflict, ConflictPolicy::LastWriterWins);
  EXPECT_EQ(r.maxRetries, 3u);
  EXPECT_EQ(r.tables.at(0).table, "orders");
  EXPECT_EQ(r.tables.at(1).renameTo, "clients");
  EXPECT_EQ(r.tables.at(1).rowFilter, "region = 'north'");
  EXPECT_EQ(t->journal.durability, Durability::Full);
  EXPECT_EQ(t->journal.groupCommit.count(), 5);
  EXPECT_EQ(t->journal.pieceBytes, 4096u);
}

TEST(TopologyJsonTest, AbsentKeysKeepTheDefaults) {
  auto t = parseTopologyJson(R"({"routes":[{"from":"crm","to":"mining"}]})", "t.json");
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->routes.at(0).to, std::vector<std::string>{"mining"});
  EXPECT_EQ(t->routes.at(0).conflict, ConflictPolicy::SourceWins);
  EXPECT_EQ(t->journal.groupCommitMax, JournalConfig{}.groupCommitMax);
}

TEST(TopologyJsonTest, ErrorsNameTheFileAndTheJsonPath) {
  const auto error = [](const char* text) {
    auto t = parseTopologyJson(text, "topo.json");
    return t ? std::string("(parsed)") : t.error();
  };
  EXPECT_EQ(error(R"({"routes":[{"from":"a","to":"b","conflict":"whoever"}]})"),
            "topo.json: routes[0].conflict is 'whoever'; expected source_wins, target_wins, last_writer_wins or park");
  EXPECT_NE(error(R"({"routes":[{"from":"a","to":"b","colour":1}]})").find("routes[0].colour is not a known key"),
            std::string::npos);
  EXPECT_NE(error(R"({"routes":[{"to":"b"}]})").find("routes[0].from is required"), std::string::npos);
  EXPECT_NE(error(R"({"routes":[{"from":"a","to":"b","tables":[{"rename_to":"x"}]}]})").find("tables[0].table is required"),
            std::string::npos);
  EXPECT_NE(error("{not json").find("topo.json: not valid JSON"), std::string::npos);
  EXPECT_NE(error(R"({"routes":[],"journal":{"durability":"maybe"}})").find("journal.durability"), std::string::npos);
}

TEST(TopologyJsonTest, MissingFileSaysSo) {
  auto t = loadTopologyJson("/nonexistent/topology.json");
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().find("/nonexistent/topology.json: cannot be read"), std::string::npos);
}

}  // namespace
}  // namespace ipcsync::sync
