#include "ipcsync/sync/engine_config_file.h"

#include <gtest/gtest.h>

#include <fstream>

#include "processes.h"

namespace ipcsync {
namespace {

class EngineConfigFileTest : public ::testing::Test {
 protected:
  std::filesystem::path write(const std::string& text) {
    const auto p = dir.path() / "engine.yaml";
    std::ofstream(p) << text;
    return p;
  }
  std::string errorOf(const std::string& text) {
    auto r = loadEngineConfig(write(text));
    EXPECT_FALSE(r) << "accepted:\n" << text;
    return r ? std::string() : r.error().message;
  }
  test::TempDir dir;
};

TEST_F(EngineConfigFileTest, ReadsEveryKey) {
  auto c = loadEngineConfig(write(R"(
namespace: crm-demo
runtime_dir: /tmp/x
engine:
  capacity: 12
  publish_interval_ms: 20
  hello_timeout_ms: 500
  block:
    min_block: 256
    arena_size: 4MiB
    min_arenas: 2
    max_arenas: 8
access:
  users: [root, 1234]
  groups: [0]
)"));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->ns, "crm-demo");
  EXPECT_EQ(c->runtimeDir, "/tmp/x");
  EXPECT_EQ(c->capacity, 12u);
  EXPECT_EQ(c->publishInterval.count(), 20);
  EXPECT_EQ(c->helloTimeout.count(), 500);
  EXPECT_EQ(c->geometry.minBlockShift, 8u);
  EXPECT_EQ(c->geometry.arenaShift, 22u);
  EXPECT_EQ(c->geometry.minArenas, 2u);
  EXPECT_EQ(c->geometry.maxArenas, 8u);
  EXPECT_EQ(c->access.uids, (std::vector<uid_t>{0, 1234}));
  EXPECT_EQ(c->access.gids, (std::vector<gid_t>{0}));
}

TEST_F(EngineConfigFileTest, AnEmptyFileKeepsTheDefaults) {
  auto c = loadEngineConfig(write(""));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->ns, "default");
  EXPECT_EQ(c->geometry, BlockGeometry{});
}

TEST_F(EngineConfigFileTest, AnUnknownKeyIsRefusedWithTheNearestKnownOne) {
  const auto e = errorOf("engine:\n  capacty: 3\n");
  EXPECT_NE(e.find("engine.yaml:2:3"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key 'capacty'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'capacity'"), std::string::npos) << e;
}

TEST_F(EngineConfigFileTest, ABadValueNamesLineColumnAndWhatWasExpected) {
  auto e = errorOf("engine:\n  capacity: lots\n");
  EXPECT_NE(e.find(":2:13"), std::string::npos) << e;
  EXPECT_NE(e.find("expected a whole number from 1 to 4096"), std::string::npos) << e;
  e = errorOf("engine:\n  block:\n    arena_size: 3MiB\n");
  EXPECT_NE(e.find(":3:17"), std::string::npos) << e;
  EXPECT_NE(e.find("power of two"), std::string::npos) << e;
  e = errorOf("engine:\n  block:\n    arena_size: 1 parsec\n");
  EXPECT_NE(e.find("unknown unit 'parsec'"), std::string::npos) << e;
  e = errorOf("engine:\n  block:\n    min_arenas: 9\n    max_arenas: 4\n");
  EXPECT_NE(e.find("min arenas must be"), std::string::npos) << e;
  e = errorOf("access:\n  users: [no-such-user-here]\n");
  EXPECT_NE(e.find("no such user 'no-such-user-here'"), std::string::npos) << e;
}

TEST_F(EngineConfigFileTest, BrokenYamlAndMissingFilesAreReportedAsSuch) {
  auto e = errorOf("engine: [unclosed\n");
  EXPECT_NE(e.find("not valid YAML"), std::string::npos) << e;
  auto missing = loadEngineConfig(dir.path() / "absent.yaml");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("cannot read the file"), std::string::npos);
}

TEST_F(EngineConfigFileTest, ParsesByteSizes) {
  EXPECT_EQ(*parseByteSize("64"), 64u);
  EXPECT_EQ(*parseByteSize("4KiB"), 4096u);
  EXPECT_EQ(*parseByteSize("1 MiB"), 1u << 20);
  EXPECT_EQ(*parseByteSize("2G"), 2ull << 30);
  EXPECT_FALSE(parseByteSize("MiB"));
  EXPECT_FALSE(parseByteSize("12 furlongs"));
}

TEST_F(EngineConfigFileTest, TheDaemonRefusesABadFileWithExitCodeTwo) {
  const auto p = write("engine:\n  capacity: 0\n");
  auto [code, out] = test::EngineProcess::runToExit({"--config", p.string()});
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("engine.yaml:2:13"), std::string::npos) << out;
}

TEST_F(EngineConfigFileTest, TheDemoConfigurationIsValid) {
  auto c = loadEngineConfig(std::filesystem::path(IPCSYNC_SOURCE_DIR) / "config/engine.yaml");
  EXPECT_TRUE(c) << c.error().message;
}

}  // namespace
}  // namespace ipcsync
