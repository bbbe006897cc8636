// The plugin keys of the daemon's YAML file: plugins_dir, state_dir, plugin_host, plugins and
// supervision. Every bad value is refused with file:line:col, what was found and what to do.
#include <gtest/gtest.h>

#include <fstream>

#include "ipcsync/sync/engine_config_file.h"
#include "processes.h"

namespace ipcsync {
namespace {

class PluginConfigTest : public ::testing::Test {
 protected:
  PluginConfigTest() {
    std::filesystem::create_directories(plugins());
    std::ofstream(plugins() / "crm.so") << "not really a library";
    std::ofstream(plugins() / "mining.so") << "not really a library";
  }
  std::filesystem::path plugins() const { return dir.path() / "plugins"; }
  std::filesystem::path write(const std::string& text) {
    const auto p = dir.path() / "engine.yaml";
    std::ofstream(p) << text;
    return p;
  }
  std::expected<DaemonConfig, ConfigError> load(const std::string& text) {
    DaemonConfig base;
    base.plugins.pluginsDir = plugins();
    return loadDaemonConfig(write(text), base);
  }
  std::string errorOf(const std::string& text) {
    auto r = load(text);
    EXPECT_FALSE(r) << "accepted:\n" << text;
    return r ? std::string() : r.error().message;
  }
  test::TempDir dir;
};

TEST_F(PluginConfigTest, ReadsInstancesSettingsAndSupervision) {
  auto c = load(R"(
namespace: crm-demo
state_dir: state
plugins:
  - name: crm
    library: crm.so
    settings:
      database:
        path: /var/lib/crm.db
        timeout_ms: 250
      mode: live
      empty:
  - name: mining-2
    library: ./plugins/mining.so
    data_dir: /tmp/mining-data
supervision:
  restart_initial_ms: 100
  restart_max_ms: 1000
  max_crashes: 3
  crash_window_s: 10
  stop_timeout_ms: 700
)");
  ASSERT_TRUE(c) << c.error().message;
  const auto& p = c->plugins;
  ASSERT_EQ(p.instances.size(), 2u);
  EXPECT_EQ(p.instances[0].name, "crm");
  EXPECT_EQ(p.instances[0].library, plugins() / "crm.so");
  EXPECT_EQ(p.instances[0].settings, (std::vector<std::pair<std::string, std::string>>{
                                         {"database.path", "/var/lib/crm.db"},
                                         {"database.timeout_ms", "250"},
                                         {"mode", "live"},
                                         {"empty", ""}}));
  EXPECT_EQ(p.instances[1].library, plugins() / "mining.so");  // relative to the file's directory
  EXPECT_EQ(p.instances[1].libraryAsWritten, "./plugins/mining.so");
  EXPECT_EQ(p.stateDir, dir.path() / "state");
  EXPECT_EQ(effectiveDataDir(p, p.instances[0], c->engine.ns), dir.path() / "state" / "crm");
  EXPECT_EQ(effectiveDataDir(p, p.instances[1], c->engine.ns), "/tmp/mining-data");
  EXPECT_EQ(p.supervision.restartInitial.count(), 100);
  EXPECT_EQ(p.supervision.restartMax.count(), 1000);
  EXPECT_EQ(p.supervision.maxCrashes, 3u);
  EXPECT_EQ(p.supervision.crashWindow.count(), 10);
  EXPECT_EQ(p.supervision.stopTimeout.count(), 700);
}

TEST_F(PluginConfigTest, DefaultsAreTheDocumentedOnes) {
  auto c = load("plugins:\n  - {name: crm, library: crm.so}\n");
  ASSERT_TRUE(c) << c.error().message;
  const auto& s = c->plugins.supervision;
  EXPECT_EQ(s.restartInitial.count(), 200);
  EXPECT_EQ(s.restartMax.count(), 30000);
  EXPECT_EQ(s.maxCrashes, 5u);
  EXPECT_EQ(s.crashWindow.count(), 60);
  EXPECT_EQ(s.stopTimeout.count(), 5000);
  EXPECT_EQ(c->plugins.pluginsDir, plugins());
  EXPECT_EQ(effectiveDataDir(c->plugins, c->plugins.instances[0], "ns1"), defaultStateDir("ns1") / "crm");
}

TEST_F(PluginConfigTest, ALibraryThatDoesNotExistIsRefusedWithThePathTried) {
  auto e = errorOf("plugins:\n  - name: crm\n    library: crn.so\n");
  EXPECT_NE(e.find("engine.yaml:3:14"), std::string::npos) << e;
  EXPECT_NE(e.find("tried " + (plugins() / "crn.so").string()), std::string::npos) << e;
  EXPECT_NE(e.find("put the file into plugins_dir"), std::string::npos) << e;
  e = errorOf("plugins:\n  - name: crm\n    library: lib/none.so\n");
  EXPECT_NE(e.find("tried " + (dir.path() / "lib/none.so").string()), std::string::npos) << e;
}

TEST_F(PluginConfigTest, DuplicateInstanceNamesAreRefusedNamingBoth) {
  auto e = errorOf("plugins:\n  - {name: crm, library: crm.so}\n  - {name: crm, library: mining.so}\n");
  EXPECT_NE(e.find("engine.yaml:3:12"), std::string::npos) << e;
  EXPECT_NE(e.find("duplicate plugin instance name 'crm'"), std::string::npos) << e;
  EXPECT_NE(e.find("first defined at " + (dir.path() / "engine.yaml").string() + ":2:5"), std::string::npos) << e;
}

TEST_F(PluginConfigTest, BadInstanceNamesAndMissingKeysAreRefused) {
  auto e = errorOf("plugins:\n  - {name: CRM!, library: crm.so}\n");
  EXPECT_NE(e.find(":2:12: plugin instance name 'CRM!' is not allowed; expected 1-32 of [a-z0-9_-]"), std::string::npos) << e;
  e = errorOf("plugins:\n  - {name: " + std::string(33, 'a') + ", library: crm.so}\n");
  EXPECT_NE(e.find("is not allowed"), std::string::npos) << e;
  e = errorOf("plugins:\n  - {library: crm.so}\n");
  EXPECT_NE(e.find(":2:5: plugin instance has no 'name'"), std::string::npos) << e;
  e = errorOf("plugins:\n  - {name: crm}\n");
  EXPECT_NE(e.find("plugin instance 'crm' has no 'library'"), std::string::npos) << e;
  e = errorOf("plugins:\n  - {name: crm, libary: crm.so}\n");
  EXPECT_NE(e.find("unknown key 'libary' in a plugin instance; did you mean 'library'?"), std::string::npos) << e;
  e = errorOf("plugins:\n  name: crm\n");
  EXPECT_NE(e.find(":2:3: 'plugins' must be a list"), std::string::npos) << e;
  e = errorOf("plugins:\n  - crm.so\n");
  EXPECT_NE(e.find(":2:5: a plugin instance must be a mapping"), std::string::npos) << e;
}

TEST_F(PluginConfigTest, SettingsMustBeAMapOfValuesOrMaps) {
  auto e = errorOf("plugins:\n  - name: crm\n    library: crm.so\n    settings: [a, b]\n");
  EXPECT_NE(e.find(":4:15: 'settings' of plugin instance 'crm' must be a mapping"), std::string::npos) << e;
  e = errorOf("plugins:\n  - name: crm\n    library: crm.so\n    settings:\n      tables: [a, b]\n");
  EXPECT_NE(e.find(":5:15: setting 'tables' of plugin instance 'crm' is a list"), std::string::npos) << e;
  e = errorOf("plugins:\n  - name: crm\n    library: crm.so\n    settings:\n      a.b: 1\n");
  EXPECT_NE(e.find(":5:7: setting name 'a.b'"), std::string::npos) << e;
}

TEST_F(PluginConfigTest, BadSupervisionValuesAreRefused) {
  auto e = errorOf("supervision:\n  max_crashes: 0\n");
  EXPECT_NE(e.find(":2:16: 'max_crashes' is '0'; expected a whole number from 1 to 1000"), std::string::npos) << e;
  e = errorOf("supervision:\n  restart_initial_ms: 500\n  restart_max_ms: 100\n");
  EXPECT_NE(e.find(":3:19: 'restart_max_ms' (100) is smaller than 'restart_initial_ms' (500)"), std::string::npos) << e;
  e = errorOf("supervision:\n  crash_window: 5\n");
  EXPECT_NE(e.find("did you mean 'crash_window_s'"), std::string::npos) << e;
  e = errorOf("supervision:\n  crash_window_s: soon\n");
  EXPECT_NE(e.find(":2:19: 'crash_window_s' is 'soon'"), std::string::npos) << e;
}

TEST_F(PluginConfigTest, BadDirectoriesAndHostProgramAreRefused) {
  auto e = errorOf("plugins_dir: nowhere\n");
  EXPECT_NE(e.find(":1:14: plugins_dir " + (dir.path() / "nowhere").string() + " is not a directory"), std::string::npos) << e;
  e = errorOf("plugin_host: plugins/crm.so\n");
  EXPECT_NE(e.find(":1:14: plugin_host " + (plugins() / "crm.so").string() + " is not an executable file"), std::string::npos) << e;
  e = errorOf("plugins_dir:\n");
  EXPECT_NE(e.find("'plugins_dir' is empty; expected a path"), std::string::npos) << e;
}

TEST_F(PluginConfigTest, ARefusedFileLeavesTheBaseConfigurationUntouched) {
  DaemonConfig base;
  base.plugins.pluginsDir = plugins();
  base.plugins.instances.push_back({"keep", plugins() / "crm.so", "crm.so", {}, {}});
  const auto p = write("plugins:\n  - {name: crm, library: crm.so}\n  - {name: crm, library: crm.so}\n");
  EXPECT_FALSE(loadDaemonConfig(p, base));
  ASSERT_EQ(base.plugins.instances.size(), 1u);
  EXPECT_EQ(base.plugins.instances[0].name, "keep");
}

TEST_F(PluginConfigTest, TheDaemonRefusesAMissingLibraryWithExitCodeTwo) {
  const auto p = write("plugins_dir: plugins\nplugins:\n  - {name: crm, library: gone.so}\n");
  auto [code, out] = test::EngineProcess::runToExit({"--config", p.string(), "--namespace", test::uniqueNamespace("cfg")});
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("engine.yaml:3:26"), std::string::npos) << out;
  EXPECT_NE(out.find("tried " + (plugins() / "gone.so").string()), std::string::npos) << out;
}

}  // namespace
}  // namespace ipcsync
