// HostProcess: one running plugin host, started by the supervisor.
//
// The child runs in its own process group (so a signal reaches whatever it started too), with
// stdin on /dev/null, the default disposition for every signal and an empty signal mask. Its
// stderr is a pipe the daemon reads, so each line it writes reaches the daemon's log tagged with
// the instance's name. The supervisor learns of its end through a pidfd (readable when it has
// exited), so nothing depends on SIGCHLD. Move-only; the destructor kills the process group and
// reaps the child if it is still there. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <expected>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ipcsync/ipccore/unique_fd.h"

namespace ipcsync {

// How a process ended.
struct ExitStatus {
  bool signaled = false;  // killed by a signal (code is the signal number) or exited (code is the exit code)
  int code = 0;
  // "exit 3" or "signal 11 (SIGSEGV)".
  std::string describe() const;
};

// Why a process could not be started.
struct SpawnError {
  std::string message;     // names the program and the reason
  bool transient = false;  // out of processes, descriptors or memory: trying again later can work
};

class HostProcess {
 public:
  // Starts `program` with `args` (argv[1..]). Fails with a message naming the program and the
  // reason when it cannot be started (missing, not executable: permanent; EAGAIN, EMFILE,
  // ENFILE, ENOMEM: transient); nothing is left running then.
  static std::expected<HostProcess, SpawnError> spawn(const std::filesystem::path& program,
                                                      const std::vector<std::string>& args);

  HostProcess(HostProcess&& other) noexcept;
  HostProcess& operator=(HostProcess&& other) noexcept;
  HostProcess(const HostProcess&) = delete;
  HostProcess& operator=(const HostProcess&) = delete;
  ~HostProcess();

  pid_t pid() const noexcept { return m_pid; }
  int pidFd() const noexcept { return m_pidFd.get(); }    // readable once the child has exited
  int stderrFd() const noexcept { return m_stderr.get(); }  // -1 after end of file

  // Reads what the child wrote to stderr without blocking and calls `line` for each complete
  // line (and, at end of file, for an unfinished last one). Closes the pipe at end of file.
  void drainStderr(const std::function<void(std::string_view)>& line);

  // Sends `signal` to the child's process group. No effect once reaped.
  void signal(int signal) noexcept;

  // If the child has exited: kills what is left of its process group, reaps it and returns how
  // it ended. Nothing while it still runs.
  std::optional<ExitStatus> tryReap();

 private:
  HostProcess() = default;
  void killAndReap() noexcept;

  pid_t m_pid = -1;
  UniqueFd m_pidFd;
  UniqueFd m_stderr;
  std::string m_partial;  // an unfinished stderr line
};

}  // namespace ipcsync
