// ipcsyncd reloading its configuration (SIGHUP, or the file written anew) with stand-in plugin
// hosts (fake_plugin_host), and `ipcsync status` showing what plugins.json holds.
#include <signal.h>

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "namespace_test.h"
#include "run_program.h"

namespace ipcsync::test {
namespace {

using namespace std::chrono_literals;

class DaemonReloadTest : public NamespaceTest {
 protected:
  DaemonReloadTest() {
    std::filesystem::create_directories(plugins());
    std::ofstream(plugins() / "good.so") << "stand-in";
  }
  std::filesystem::path plugins() const { return dir.path() / "plugins"; }
  std::filesystem::path config() const { return dir.path() / "engine.yaml"; }
  std::filesystem::path statusFile() const { return dir.path() / ns / "plugins.json"; }

  // Writes the configuration with `instances` (names of fake hosts) through a rename, as editors do.
  void writeConfig(const std::vector<std::string>& instances, const std::string& extra = "") {
    std::string text = "plugins_dir: " + plugins().string() + "\nstate_dir: " + (dir.path() / "state").string() +
                       "\nplugin_host: " + IPCSYNC_FAKE_PLUGIN_HOST + "\nsupervision: {stop_timeout_ms: 1000}\nplugins:\n";
    for (const auto& i : instances) text += "  - {name: " + i + ", library: good.so}\n";
    const auto tmp = dir.path() / "engine.yaml.new";
    std::ofstream(tmp) << text << extra;
    std::filesystem::rename(tmp, config());
  }
  nlohmann::json instance(const std::string& name) const {
    std::ifstream in(statusFile());
    if (!in) return {};
    try {
      const auto doc = nlohmann::json::parse(in);
      for (const auto& i : doc.at("instances"))
        if (i.at("name") == name) return i;
    } catch (const nlohmann::json::exception&) {
    }
    return {};
  }
  bool running(const std::string& name) const {
    const auto i = instance(name);
    return !i.is_null() && i["state"] == "running";
  }
  pid_t pidOf(const std::string& name) const { return instance(name)["pid"].get<pid_t>(); }
  static bool alive(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    std::getline(in, stat);
    const auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
  }
};

TEST_F(DaemonReloadTest, SighupStartsAnAddedInstanceStopsARemovedOneAndLeavesTheThirdRunning) {
  writeConfig({"keep", "drop"});
  startEngine("hup", {"--config", config().string()});
  ASSERT_TRUE(waitFor([&] { return running("keep") && running("drop"); }, 10s)) << engine->log();
  const pid_t keep = pidOf("keep"), drop = pidOf("drop");

  writeConfig({"keep", "added"});
  ASSERT_EQ(::kill(engine->pid(), SIGHUP), 0);
  ASSERT_TRUE(waitFor([&] { return running("added") && instance("drop").is_null(); }, 10s)) << engine->log();
  EXPECT_TRUE(waitFor([&] { return !alive(drop); }, 5s)) << "the removed instance's host still runs";
  EXPECT_EQ(pidOf("keep"), keep) << "the unchanged instance was restarted";
  EXPECT_TRUE(alive(keep));
  EXPECT_EQ(instance("keep")["restarts"], 0);
  const auto log = engine->log();
  EXPECT_NE(log.find("plugin instance 'drop' is no longer configured: stopping it"), std::string::npos) << log;
  EXPECT_NE(log.find("plugin instance 'added' was added: starting it"), std::string::npos) << log;
  EXPECT_EQ(engine->stop(SIGTERM), 0);
}

TEST_F(DaemonReloadTest, AnInvalidNewFileIsRefusedWithItsErrorAndTheRunningConfigurationStays) {
  writeConfig({"keep"});
  startEngine("badreload", {"--config", config().string()});
  ASSERT_TRUE(waitFor([&] { return running("keep"); }, 10s)) << engine->log();
  const pid_t keep = pidOf("keep");

  // A typo in a key, and an instance that would be new: neither may take effect.
  writeConfig({"keep", "other"}, "routes:\n  - {from: keep, too: other}\n");
  ASSERT_EQ(::kill(engine->pid(), SIGHUP), 0);
  ASSERT_TRUE(waitFor([&] { return engine->log().find("the new configuration is refused") != std::string::npos; }, 10s))
      << engine->log();
  const auto log = engine->log();
  EXPECT_NE(log.find(config().string() + ":9:18: unknown key 'too' in a route; did you mean 'to'?"), std::string::npos) << log;
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(instance("other").is_null()) << "an instance of the refused file was started";
  EXPECT_EQ(pidOf("keep"), keep);
  EXPECT_TRUE(running("keep"));
  EXPECT_EQ(engine->stop(SIGTERM), 0);
}

TEST_F(DaemonReloadTest, WritingTheFileReloadsItWithoutASignal) {
  writeConfig({"first"});
  startEngine("inotify", {"--config", config().string()});
  ASSERT_TRUE(waitFor([&] { return running("first"); }, 10s)) << engine->log();
  const pid_t first = pidOf("first");
  writeConfig({"first", "second"});
  ASSERT_TRUE(waitFor([&] { return running("second"); }, 10s)) << engine->log();
  EXPECT_EQ(pidOf("first"), first);
  EXPECT_NE(engine->log().find("the configuration file changed: reloading"), std::string::npos) << engine->log();
  EXPECT_EQ(engine->stop(SIGTERM), 0);
}

TEST_F(DaemonReloadTest, StatusShowsThePluginInstancesFromPluginsJson) {
  writeConfig({"alpha", "beta"});
  startEngine("status", {"--config", config().string()});
  ASSERT_TRUE(waitFor([&] { return running("alpha") && running("beta"); }, 10s)) << engine->log();
  const auto [code, out] = runProgram({IPCSYNC_CLI, "status", "-n", ns});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("PLUGIN INSTANCE"), std::string::npos) << out;
  for (const std::string name : {"alpha", "beta"}) {
    const std::string row = name + std::string(16 - name.size() + 1, ' ') + "good.so" + std::string(4, ' ') + "running";
    EXPECT_NE(out.find(row), std::string::npos) << "no row '" << row << "' in:\n" << out;
    EXPECT_NE(out.find(std::to_string(pidOf(name))), std::string::npos) << out;
  }
  EXPECT_EQ(engine->stop(SIGTERM), 0);
}

TEST_F(DaemonReloadTest, StatusShowsTheJournalAndEverySourceItHoldsBack) {
  writeConfig({"alpha"});
  startEngine("journal", {"--config", config().string()});
  ASSERT_TRUE(waitFor([&] { return running("alpha"); }, 10s)) << engine->log();
  // What ipcsync-sync writes while the journal is full (fields: docs/design/sync-engine.md).
  const auto sync = dir.path() / ns / "sync.json";
  std::ofstream(sync) << R"({"version": 1, "journal": {"path": "/var/lib/j.db", "entries": 812, "bytes": 1048000,
    "head": 9000, "max_bytes": 1048576, "nearly_full": true, "full": true, "held_bytes_bound": 262144,
    "disk_free_bytes": 4096, "disk_fills_first": true},
    "sources": [{"instance": "crm", "connected": true, "held_back": true, "held_bytes": 200000,
                 "dropped_while_full": 7, "oversized_changeset": 0},
                {"instance": "quiet", "connected": true, "held_back": false, "held_bytes": 0,
                 "dropped_while_full": 0, "oversized_changeset": 0}],
    "routes": [{"route": "sales", "source": "crm", "subscriber": "mining", "lag_changesets": 812}]})";
  const auto [code, out] = runProgram({IPCSYNC_CLI, "status", "-n", ns});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("journal /var/lib/j.db: 1023.4 KiB of 1.0 MiB, 812 change-sets, head 9000  FULL"), std::string::npos) << out;
  EXPECT_NE(out.find("source crm: HELD BACK, 195.3 KiB waiting in memory, 7 change-set(s)"), std::string::npos) << out;
  EXPECT_NE(out.find("DISK: only 4.0 KiB free where the journal is"), std::string::npos) << out;
  EXPECT_EQ(out.find("source quiet"), std::string::npos) << "a source that is not held back is not listed:\n" << out;
  EXPECT_EQ(engine->stop(SIGTERM), 0);
}

