// Test support for the plugin host suites: paths of the built binaries and test plugins, a real
// ipcsync-plugin-host (or ipcsync) process run to completion or kept running, and a "sync"
// client that speaks the wire protocol to a host.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "ipcsync/ipccore/client.h"
#include "ipcsync/plugin_host/wire.h"

namespace ipcsync::test {

std::filesystem::path testPlugin(const std::string& name);  // <test plugin dir>/<name>.so
std::string pluginHostPath();
std::string cliPath();

struct RunResult {
  int code = -1;  // exit code, or 128+signal
  std::string out;
  std::string err;
};

// Runs `program args...` to completion (killed after `timeout`), capturing stdout and stderr.
RunResult runProgram(const std::string& program, const std::vector<std::string>& args,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));

// A running ipcsync-plugin-host; stderr goes to a log file read by log(). The destructor kills
// it if it is still running.
class HostProcess {
 public:
  explicit HostProcess(const std::vector<std::string>& args);
  HostProcess(const HostProcess&) = delete;
  HostProcess& operator=(const HostProcess&) = delete;
  ~HostProcess();
  pid_t pid() const { return m_pid; }
  std::optional<int> poll();  // exit code (128+signal) once it ended
  int wait(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));  // -1 on timeout
  int signal(int sig);  // sends and waits
  std::string log() const;

 private:
  pid_t m_pid = -1;
  std::filesystem::path m_log;
  std::optional<int> m_code;
};

// The sync engine's side, for tests: a client that opens a session to plugin.<instance> and
// sends requests as wire frames.
class SyncSide {
 public:
  // Connects as `name` and opens a session to `host` (waiting up to 10 s for it to register).
  static std::expected<SyncSide, std::string> open(const std::string& ns, const std::filesystem::path& runtimeDir,
                                                   const std::string& host, const std::string& name = "sync");
  // Sends a request frame and returns the reply frame's bytes.
  std::expected<std::vector<std::byte>, std::string> request(std::span<const std::byte> frame,
                                                             std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  template <class T> std::expected<std::vector<std::byte>, std::string> request(wire::Kind kind, const T& body) {
    return request(wire::encode(kind, body));
  }
  // Sends a frame without a correlation id.
  std::expected<void, std::string> send(std::span<const std::byte> frame);
  // The next plain message's bytes (Emit, SnapshotPiece, Conflict...).
  std::expected<std::vector<std::byte>, std::string> next(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  Client& client() { return *m_client; }
  SessionId session() const { return m_session; }

 private:
  std::unique_ptr<Client> m_client;
  SessionId m_session = 0;
};

}  // namespace ipcsync::test
