#include "daemon_fixture.h"

#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "../run_program.h"
#include "ipcsync/ipccore/admin_segment.h"

namespace ipcsync::sync::test {

using namespace std::chrono_literals;

namespace {

std::vector<pid_t> childrenOf(pid_t pid) {
  std::vector<pid_t> out;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream in(task.path() / "children");
    for (pid_t child; in >> child;) out.push_back(child);
  }
  return out;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

bool processAlive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

long residentKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  return -1;
}

void SyncDaemonTest::SetUp() { ns = ipcsync::test::uniqueNamespace("sd"); }

void SyncDaemonTest::TearDown() {
  if (engine) {
    if (HasFailure()) std::printf("---- ipcsyncd log ----\n%s\n", daemonLog().c_str());
    killDaemon();
  }
  m_killed.clear();  // their destructors remove a segment no live engine owns
  if (auto seg = AdminSegment::open(ns); seg && !(*seg)->engineAlive())
    ::shm_unlink(("/" + AdminSegment::shmName(ns)).c_str());
}

void SyncDaemonTest::writeConfig(const std::vector<Instance>& instances, const std::string& routes,
                                 const std::string& journal) {
  m_instances = instances;
  m_routes = !routes.empty();
  std::ostringstream y;
  y << "namespace: " << ns << "\n"
    << "runtime_dir: " << dir.path().string() << "\n"
    << "plugins_dir: " << IPCSYNC_PLUGINS_DIR << "\n"
    << "state_dir: " << (dir.path() / "state").string() << "\n"
    << "plugin_host: " << IPCSYNC_PLUGIN_HOST_BIN << "\n"
    << "sync_program: " << IPCSYNC_SYNC_BIN << "\n"
    << "supervision: {restart_initial_ms: 100, restart_max_ms: 1000, max_crashes: 100, stop_timeout_ms: 5000}\n"
    << "plugins:\n";
  for (const auto& i : instances)
    y << "  - name: " << i.name << "\n    library: " << i.plugin << ".so\n    settings:\n      database: "
      << db(i.name).string() << "\n";
  if (m_routes) y << "routes:\n" << routes << "\n";
  y << "journal:\n  path: " << journalPath().string() << "\n" << journal << "\n";
  const auto tmp = configPath().string() + ".new";
  std::ofstream(tmp) << y.str();
  std::filesystem::rename(tmp, configPath());
}

bool SyncDaemonTest::startDaemon() {
  engine = ipcsync::test::EngineProcess::start(ns, dir.path(), {"--config", configPath().string()});
  if (!engine) {
    ADD_FAILURE() << "ipcsyncd did not start:\n" << daemonLog();
    return false;
  }
  const bool up = eventually([&] {
    for (const auto& i : m_instances)
      if (!registered("plugin." + i.name)) return false;
    return !m_routes || registered("sync");
  }, 60s);
  EXPECT_TRUE(up) << "not every instance registered:\n" << daemonLog();
  if (!up || !m_routes) return up;
  // Registered is not yet created: wait until this sync engine started every host.
  const bool started = eventually([&] { return sourcesConnected(statusPath(), pidOf("sync")); }, 60s);
  EXPECT_TRUE(started) << "the sync engine did not start every host:\n" << daemonLog();
  return started;
}

std::vector<pid_t> SyncDaemonTest::daemonTree() const {
  std::vector<pid_t> out;
  if (!engine) return out;
  out.push_back(engine->pid());
  for (std::size_t i = 0; i < out.size(); ++i)
    for (pid_t c : childrenOf(out[i])) out.push_back(c);
  return out;
}

void SyncDaemonTest::killDaemon() {
  if (!engine) return;
  const auto tree = daemonTree();
  // Frozen first: no process notices another one dying and does something about it.
  for (pid_t p : tree) ::kill(p, SIGSTOP);
  for (pid_t p : tree) ::kill(p, SIGKILL);
  engine->stop(SIGKILL);  // reaps ipcsyncd; its children were reparented and are reaped by init
  EXPECT_TRUE(eventually([&] {
    for (pid_t p : tree)
      if (processAlive(p)) return false;
    return true;
  }, 20s)) << "a process of the killed daemon is still alive";
  m_logs += engine->log();
  m_killed.push_back(std::move(*engine));
  engine.reset();
}

void SyncDaemonTest::killDaemonOnly() {
  if (!engine) return;
  const auto tree = daemonTree();
  engine->stop(SIGKILL);
  const bool ended = eventually([&] {
    for (pid_t p : tree)
      if (processAlive(p)) return false;
    return true;
  }, 20s);
  EXPECT_TRUE(ended) << "a process started by the killed ipcsyncd kept running without it";
  for (pid_t p : tree)
    if (processAlive(p)) ::kill(p, SIGKILL);
  m_logs += engine->log();
  m_killed.push_back(std::move(*engine));
  engine.reset();
}

int SyncDaemonTest::stopDaemon() {
  if (!engine) return -1;
  const int code = engine->stop(SIGTERM);
  m_logs += engine->log();
  engine.reset();
  return code;
}

pid_t SyncDaemonTest::pidOf(const std::string& name) const {
  auto r = record(name);
  return r ? r->pid : -1;
}

std::string SyncDaemonTest::daemonLog() const { return m_logs + (engine ? engine->log() : std::string()); }

std::pair<int, std::string> SyncDaemonTest::cli(std::vector<std::string> args, bool withConfig) const {
  args.insert(args.begin(), IPCSYNC_CLI);
  if (withConfig) args.insert(args.end(), {"-c", configPath().string()});
  return ipcsync::test::runProgram(args);
}

nlohmann::json SyncDaemonTest::syncStatus() const {
  const auto text = slurp(statusPath());
  if (text.empty()) return {};
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return {};
  }
}

nlohmann::json SyncDaemonTest::routeStatus(const std::string& route, const std::string& subscriber) const {
  auto s = syncStatus();
  if (!s.contains("routes")) return {};
  for (const auto& r : s["routes"])
    if (r["route"] == route && r["subscriber"] == subscriber) return r;
  return {};
}

bool SyncDaemonTest::drained() const {
  auto s = syncStatus();
  if (!s.contains("routes") || !s.contains("journal") || !s.contains("sources")) return false;
  for (const auto& r : s["routes"])
    if (!r["connected"].get<bool>() || r["cursor"] != s["journal"]["head"] || r["dead_letters"] != 0) return false;
  for (const auto& src : s["sources"])
    if (src["waiting"] != 0 || src["held_back"].get<bool>()) return false;
  return true;
}

}  // namespace ipcsync::sync::test
