// Test support for the sync engine's end-to-end suite: a namespace served by a real ipcsyncd,
// real ipcsync-plugin-host processes (crm.so, mining.so) and a real ipcsync-sync, each exec'd
// with its output in a log file under the test's directory, plus plain-SQL helpers.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "namespace_test.h"

namespace ipcsync::sync::test {

// An exec'd process; killed with SIGKILL on destruction if still running.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::filesystem::path& log);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  pid_t pid() const { return m_pid; }
  int signalAndWait(int signal);                       // exit code, or 128+signal
  int waitExit(std::chrono::milliseconds timeout);     // -1 if still running after it
  bool running();

 private:
  pid_t m_pid = -1;
  int m_code = -1;
};

// Runs SQL on a database file (busy timeout 5 s); fails the test on an error.
void exec(const std::filesystem::path& db, const std::string& sql);
// The rows of a query, one line per row, columns separated by '|'.
std::string query(const std::filesystem::path& db, const std::string& sql);
// Polls `predicate` every 50 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds timeout);

class SyncE2eTest : public ipcsync::test::NamespaceTest {
 protected:
  void SetUp() override;
  std::filesystem::path db(const std::string& instance) const { return dir.path() / (instance + ".db"); }
  std::filesystem::path logOf(const std::string& name) const { return dir.path() / (name + ".log"); }
  std::filesystem::path journalPath() const { return dir.path() / "journal.db"; }
  std::filesystem::path statusPath() const { return dir.path() / ns / "sync.json"; }
  // Starts `ipcsync-plugin-host` for `instance` of `plugin` ("crm", "mining") on db(instance)
  // and waits until it is registered.
  std::unique_ptr<Process> startHost(const std::string& instance, const std::string& plugin);
  // Writes the topology (routes JSON array; the journal goes to journalPath()) and starts ipcsync-sync.
  std::unique_ptr<Process> startSync(const std::string& routesJson, const std::string& journalExtra = "");
  std::string log(const std::string& name) const;
  // Waits until `instance` is no longer registered (after it was killed or exited).
  bool gone(const std::string& instance);
};

}  // namespace ipcsync::sync::test
