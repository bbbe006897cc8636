// `ipcsync-plugin-host --describe` and the host's usage and start-up exit codes, run as real processes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "host_fixture.h"
#include "namespace_test.h"
#include "processes.h"

namespace ipcsync::test {
namespace {

using ::testing::HasSubstr;

TEST(DescribeCliTest, DescribePrintsTheGoodPluginAsJsonAndExitsZero) {
  const auto r = runProgram(pluginHostPath(), {"--plugin", testPlugin("echo").string(), "--describe"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["name"], "echo");
  EXPECT_EQ(j["version"], "1.2.3");
  EXPECT_EQ(j["abi"], "1.1");
  ASSERT_EQ(j["tables"].size(), 2u);
  EXPECT_EQ(j["tables"][0]["name"], "items");
  EXPECT_EQ(j["tables"][0]["accepts"], true);
  EXPECT_EQ(j["tables"][1]["accepts"], false);
}

struct Refused {
  const char* plugin;
  const char* says;
};
class DescribeRefusalTest : public ::testing::TestWithParam<Refused> {};

TEST_P(DescribeRefusalTest, ExitsThreeWithTheLoadersMessageOnStderrAndNothingOnStdout) {
  const auto path = std::string(GetParam().plugin) == "x" ? std::filesystem::path(IPCSYNC_TEST_PLUGIN_DIR) / "x.so"
                                                          : testPlugin(GetParam().plugin);
  const auto r = runProgram(pluginHostPath(), {"--plugin", path.string(), "--describe"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr(path.string()));
  EXPECT_THAT(r.err, HasSubstr(GetParam().says));
  EXPECT_EQ(r.out, "");
}

INSTANTIATE_TEST_SUITE_P(EveryDefect, DescribeRefusalTest,
                         ::testing::Values(Refused{"x", "cannot be loaded"}, Refused{"bad_unresolved", "undefined symbol"},
                                           Refused{"bad_no_entry", "does not export ipcsync_plugin_entry"},
                                           Refused{"bad_null_descriptor", "returned NULL"},
                                           Refused{"bad_major", "rebuild against plugin.h 1.x"},
                                           Refused{"bad_minor", "newer than this host's"},
                                           Refused{"bad_tiny_struct", "struct_size is 8 bytes"},
                                           Refused{"bad_missing_functions", "lacks required functions"},
                                           Refused{"bad_no_primary_key", "declares no PRIMARY KEY"},
                                           Refused{"bad_no_schema", "has no schema"},
                                           Refused{"bad_name", "is not 1-32 characters"},
                                           Refused{"does_not_exist", "no such file"}),
                         [](const auto& p) {
                           std::string n = p.param.plugin;
                           for (auto& c : n)
                             if (c == '_') c = 'X';
                           return n;
                         });

TEST(DescribeCliTest, UsageErrorsExitTwoAndSayWhatIsWrong) {
  auto r = runProgram(pluginHostPath(), {"--describe"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--plugin"));
  r = runProgram(pluginHostPath(), {"--plugin", testPlugin("echo").string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--instance NAME is required"));
  r = runProgram(pluginHostPath(), {"--plugin", testPlugin("echo").string(), "--instance", "e", "--setting", "novalue"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("'novalue' is not key=value"));
  r = runProgram(pluginHostPath(), {"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("3 plugin refused by the loader"));
}

TEST(DescribeCliTest, WithoutAnEngineTheHostExitsOneNamingTheNamespace) {
  TempDir dir;
  const auto ns = uniqueNamespace("noengine");
  const auto r = runProgram(pluginHostPath(), {"--plugin", testPlugin("echo").string(), "--instance", "e", "--namespace",
                                               ns, "--data-dir", (dir.path() / "d").string()});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr(ns));
}

class HostStartupTest : public NamespaceTest {};

TEST_F(HostStartupTest, ACreateThatFailsExitsFourWithThePluginsMessage) {
  startEngine("hcreate");
  const auto r = runProgram(pluginHostPath(), {"--plugin", testPlugin("bad_create_fails").string(), "--instance", "c",
                                               "--namespace", ns, "--runtime-dir", dir.path().string(), "--data-dir",
                                               (dir.path() / "d").string()});
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cannot open database /nonexistent/bad.sqlite"));
}

TEST_F(HostStartupTest, ACreateThatIsBusyForNowExitsOneSoTheSupervisorRetries) {
  startEngine("hbusy");
  const auto r = runProgram(pluginHostPath(), {"--plugin", testPlugin("bad_create_busy").string(), "--instance", "c",
                                               "--namespace", ns, "--runtime-dir", dir.path().string(), "--data-dir",
                                               (dir.path() / "d").string()});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("is locked by another process"));
}

TEST_F(HostStartupTest, ARefusedPluginExitsThreeBeforeRegistering) {
  startEngine("hrefuse");
  const auto r = runProgram(pluginHostPath(), {"--plugin", testPlugin("bad_major").string(), "--instance", "m",
                                               "--namespace", ns, "--runtime-dir", dir.path().string()});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_FALSE(registered("plugin.m"));
}

}  // namespace
}  // namespace ipcsync::test
