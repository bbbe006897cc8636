// The supervisor inside the real ipcsyncd, with a stand-in plugin host (fake_plugin_host) whose
// behaviour each instance's settings choose: crash, refuse, run, ignore SIGTERM.
#include <signal.h>

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "namespace_test.h"

namespace ipcsync::test {
namespace {

using namespace std::chrono_literals;

class SupervisorTest : public NamespaceTest {
 protected:
  SupervisorTest() {
    std::filesystem::create_directories(plugins());
    std::ofstream(plugins() / "good.so") << "stand-in";
    std::ofstream(plugins() / "bad.so") << "stand-in";
  }
  std::filesystem::path plugins() const { return dir.path() / "plugins"; }
  std::filesystem::path state() const { return dir.path() / "state"; }
  std::filesystem::path statusFile() const { return dir.path() / ns / "plugins.json"; }

  // Starts ipcsyncd with the plugin part of a configuration (plugins:, supervision:).
  void start(const std::string& tag, const std::string& pluginYaml) {
    const auto cfg = dir.path() / "engine.yaml";
    std::ofstream(cfg) << "plugins_dir: " << plugins().string() << "\nstate_dir: " << state().string()
                       << "\nplugin_host: " << IPCSYNC_FAKE_PLUGIN_HOST << "\n"
                       << pluginYaml;
    startEngine(tag, {"--config", cfg.string()});
  }

