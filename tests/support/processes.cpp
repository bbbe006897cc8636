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

// An argv for execv, built before a fork: the child of a process with threads may run only
// async-signal-safe calls (a fork copies the locks other threads held; allocating could wait for
// ever), so it must not build strings or vectors.
class ExecArgs {
 public:
  explicit ExecArgs(std::vector<std::string> args) : m_args(std::move(args)) {
    for (auto& a : m_args) m_argv.push_back(a.data());
    m_argv.push_back(nullptr);
  }
  ExecArgs(const ExecArgs&) = delete;  // m_argv points into m_args
  ExecArgs& operator=(const ExecArgs&) = delete;
  [[noreturn]] void exec() const {
    ::execv(m_argv[0], m_argv.data());
    ::_exit(127);
  }

 private:
  std::vector<std::string> m_args;
  std::vector<char*> m_argv;
};

// ipcsyncd with `args`.
ExecArgs engineArgs(const std::vector<std::string>& args) {
  std::vector<std::string> all{ipcsyncdPath()};
  all.insert(all.end(), args.begin(), args.end());
  return ExecArgs(std::move(all));
}

// In the child: the engine, its stdout and stderr to `log` (open and dup2 are async-signal-safe).
[[noreturn]] void execEngine(const ExecArgs& args, const char* log) {
  const int fd = ::open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ::dup2(fd, STDERR_FILENO);
    ::dup2(fd, STDOUT_FILENO);
  }
  args.exec();
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
  const ExecArgs exec = engineArgs(args);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(ready[1], 3);  // dup2 clears close-on-exec on the new descriptor
    execEngine(exec, e.m_logPath.c_str());
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
  const ExecArgs exec = engineArgs(args);
  const pid_t pid = ::fork();
  if (pid == 0) execEngine(exec, log.c_str());
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
  const ExecArgs exec(argv);
  std::fflush(nullptr);
  Child c;
  c.m_pid = ::fork();
  if (c.m_pid == 0) {
    for (int fd : inherit) ::fcntl(fd, F_SETFD, 0);
    exec.exec();
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
