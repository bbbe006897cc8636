// The plugins pane: the real daemon's plugins.json (supervising stand-in hosts, one of which
// keeps crashing), and what a malformed file does: a clear message, and nothing lost.
#include <gtest/gtest.h>

#include <QAbstractItemModelTester>

#include <fstream>

#include "console_fixture.h"
#include "ipcsync/admin/plugins_model.h"
#include "main_window.h"

namespace ipcsync::admin {
namespace {

using namespace std::chrono_literals;

class PluginsViewTest : public test::NamespaceTest {
 protected:
  void startWithPlugins() {
    std::filesystem::create_directories(dir.path() / "plugins");
    // The stand-in host loads nothing, but the daemon checks that configured libraries exist.
    for (const char* file : {"crm.so", "mining.so", "erp.so"}) std::ofstream(dir.path() / "plugins" / file) << "stand-in";
    const auto cfg = dir.path() / "engine.yaml";
    std::ofstream(cfg) << "plugins_dir: " << (dir.path() / "plugins").string() << "\nstate_dir: "
                       << (dir.path() / "state").string() << "\nplugin_host: " << IPCSYNC_FAKE_PLUGIN_HOST << R"(
plugins:
  - {name: crm, library: crm.so}
  - name: mining
    library: mining.so
    settings: {mode: crash, crash_after_ms: 20}
supervision: {restart_initial_ms: 50, restart_max_ms: 100, max_crashes: 3, crash_window_s: 60}
)";
    startEngine("plugins", {"--config", cfg.string()});
  }
  static int rowOf(const PluginsModel& m, const QString& library) {
    for (int r = 0; r < m.rowCount(); ++r)
      if (m.index(r, PluginsModel::kLibrary).data().toString() == library) return r;
    return -1;
  }
};

TEST_F(PluginsViewTest, RunningFailedAndAvailablePluginsFromTheDaemonAreShownAndFailedStandsOut) {
  startWithPlugins();
  ConsoleOptions o;
  o.ns = QString::fromStdString(ns);  // no --runtime-dir: found beside the engine's socket
  MainWindow window(o);
  QAbstractItemModelTester tester(window.plugins(), QAbstractItemModelTester::FailureReportingMode::Warning);
  const PluginsModel& m = *window.plugins();
  const auto state = [&](const QString& lib) {
    const int r = rowOf(m, lib);
    return r < 0 ? QString() : m.index(r, PluginsModel::kState).data().toString();
  };
  ASSERT_TRUE(test::spinUntil([&] { return state("crm.so") == "running" && state("mining.so") == "FAILED"; }, 10s))
      << "crm: " << state("crm.so").toStdString() << ", mining: " << state("mining.so").toStdString() << "\n" << engine->log();
  EXPECT_EQ(state("erp.so"), "available, not configured");
  const int mining = rowOf(m, "mining.so"), crm = rowOf(m, "crm.so");
  EXPECT_TRUE(m.index(mining, PluginsModel::kState).data(Qt::BackgroundRole).isValid());
  EXPECT_FALSE(m.index(crm, PluginsModel::kState).data(Qt::BackgroundRole).isValid());
  EXPECT_EQ(m.index(mining, PluginsModel::kLastExit).data().toString(), "signal 11 (SIGSEGV)");
  EXPECT_TRUE(m.index(mining, PluginsModel::kMessage).data().toString().contains("crashed 3 times"));
  EXPECT_EQ(m.index(mining, PluginsModel::kRestarts).data().toInt(), 2);
  // The daemon says crm's host pid; the registry agrees that pid registered as plugin.crm.
  const auto host = record("plugin.crm");
  ASSERT_TRUE(host);
  EXPECT_EQ(m.index(crm, PluginsModel::kPid).data().toLongLong(), host->pid);
}

class PluginsFileTest : public ::testing::Test {
 protected:
  void write(const std::string& text) {
    // As the daemon does: a new file renamed over the old one.
    std::ofstream(path.string() + ".tmp") << text;
    std::filesystem::rename(path.string() + ".tmp", path);
  }
  test::TempDir dir;
  std::filesystem::path path = dir.path() / "plugins.json";
  PluginsFile file;
};

constexpr const char* kGood = R"({"instances": [
  {"name": "crm", "library": "crm.so", "state": "running", "pid": 4242, "restarts": 0, "last_exit": null,
   "message": "", "since": "2024-05-01T12:00:00.123Z"}], "available": ["erp.so"]})";

