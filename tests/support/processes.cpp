#include "processes.h"

#include "ipcsync/ipccore/admin_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

namespace ipcsync::test {
namespace {

int decodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return decodeStatus(status);
}

[[noreturn]] void execEngine(const std::vector<std::string>& args, const std::filesystem::path& log) {
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ::dup2(fd, STDERR_FILENO);
    ::dup2(fd, STDOUT_FILENO);
  }
  std::vector<char*> argv;
  const std::string path = ipcsyncdPath();
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(path.c_str(), argv.data());
  ::_exit(127);
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string ipcsyncdPath() { return IPCSYNC_TEST_IPCSYNCD; }

std::string uniqueNamespace(const std::string& tag) {
  static std::atomic<int> counter{0};
  return "t" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + "-" + tag;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/ipcsync-test-XXXXXX";
  m_path = ::mkdtemp(tmpl);
  ::chmod(m_path.c_str(), 0711);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(m_path, ec);
}

std::optional<EngineProcess> EngineProcess::start(const std::string& ns, const std::filesystem::path& runtimeDir,
                                                  std::vector<std::string> extraArgs) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return std::nullopt;
  EngineProcess e;
  e.m_ns = ns;
  e.m_logPath = runtimeDir / ("engine-" + ns + ".log");
  std::vector<std::string> args = {"--namespace", ns, "--runtime-dir", runtimeDir.string(), "--ready-fd", "3"};
  args.insert(args.end(), extraArgs.begin(), extraArgs.end());
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(ready[1], 3);  // dup2 clears close-on-exec on the new descriptor
    execEngine(args, e.m_logPath);
  }
  ::close(ready[1]);
  e.m_pid = pid;
  pollfd p{ready[0], POLLIN, 0};
  char buf[8] = {};
  const bool ok = ::poll(&p, 1, 10000) == 1 && ::read(ready[0], buf, sizeof buf) > 0;
  ::close(ready[0]);
  if (!ok) {
    e.stop(SIGKILL);
    return std::nullopt;
  }
  return e;
}

std::pair<int, std::string> EngineProcess::runToExit(std::vector<std::string> args) {
  char tmpl[] = "/tmp/ipcsyncd-run-XXXXXX.log";
  const int fd = ::mkstemps(tmpl, 4);
  ::close(fd);
  const std::filesystem::path log = tmpl;
  const pid_t pid = ::fork();
  if (pid == 0) execEngine(args, log);
  const int code = reap(pid);
  std::string out = slurp(log);
  std::filesystem::remove(log);
  return {code, out};
}

EngineProcess::EngineProcess(EngineProcess&& other) noexcept
    : m_pid(std::exchange(other.m_pid, -1)), m_ns(std::move(other.m_ns)), m_logPath(std::move(other.m_logPath)) {}

EngineProcess& EngineProcess::operator=(EngineProcess&& other) noexcept {
  if (this != &other) {
    if (m_pid > 0) stop(SIGKILL);
    m_pid = std::exchange(other.m_pid, -1);
    m_ns = std::move(other.m_ns);
    m_logPath = std::move(other.m_logPath);
  }
  return *this;
}

EngineProcess::~EngineProcess() {
  const pid_t pid = m_pid;
  if (m_pid > 0) stop(SIGTERM);
  // A test that killed the engine leaves its segment behind on purpose; remove it now.
  if (auto seg = AdminSegment::open(m_ns); seg && ((*seg)->engine().pid == pid || !(*seg)->engineAlive()))
    ::shm_unlink(("/" + AdminSegment::shmName(m_ns)).c_str());
}

int EngineProcess::stop(int signal) {
  if (m_pid <= 0) return -1;
  const pid_t pid = std::exchange(m_pid, -1);
  ::kill(pid, signal);
  int status = 0;
  bool reaped = false;
  for (int i = 0; i < 5000 && !reaped; ++i) {  // a stopped engine must not hang the suite
    reaped = ::waitpid(pid, &status, WNOHANG) == pid;
    if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!reaped) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  return decodeStatus(status);
}

std::string EngineProcess::log() const { return slurp(m_logPath); }

Child::Child(const std::function<int()>& body) {
  std::fflush(nullptr);  // or the child would print what the parent had buffered, again
  m_pid = ::fork();
  if (m_pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 98;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
}

Child Child::spawn(const std::vector<std::string>& argv, const std::vector<int>& inherit) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::fflush(nullptr);
  Child c;
  c.m_pid = ::fork();
  if (c.m_pid == 0) {
    for (int fd : inherit) ::fcntl(fd, F_SETFD, 0);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return c;
}

Child::Child(Child&& other) noexcept : m_pid(std::exchange(other.m_pid, -1)) {}

Child::~Child() {
  if (m_pid > 0) kill(SIGKILL);
}

int Child::wait() {
  if (m_pid <= 0) return -1;  // already reaped
  const int code = reap(m_pid);
  m_pid = -1;
  return code;
}

std::optional<int> Child::poll() {
  int status = 0;
  if (m_pid <= 0 || ::waitpid(m_pid, &status, WNOHANG) != m_pid) return std::nullopt;
  m_pid = -1;
  return decodeStatus(status);
}

int Child::kill(int signal) {
  if (m_pid <= 0) return -1;  // already reaped (poll, wait): never ::kill(-1, ...)
  ::kill(m_pid, signal);
  return wait();
}

bool stopProcess(pid_t pid) {
  ::kill(pid, SIGSTOP);
  return waitFor([&] {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    std::getline(in, stat);
    const auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'T';
  }, std::chrono::seconds(5));
}

int countDescriptors(pid_t pid, const std::string& needle) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code ignored;
    if (std::filesystem::read_symlink(e.path(), ignored).string().find(needle) != std::string::npos) ++n;
  }
  return n;
}

int countMappings(pid_t pid, const std::string& needle) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  int n = 0;
  for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
  return n;
}

bool waitFor(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace ipcsync::test
