// End to end: the real ipcsyncd supervising the real ipcsync-plugin-host, which loads a test
// plugin (crashy.so) that dies in create() when its settings ask.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "namespace_test.h"

namespace ipcsync::test {
namespace {

using namespace std::chrono_literals;

class SupervisorEndToEndTest : public NamespaceTest {
 protected:
  nlohmann::json instance(const std::string& name) const {
    std::ifstream in(dir.path() / ns / "plugins.json");
    if (!in) return {};
    const auto doc = nlohmann::json::parse(in, nullptr, false);
    if (doc.is_discarded() || !doc.contains("instances")) return {};
    for (const auto& i : doc["instances"])
      if (i["name"] == name) return i;
    return {};
  }
  bool inState(const std::string& name, const std::string& state) const {
    const auto i = instance(name);
    return !i.is_null() && i["state"] == state;
  }
};

TEST_F(SupervisorEndToEndTest, APluginThatCrashesInCreateIsRestartedThenFailedWhileAGoodOneStaysRegistered) {
  const auto cfg = dir.path() / "engine.yaml";
  std::ofstream(cfg) << "plugins_dir: " << IPCSYNC_TEST_PLUGIN_DIR << "\nstate_dir: " << (dir.path() / "state").string()
                     << "\nplugin_host: " << IPCSYNC_PLUGIN_HOST << R"(
plugins:
  - {name: good, library: crashy.so}
  - {name: bad, library: crashy.so, settings: {crash: create}}
supervision: {restart_initial_ms: 150, restart_max_ms: 300, max_crashes: 3, crash_window_s: 60}
)";
  startEngine("e2e", {"--config", cfg.string()});
  ASSERT_TRUE(waitFor([&] { return inState("good", "running"); }, 10s)) << engine->log();
  const int goodPid = instance("good")["pid"].get<int>();
  // "restarting" lasts only the back-off; "failed" is final, so wait for that and check the path.
  ASSERT_TRUE(waitFor([&] { return inState("bad", "failed"); }, 10s)) << engine->log();
  EXPECT_EQ(instance("bad")["last_exit"], "signal 11 (SIGSEGV)");
  std::this_thread::sleep_for(500ms);
  const auto bad = instance("bad");
  EXPECT_EQ(bad["state"], "failed");
  EXPECT_EQ(bad["restarts"], 2);
  EXPECT_FALSE(record("plugin.bad")) << "a failed instance's host must not stay registered";
  const auto good = instance("good");
  EXPECT_EQ(good["state"], "running");
  EXPECT_EQ(good["pid"].get<int>(), goodPid);
  auto r = record("plugin.good");
  ASSERT_TRUE(r) << engine->log();
  EXPECT_EQ(r->pid, goodPid);
  EXPECT_TRUE(registered("plugin.good"));
  EXPECT_EQ(engine->stop(SIGTERM), 0);
  EXPECT_NE(engine->log().find("host pid " + std::to_string(goodPid) + " ended (exit 0)"), std::string::npos)
      << engine->log();
}

}  // namespace
}  // namespace ipcsync::test