TEST_F(PluginsFileTest, AWellFormedFileIsRead) {
  write(kGood);
  const auto& s = file.refresh(path);
  EXPECT_TRUE(s.present);
  EXPECT_TRUE(s.error.isEmpty());
  ASSERT_EQ(s.instances.size(), 1u);
  EXPECT_EQ(s.instances[0].pid, 4242);
  EXPECT_TRUE(s.instances[0].lastExit.isEmpty());
  EXPECT_EQ(s.available, QStringList{"erp.so"});
}

TEST_F(PluginsFileTest, ARemovedFileLeavesNothingOfItsContentIncludingTheSyncEngine) {
  write(R"({"instances": [], "available": [], "sync": {"name": "sync", "library": "ipcsync-sync", "state": "running",
            "pid": 77, "restarts": 0, "last_exit": null, "message": "", "since": "2024-05-01T12:00:00.123Z"}})");
  ASSERT_TRUE(file.refresh(path).sync.has_value()) << file.refresh(path).error.toStdString();
  std::filesystem::remove(path);  // the daemon ended
  const auto& s = file.refresh(path);
  EXPECT_FALSE(s.present);
  EXPECT_FALSE(s.sync.has_value()) << "a sync engine shown from a file that is gone";
  EXPECT_EQ(s.path, path);
  write(R"({"instances": [], "sync": {"name": "sync", "library": "ipcsync-sync", "state": "running", "pid": 78,
            "restarts": 0, "last_exit": null, "message": "", "since": "2024-05-01T12:00:00.123Z"}})");
  ASSERT_TRUE(file.refresh(path).sync.has_value());
  file.clear();  // the engine went away: what the file says is stale
  EXPECT_FALSE(file.status().sync.has_value()) << "clear() kept the sync engine";
  EXPECT_TRUE(file.refresh(path).sync.has_value()) << "read again after clear()";
}

TEST_F(PluginsFileTest, TruncatedJsonNamesTheByteAndKeepsTheLastGoodContent) {
  write(kGood);
  file.refresh(path);
  write(R"({"instances": [{"name": "crm", "libr)");
  const auto& s = file.refresh(path);
  EXPECT_TRUE(s.error.contains("not JSON at byte")) << s.error.toStdString();
  EXPECT_TRUE(s.error.contains(QString::fromStdString(path.string()))) << s.error.toStdString();
  EXPECT_TRUE(s.error.contains("showing the last good content"));
  ASSERT_EQ(s.instances.size(), 1u) << "the last good content was lost";
  EXPECT_EQ(s.instances[0].name, "crm");
  write(kGood);  // fixed: the error goes
  EXPECT_TRUE(file.refresh(path).error.isEmpty());
}

TEST_F(PluginsFileTest, AFieldOfTheWrongTypeIsNamedWithItsInstance) {
  write(kGood);
  file.refresh(path);
  write(R"({"instances": [{"name": "crm", "library": "crm.so", "state": 7}]})");
  const auto& s = file.refresh(path);
  EXPECT_TRUE(s.error.contains("instances[0].state: expected a string, found 7")) << s.error.toStdString();
  EXPECT_EQ(s.instances.size(), 1u);
  write(R"({"instances": [{"name": "crm", "library": "crm.so", "state": "running", "pid": "x"}]})");
  EXPECT_TRUE(file.refresh(path).error.contains("instances[0].pid: expected a number or null"));
  write(R"({"instances": {}})");
  EXPECT_TRUE(file.refresh(path).error.contains("\"instances\": expected an array"));
  write(R"({"instances": [], "available": [3]})");
  EXPECT_TRUE(file.refresh(path).error.contains("available[0]: expected a file name"));
  EXPECT_EQ(file.status().instances.size(), 1u);
}

TEST_F(PluginsFileTest, AMissingFileMeansNoPluginsAndIsNotAnError) {
  write(kGood);
  file.refresh(path);
  std::filesystem::remove(path);  // the daemon removes it on a clean stop
  const auto& s = file.refresh(path);
  EXPECT_FALSE(s.present);
  EXPECT_TRUE(s.error.isEmpty());
  EXPECT_TRUE(s.instances.empty());
}

}  // namespace
}  // namespace ipcsync::admin