TEST_F(DaemonReloadTest, StatusSaysWhichRouteIsStalledAndWhichCannotRun) {
  writeConfig({"alpha"});
  startEngine("stalled", {"--config", config().string()});
  ASSERT_TRUE(waitFor([&] { return running("alpha"); }, 10s)) << engine->log();
  std::ofstream(dir.path() / ns / "sync.json") << R"({"version": 1, "routes": [
    {"route": "sales", "source": "crm", "subscriber": "mining", "stalled_ms": 42500, "problem": ""},
    {"route": "copy", "source": "crm", "subscriber": "crm2", "stalled_ms": 0,
     "problem": "table 'orders' is not one the subscriber accepts"},
    {"route": "fine", "source": "crm", "subscriber": "crm3", "stalled_ms": 0, "problem": ""}]})";
  const auto [code, out] = runProgram({IPCSYNC_CLI, "status", "-n", ns});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("STALLED: 'mining' has not answered an Apply for 42.5 s"), std::string::npos) << out;
  EXPECT_NE(out.find("CANNOT RUN: table 'orders' is not one the subscriber accepts"), std::string::npos) << out;
  EXPECT_EQ(out.find("'crm3'"), std::string::npos) << "a route that moves says nothing more:\n" << out;
  EXPECT_EQ(out.find("STALLED: 'crm2'"), std::string::npos) << out;
  EXPECT_EQ(engine->stop(SIGTERM), 0);
}

}  // namespace
}  // namespace ipcsync::test
