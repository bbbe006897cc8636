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

#include <nlohmann/json.hpp>

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
  // Starts `ipcsync-plugin-host` for `instance` of `plugin` ("crm", "mining", or a path to a
  // plugin built elsewhere) on db(instance) and waits until it is registered.
  std::unique_ptr<Process> startHost(const std::string& instance, const std::string& plugin);
  // Whether, within 60 s, ipcsync-sync `sync` wrote a sync.json showing every source connected.
  bool connected(const Process& sync) const;
  // Writes the topology (routes JSON array; the journal goes to journalPath()) and starts ipcsync-sync
  // with `extraArgs` (e.g. {"--apply-timeout-ms", "1000"}). IPCSYNC_TEST_SYNC_BIN, when set, names
  // the ipcsync-sync to run instead of this build's (to run a test against an older build).
  std::unique_ptr<Process> startSync(const std::string& routesJson, const std::string& journalExtra = "",
                                     const std::vector<std::string>& extraArgs = {});
  std::string log(const std::string& name) const;
  // Waits until `instance` is no longer registered (after it was killed or exited).
  bool gone(const std::string& instance);
};

}  // namespace ipcsync::sync::test

// Shared by the daemon-level suites (daemon_fixture.h): CRM workloads and comparisons.
namespace ipcsync::sync::test {

// `transactions` random transactions of plain SQL on a CRM file (accounts, orders placed, changed,
// deleted), ids from `idBase` so that two writers never collide; the same seed writes the same.
void crmWorkload(const std::filesystem::path& db, std::uint64_t seed, int transactions, std::int64_t idBase);
// A seed from IPCSYNC_TEST_SEED or random, printed with `what` so a failure can be repeated.
std::uint64_t testSeed(const char* what);

// A JSON file (sync.json) as it is now; null when missing or not (yet) valid.
nlohmann::json readJson(const std::filesystem::path& file);
// Every row of the four CRM tables, one block per table, for comparing replicas.
std::string crmTableRows(const std::filesystem::path& db);
// "table: N rows, checksum X" per CRM table (FNV-1a over the rows in key order), for messages.
std::string crmChecksums(const std::filesystem::path& db);
// True when mining's three aggregate tables equal the GROUP BY over the CRM file (and it has orders).
bool miningEqualsGroupBy(const std::filesystem::path& crm, const std::filesystem::path& mining);
// The GROUP BYs and mining's tables side by side, for a failure message.
std::string miningComparison(const std::filesystem::path& crm, const std::filesystem::path& mining);
// True once the sync.json at `status` was written by process `syncPid` and shows every source
// connected (so each host has created its tables and was started). Hosts register before their
// plugin creates its tables; write to a database only after this.
bool sourcesConnected(const std::filesystem::path& status, pid_t syncPid);
// PRAGMA integrity_check of a SQLite file ("ok" when sound).
std::string integrityCheck(const std::filesystem::path& db);

}  // namespace ipcsync::sync::test