  nlohmann::json status() const {
    std::ifstream in(statusFile());
    if (!in) return {};
    try {
      return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception&) {
      ADD_FAILURE() << "plugins.json is not valid JSON";  // written by rename: never torn
      return {};
    }
  }
  nlohmann::json instance(const std::string& name) const {
    const auto doc = status();
    if (doc.contains("instances"))
      for (const auto& i : doc["instances"])
        if (i["name"] == name) return i;
    return {};
  }
  bool inState(const std::string& name, const std::string& state) const {
    const auto i = instance(name);
    return !i.is_null() && i["state"] == state;
  }
  // The CLOCK_MONOTONIC start times (ns) the fake host of `name` recorded.
  std::vector<std::int64_t> starts(const std::string& name) const {
    std::ifstream in(state() / name / "starts.log");
    std::vector<std::int64_t> out;
    std::int64_t t = 0, pid = 0;
    while (in >> t >> pid) out.push_back(t);
    return out;
  }
  static bool alive(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    std::getline(in, stat);
    const auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
  }
};

TEST_F(SupervisorTest, ACrashingHostIsRestartedWithGrowingDelaysUpToTheCap) {
  start("grow", R"(
plugins:
  - name: bad
    library: bad.so
    settings: {mode: crash}
supervision: {restart_initial_ms: 100, restart_max_ms: 200, max_crashes: 50, crash_window_s: 60}
)");
  ASSERT_TRUE(waitFor([&] { return starts("bad").size() >= 5; }, 20s)) << engine->log();
  const auto t = starts("bad");
  std::vector<double> gapsMs;
  for (std::size_t i = 1; i < 5; ++i) gapsMs.push_back(static_cast<double>(t[i] - t[i - 1]) / 1e6);
  // Delays 100, 200, 200, 200 ms (capped; uncapped they would be 400 and 800).
  EXPECT_GE(gapsMs[0], 95);
  EXPECT_GE(gapsMs[1], 195);
  EXPECT_GE(gapsMs[3], 195);
  // The cap shows in the delays the daemon chose (measured gaps only have lower bounds: a slow
  // machine may stretch them, never shorten them).
  // The fifth host may record its start before the daemon has published it.
  EXPECT_TRUE(waitFor([&] { auto i = instance("bad"); return !i.is_null() && i["restarts"].get<int>() >= 4; }, 5s))
      << status();
  EXPECT_EQ(instance("bad")["last_exit"], "signal 11 (SIGSEGV)");
  const auto log = engine->log();
  EXPECT_NE(log.find("restarting in 100 ms"), std::string::npos) << log;
  EXPECT_NE(log.find("restarting in 200 ms"), std::string::npos) << log;
  EXPECT_EQ(log.find("restarting in 400 ms"), std::string::npos) << "the delay is not capped at restart_max_ms: " << log;
  EXPECT_NE(log.find("restarting in 200 ms"), std::string::npos) << log;
  EXPECT_NE(log.find("plugin.bad["), std::string::npos) << "the host's stderr reaches the daemon's log:\n" << log;
}

TEST_F(SupervisorTest, AfterMaxCrashesInTheWindowAnInstanceFailsWhileAnotherKeepsRunning) {
  start("fail", R"(
plugins:
  - name: good
    library: good.so
  - name: bad
    library: bad.so
    settings: {mode: crash, crash_after_ms: 20}
supervision: {restart_initial_ms: 50, restart_max_ms: 100, max_crashes: 3, crash_window_s: 60}
)");
  ASSERT_TRUE(waitFor([&] { return inState("good", "running"); }, 10s)) << engine->log();
  const int goodPid = instance("good")["pid"].get<int>();
  EXPECT_TRUE(registered("plugin.good"));
  ASSERT_TRUE(waitFor([&] { return inState("bad", "failed"); }, 10s)) << engine->log();
  std::this_thread::sleep_for(600ms);  // longer than any back-off: no further start may happen
  const auto bad = instance("bad");
  EXPECT_EQ(bad["state"], "failed");
  EXPECT_TRUE(bad["pid"].is_null());
  EXPECT_EQ(bad["restarts"], 2);
  EXPECT_EQ(starts("bad").size(), 3u);
  EXPECT_NE(bad["message"].get<std::string>().find("crashed 3 times within the crash window"), std::string::npos) << bad;
  const auto good = instance("good");
  EXPECT_EQ(good["state"], "running");
  EXPECT_EQ(good["pid"].get<int>(), goodPid);
  EXPECT_EQ(good["restarts"], 0);
  EXPECT_TRUE(good["last_exit"].is_null());
  EXPECT_EQ(good["library"], "good.so");
  EXPECT_TRUE(good["since"].is_string());
  auto r = record("plugin.good");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->pid, goodPid);
  EXPECT_NE(engine->log().find("plugin instance 'bad' FAILED"), std::string::npos);
}

TEST_F(SupervisorTest, AHostThatExitsThreeOrFourFailsAtOnceWithItsMessage) {
  start("refuse", R"(
plugins:
  - {name: refused, library: bad.so, settings: {mode: exit3}}
  - {name: broken, library: bad.so, settings: {mode: exit4}}
supervision: {restart_initial_ms: 20}
)");
  ASSERT_TRUE(waitFor([&] { return inState("refused", "failed") && inState("broken", "failed"); }, 10s)) << engine->log();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(starts("refused").size(), 1u);
  EXPECT_EQ(starts("broken").size(), 1u);
  const auto refused = instance("refused"), broken = instance("broken");
  EXPECT_EQ(refused["last_exit"], "exit 3");
  EXPECT_NE(refused["message"].get<std::string>().find("refused by the loader (exit 3): plugin"), std::string::npos) << refused;
  EXPECT_NE(refused["message"].get<std::string>().find("ABI major 9"), std::string::npos) << refused;
  EXPECT_EQ(broken["last_exit"], "exit 4");
  EXPECT_NE(broken["message"].get<std::string>().find("'database.path' is missing"), std::string::npos) << broken;
  const auto log = engine->log();
  EXPECT_NE(log.find("ABI major 9 is not the host's 1"), std::string::npos) << log;
  EXPECT_NE(log.find("restarting cannot help"), std::string::npos) << log;
}

TEST_F(SupervisorTest, AHostProgramThatCannotStartFailsTheInstanceNamingIt) {
  const auto cfg = dir.path() / "engine.yaml";
  const auto notAHost = dir.path() / "not-a-host";
  std::ofstream(notAHost) << "#!/nonexistent/interpreter\n";
  std::filesystem::permissions(notAHost, std::filesystem::perms::owner_all);
  std::ofstream(cfg) << "plugins_dir: " << plugins().string() << "\nstate_dir: " << state().string()
                     << "\nplugin_host: " << notAHost.string() << "\nplugins:\n  - {name: good, library: good.so}\n";
  startEngine("nohost", {"--config", cfg.string()});
  ASSERT_TRUE(waitFor([&] { return inState("good", "failed"); }, 10s)) << engine->log();
  EXPECT_NE(instance("good")["message"].get<std::string>().find("cannot start " + notAHost.string()), std::string::npos)
      << instance("good");
}

TEST_F(SupervisorTest, SigtermStopsEveryHostThenTheEngineAndLeavesNothingBehind) {
  start("term", R"(
plugins:
  - {name: polite, library: good.so, settings: {grandchild: 1}}
  - {name: stubborn, library: good.so, settings: {ignore_term: 1}}
supervision: {stop_timeout_ms: 300}
)");
  ASSERT_TRUE(waitFor([&] { return inState("polite", "running") && inState("stubborn", "running"); }, 10s)) << engine->log();
  const pid_t polite = instance("polite")["pid"].get<int>(), stubborn = instance("stubborn")["pid"].get<int>();
  pid_t grandchild = 0;
  std::ifstream(state() / "polite" / "grandchild.pid") >> grandchild;
  ASSERT_GT(grandchild, 0);
  ASSERT_TRUE(alive(grandchild));
  const auto begun = std::chrono::steady_clock::now();
  EXPECT_EQ(engine->stop(SIGTERM), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - begun, 5s);
  EXPECT_TRUE(waitFor([&] { return !alive(polite) && !alive(stubborn) && !alive(grandchild); }, 5s));
  EXPECT_FALSE(std::filesystem::exists(statusFile()));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / ns)) << "the engine's runtime directory stays behind";
  const auto log = engine->log();
  const auto stopped = log.find("host pid " + std::to_string(polite) + " ended (exit 0)");
  const auto killed = log.find("host pid " + std::to_string(stubborn) + " did not stop within 300 ms; killing it");
  EXPECT_NE(stopped, std::string::npos) << log;
  EXPECT_NE(killed, std::string::npos) << log;
  EXPECT_NE(log.find("host pid " + std::to_string(stubborn) + " ended (signal 9 (SIGKILL))"), std::string::npos) << log;
}

