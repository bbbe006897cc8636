#include "ipcsync/sync/host_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

extern char** environ;

namespace {
// glibc 2.36's <sys/pidfd.h> lacks extern "C", so C++ cannot link its wrapper; call the kernel.
int pidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Resource exhaustion that may pass: the host is started again later instead of failing for good.
bool isTransient(int err) { return err == EAGAIN || err == EMFILE || err == ENFILE || err == ENOMEM; }

std::unexpected<ipcsync::SpawnError> spawnError(std::string what, int err) {
  return std::unexpected(ipcsync::SpawnError{std::move(what) + ": " + std::strerror(err), isTransient(err)});
}
}  // namespace

namespace ipcsync {

std::string ExitStatus::describe() const {
  if (!signaled) return "exit " + std::to_string(code);
  const char* abbrev = ::sigabbrev_np(code);
  return "signal " + std::to_string(code) + (abbrev ? std::string(" (SIG") + abbrev + ")" : std::string());
}

std::expected<HostProcess, SpawnError> HostProcess::spawn(const std::filesystem::path& program,
                                                          const std::vector<std::string>& args) {
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) return spawnError("cannot start " + program.string() + ": pipe", errno);
  UniqueFd readEnd(pipeFds[0]), writeEnd(pipeFds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attr);
  ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&actions, writeEnd.get(), STDERR_FILENO);
  // Nothing else the daemon holds (or inherited without O_CLOEXEC from whoever started it) leaks in.
  ::posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  sigset_t none, defaults;
  ::sigemptyset(&none);
  // The daemon ignores SIGPIPE and blocks SIGTERM and SIGINT (it reads them from a signalfd);
  // the host must start with neither. (Handlers are reset by exec anyway; ignoring is not.)
  ::sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD}) ::sigaddset(&defaults, sig);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &defaults);
  ::posix_spawnattr_setpgroup(&attr, 0);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  const std::string path = program.string();
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, path.c_str(), &actions, &attr, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) return spawnError("cannot start " + path, rc);

  HostProcess out;
  out.m_pid = pid;
  out.m_pidFd.reset(pidfdOpen(pid));
  if (!out.m_pidFd) {
    const int err = errno;
    out.killAndReap();
    return spawnError("cannot watch " + path + ": pidfd_open", err);
  }
  ::fcntl(out.m_pidFd.get(), F_SETFD, FD_CLOEXEC);
  ::fcntl(readEnd.get(), F_SETFL, O_NONBLOCK);
  out.m_stderr = std::move(readEnd);
  return out;
}

HostProcess::HostProcess(HostProcess&& other) noexcept
    : m_pid(std::exchange(other.m_pid, -1)),
      m_pidFd(std::move(other.m_pidFd)),
      m_stderr(std::move(other.m_stderr)),
      m_partial(std::move(other.m_partial)) {}

HostProcess& HostProcess::operator=(HostProcess&& other) noexcept {
  if (this != &other) {
    killAndReap();
    m_pid = std::exchange(other.m_pid, -1);
    m_pidFd = std::move(other.m_pidFd);
    m_stderr = std::move(other.m_stderr);
    m_partial = std::move(other.m_partial);
  }
  return *this;
}

HostProcess::~HostProcess() { killAndReap(); }

void HostProcess::killAndReap() noexcept {
  if (m_pid <= 0) return;
  ::kill(-m_pid, SIGKILL);  // the unreaped leader keeps its pid (and group id) from being reused
  ::kill(m_pid, SIGKILL);   // in case it left its group
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(m_pid), &info, WEXITED) != 0 && errno == EINTR) {
  }
  m_pid = -1;
}

void HostProcess::drainStderr(const std::function<void(std::string_view)>& line) {
  if (!m_stderr) return;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(m_stderr.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;  // EAGAIN: nothing more for now
    if (n == 0) {
      if (!m_partial.empty()) line(std::exchange(m_partial, {}));
      m_stderr.reset();
      return;
    }
    m_partial.append(buf, static_cast<std::size_t>(n));
    for (std::size_t nl; (nl = m_partial.find('\n')) != std::string::npos;) {
      line(std::string_view(m_partial).substr(0, nl));
      m_partial.erase(0, nl + 1);
    }
    if (m_partial.size() > 16384) line(std::exchange(m_partial, {}));  // a runaway line is cut
  }
}

void HostProcess::signal(int sig) noexcept {
  if (m_pid <= 0) return;
  ::kill(-m_pid, sig);
  ::kill(m_pid, sig);  // also if it left its process group (setsid): shutdown must reach it
}

std::optional<ExitStatus> HostProcess::tryReap() {
  if (m_pid <= 0) return std::nullopt;
  siginfo_t info{};
  // WNOWAIT first: the group is killed while the leader's pid is still ours.
  if (::waitid(P_PIDFD, static_cast<id_t>(m_pidFd.get()), &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0)
    return std::nullopt;
  ::kill(-m_pid, SIGKILL);
  info = {};
  while (::waitid(P_PIDFD, static_cast<id_t>(m_pidFd.get()), &info, WEXITED) != 0 && errno == EINTR) {
  }
  m_pid = -1;
  ExitStatus s;
  s.signaled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
  s.code = info.si_status;
  return s;
}

}  // namespace ipcsync
