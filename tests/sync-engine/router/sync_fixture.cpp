#include "sync_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace ipcsync::sync::test {

namespace {
int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}
}  // namespace

Process::Process(const std::vector<std::string>& argv, const std::filesystem::path& log) {
  m_pid = ::fork();
  if (m_pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDERR_FILENO);
      ::dup2(fd, STDOUT_FILENO);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
}

Process::~Process() {
  if (running()) signalAndWait(SIGKILL);
}

bool Process::running() {
  if (m_pid <= 0 || m_code >= 0) return false;
  int status = 0;
  if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
    m_code = decode(status);
    return false;
  }
  return true;
}

int Process::signalAndWait(int signal) {
  if (!running()) return m_code;
  ::kill(m_pid, signal);
  int status = 0;
  while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
  }
  m_code = decode(status);
  return m_code;
}

int Process::waitExit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return m_code;
}

namespace {
sqlite3* openDb(const std::filesystem::path& db) {
  sqlite3* h = nullptr;
  if (sqlite3_open(db.c_str(), &h) != SQLITE_OK) ADD_FAILURE() << "cannot open " << db;
  sqlite3_busy_timeout(h, 5000);
  return h;
}
}  // namespace

void exec(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* h = openDb(db);
  char* err = nullptr;
  if (sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    ADD_FAILURE() << db << ": " << (err ? err : "?") << " in: " << sql.substr(0, 200);
    sqlite3_free(err);
  }
  sqlite3_close(h);
}

std::string query(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* h = openDb(db);
  std::string out;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
    out = std::string("(error: ") + sqlite3_errmsg(h) + ")";
  } else {
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(s); ++i) {
        const auto* t = sqlite3_column_text(s, i);
        out += (i ? "|" : "") + std::string(t ? reinterpret_cast<const char*>(t) : "NULL");
      }
      out += "\n";
    }
    if (rc != SQLITE_DONE) out += std::string("(error: ") + sqlite3_errmsg(h) + ")";
  }
  sqlite3_finalize(s);
  sqlite3_close(h);
  return out;
}

bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

void SyncE2eTest::SetUp() { startEngine("sync"); }

std::unique_ptr<Process> SyncE2eTest::startHost(const std::string& instance, const std::string& plugin) {
  const std::string pluginPath = std::string(IPCSYNC_PLUGINS_DIR) + "/" + plugin + ".so";
  auto p = std::make_unique<Process>(
      std::vector<std::string>{IPCSYNC_PLUGIN_HOST_BIN, "--plugin", pluginPath, "--instance", instance, "--namespace", ns,
                               "--runtime-dir", dir.path().string(), "--data-dir", (dir.path() / (instance + "-data")).string(),
                               "--setting", "database=" + db(instance).string(), "--poll-ms", "5"},
      logOf(instance));
  EXPECT_TRUE(eventually([&] { return registered("plugin." + instance) || !p->running(); }, std::chrono::seconds(20)))
      << log(instance);
  EXPECT_TRUE(p->running()) << log(instance);
  return p;
}

std::unique_ptr<Process> SyncE2eTest::startSync(const std::string& routesJson, const std::string& journalExtra) {
  const auto file = dir.path() / "topology.json";
  std::ofstream(file) << R"({"routes":)" << routesJson << R"(,"journal":{"path":")" << journalPath().string() << '"'
                      << journalExtra << "}}";
  auto p = std::make_unique<Process>(std::vector<std::string>{IPCSYNC_SYNC_BIN, "--namespace", ns, "--runtime-dir",
                                                              dir.path().string(), "--topology", file.string()},
                                     logOf("sync"));
  EXPECT_TRUE(eventually([&] { return registered("sync") || !p->running(); }, std::chrono::seconds(20))) << log("sync");
  return p;
}

std::string SyncE2eTest::log(const std::string& name) const {
  std::ifstream in(logOf(name));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool SyncE2eTest::gone(const std::string& instance) {
  return eventually([&] { return !record(instance).has_value(); }, std::chrono::seconds(20));
}

}  // namespace ipcsync::sync::test
