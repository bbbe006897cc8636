// Test support: real processes. Engines are the real ipcsyncd binary, exec'd; clients are forked
// children running a function. Every helper cleans up after itself.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ipcsync::test {

// A namespace name unique to this test process and call ("t<pid>-<n>-<tag>").
std::string uniqueNamespace(const std::string& tag);

// A fresh directory under /tmp, removed (recursively) on destruction. Mode 0711 so that tests
// running a client under another uid can reach a socket inside it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return m_path; }

 private:
  std::filesystem::path m_path;
};

// A running ipcsyncd. start() waits until it serves (its --ready-fd reports) or exits.
class EngineProcess {
 public:
  static std::optional<EngineProcess> start(const std::string& ns, const std::filesystem::path& runtimeDir,
                                            std::vector<std::string> extraArgs = {});
  // Runs ipcsyncd to completion (for refusals): exit code and stderr.
  static std::pair<int, std::string> runToExit(std::vector<std::string> args);

  EngineProcess(EngineProcess&& other) noexcept;
  EngineProcess& operator=(EngineProcess&& other) noexcept;
  ~EngineProcess();

  pid_t pid() const { return m_pid; }
  // Sends `signal` and reaps; returns the exit code, or 128+signal when killed by one. What a
  // killed engine leaves behind stays until the destructor, which removes it.
  int stop(int signal);
  std::string log() const;  // what it wrote to stderr so far

 private:
  EngineProcess() = default;
  pid_t m_pid = -1;
  std::string m_ns;
  std::filesystem::path m_logPath;
};

// A forked child running `body`; its return value is the exit code.
class Child {
 public:
  // Forks; the child runs `body` and exits with its result. Only for a parent without threads:
  // a fork copies the locks other threads held at that moment (use spawn() from tests with threads).
  explicit Child(const std::function<int()>& body);
  // Forks and execs argv[0] with `argv`; the descriptors in `inherit` stay open across the exec
  // (their close-on-exec flag is cleared in the child). The child runs only async-signal-safe
  // calls before the exec, so a parent with threads may use it.
  static Child spawn(const std::vector<std::string>& argv, const std::vector<int>& inherit = {});
  Child(Child&& other) noexcept;
  Child& operator=(Child&&) = delete;
  ~Child();

  pid_t pid() const { return m_pid; }
  int wait();            // exit code, or 128+signal; -1 once reaped
  std::optional<int> poll();  // the exit code if it has ended (and reaps it), else nothing
  int kill(int signal);  // sends and reaps; -1 once reaped
 private:
  Child() = default;
  pid_t m_pid = -1;
};

// Polls `predicate` every millisecond until it holds or `timeout` passes.
bool waitFor(const std::function<bool()>& predicate, std::chrono::milliseconds timeout);

// Stops `pid` with SIGSTOP and waits until the kernel shows it stopped (state T).
bool stopProcess(pid_t pid);

// How many of `pid`'s descriptors and mappings name a memfd whose name contains `needle`.
int countDescriptors(pid_t pid, const std::string& needle);
int countMappings(pid_t pid, const std::string& needle);

// Absolute path of a built binary, from the compile definitions.
std::string ipcsyncdPath();

}  // namespace ipcsync::test
