// Test support for the sync suites that run the whole daemon: `ipcsyncd --config FILE.yaml`
// starting real ipcsync-plugin-host processes (crm.so, mining.so) and ipcsync-sync itself, as a
// user runs it, plus the `ipcsync` command line against the same file. Each test owns its
// namespace, runtime and state directories; whatever it started is killed when it ends, also on
// a failed assertion.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "namespace_test.h"
#include "sync_fixture.h"

namespace ipcsync::sync::test {

class SyncDaemonTest : public ipcsync::test::NamespaceTest {
 protected:
  struct Instance {
    std::string name;
    std::string plugin;  // "crm" or "mining"
  };

  void SetUp() override;
  void TearDown() override;

  // Writes the daemon's YAML: `instances` on databases db(name), `routes` (the YAML list under
  // routes:, indented by two spaces) and extra journal keys (`journal` lines, indented likewise).
  void writeConfig(const std::vector<Instance>& instances, const std::string& routes, const std::string& journal = "");
  // Starts ipcsyncd with the file and waits until every instance and the sync engine registered.
  bool startDaemon();
  // SIGKILL to ipcsyncd and every process it started, all frozen first (SIGSTOP) so that none sees
  // another die; waits until they are gone. Nothing they leave behind (/dev/shm, sockets, status
  // files, WAL files) is cleaned: the next startDaemon() must cope.
  void killDaemon();
  // SIGKILL to ipcsyncd alone: the processes it started must notice and end by themselves (they
  // are in process groups of their own, so a kill of ipcsyncd's group does not reach them).
  // Fails the test if one is still running after 20 s (and then kills it).
  void killDaemonOnly();
  // SIGTERM to ipcsyncd; its exit code.
  int stopDaemon();
  bool daemonRunning() const { return engine.has_value(); }
  // ipcsyncd and all its descendants now.
  std::vector<pid_t> daemonTree() const;
  // The registry's pid for `name` (e.g. "sync", "plugin.crm"), or -1.
  pid_t pidOf(const std::string& name) const;
  // What every ipcsyncd of this test logged (its hosts' and the sync engine's lines included).
  std::string daemonLog() const;
  // Runs the ipcsync command line; exit code and output. `withConfig` appends "-c <file>".
  std::pair<int, std::string> cli(std::vector<std::string> args, bool withConfig = true) const;
  nlohmann::json syncStatus() const;  // sync.json, or null
  // A route's entry of sync.json (by route and subscriber), or null.
  nlohmann::json routeStatus(const std::string& route, const std::string& subscriber) const;
  // Every route's cursor at the journal head, nothing dead-lettered: the topology is drained.
  bool drained() const;

  std::filesystem::path db(const std::string& instance) const { return dir.path() / (instance + ".db"); }
  std::filesystem::path configPath() const { return dir.path() / "ipcsyncd.yaml"; }
  std::filesystem::path journalPath() const { return dir.path() / "journal.db"; }
  std::filesystem::path statusPath() const { return dir.path() / ns / "sync.json"; }

 private:
  std::vector<Instance> m_instances;
  bool m_routes = false;
  std::string m_logs;  // of earlier daemons of this test
  std::vector<ipcsync::test::EngineProcess> m_killed;
};

// The resident set of a process in KiB (VmRSS), or -1.
long residentKib(pid_t pid);
// Whether `pid` exists and is not a zombie.
bool processAlive(pid_t pid);

}  // namespace ipcsync::sync::test