TEST_F(SupervisorTest, ASharedLibraryDroppedIntoThePluginsDirectoryIsListedAsAvailable) {
  std::ofstream(plugins() / "early.so") << "there before the daemon";
  start("watch", "plugins:\n  - {name: good, library: good.so}\n");
  ASSERT_TRUE(waitFor([&] { return status().contains("available"); }, 5s));
  auto available = [&] { return status()["available"].get<std::vector<std::string>>(); };
  EXPECT_EQ(available(), (std::vector<std::string>{"bad.so", "early.so"})) << "good.so is configured, so not listed";
  std::filesystem::copy_file(plugins() / "bad.so", plugins() / "fresh.so");
  std::ofstream(plugins() / "notes.txt") << "not a plugin";
  ASSERT_TRUE(waitFor([&] { return available().size() == 3; }, 5s)) << status();
  EXPECT_EQ(available(), (std::vector<std::string>{"bad.so", "early.so", "fresh.so"}));
  EXPECT_NE(engine->log().find("plugin file fresh.so appeared: available, not configured"), std::string::npos)
      << engine->log();
  std::filesystem::remove(plugins() / "early.so");
  EXPECT_TRUE(waitFor([&] { return available() == std::vector<std::string>{"bad.so", "fresh.so"}; }, 5s)) << status();
}

TEST_F(SupervisorTest, SettingsReachTheHostFlattenedWithDots) {
  start("settings", R"(
plugins:
  - name: good
    library: good.so
    settings:
      database: {path: /tmp/x.db, pool: {size: 4}}
      mode: run
)");
  ASSERT_TRUE(waitFor([&] { return inState("good", "running"); }, 10s)) << engine->log();
  std::ifstream in(state() / "good" / "settings.txt");
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_EQ(s.str(), "database.path=/tmp/x.db\ndatabase.pool.size=4\nmode=run\n");
}

}  // namespace
}  // namespace ipcsync::test
