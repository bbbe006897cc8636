// Test support for the console: an event loop that runs until a condition holds, signal counters
// for models, and clients (forked children) that register, talk and allocate on command.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <QAbstractItemModel>
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QThread>

#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "ipcsync/ipccore/client.h"
#include "namespace_test.h"
#include "processes.h"

namespace ipcsync::test {

inline int& modelTesterComplaints() {
  static int n = 0;
  return n;
}

// Runs the event loop until `predicate` holds or `timeout` passes; whether it held.
inline bool spinUntil(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  QElapsedTimer t;
  t.start();
  while (!predicate()) {
    if (t.elapsed() >= timeout.count()) return false;
    QCoreApplication::processEvents(QEventLoop::AllEvents, 5);
    QThread::msleep(2);
  }
  return true;
}

// Counts a model's structural and data signals.
struct ModelSignals {
  int inserted = 0, removed = 0, changed = 0, resets = 0, layoutChanges = 0;
  explicit ModelSignals(QAbstractItemModel* m) {
    QObject::connect(m, &QAbstractItemModel::rowsInserted, [this] { ++inserted; });
    QObject::connect(m, &QAbstractItemModel::rowsRemoved, [this] { ++removed; });
    QObject::connect(m, &QAbstractItemModel::dataChanged, [this] { ++changed; });
    QObject::connect(m, &QAbstractItemModel::modelReset, [this] { ++resets; });
    QObject::connect(m, &QAbstractItemModel::layoutChanged, [this] { ++layoutChanges; });
  }
};

// A one-way command pipe from the test to a child: the test writes bytes, the child reads them.
// Both ends are close-on-exec; spawn() keeps the read end open in the child it is given to.
class Gate {
 public:
  Gate() { [[maybe_unused]] const int rc = ::pipe2(m_fd, O_CLOEXEC); }
  ~Gate() {
    for (int fd : m_fd)
      if (fd >= 0) ::close(fd);
  }
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;
  void send(char c = 'x') const { [[maybe_unused]] auto n = ::write(m_fd[1], &c, 1); }
  // The child's end (console_child reads its commands from it).
  int readFd() const { return m_fd[0]; }
  // Reading side, in this process: the next command, waiting at most `ms` (-1 forever); 0 when
  // none or the pipe closed.
  char next(int ms) const {
    pollfd p{m_fd[0], POLLIN, 0};
    char c = 0;
    if (::poll(&p, 1, ms) == 1 && ::read(m_fd[0], &c, 1) == 1) return c;
    return 0;
  }
 private:
  int m_fd[2] = {-1, -1};
};

// The clients below are tests/admin-gui/console_child.cpp, forked and exec'd (never a bare fork
// of this process, whose threads' locks a fork would copy). Each registers as `o.name` (only
// `ns` and `name` of the options are used), waiting up to 30 s; why it could not goes to stderr,
// which the test's output keeps.
inline Child consoleChild(const ConnectOptions& o, std::vector<std::string> args, std::vector<int> inherit = {}) {
  args.insert(args.begin(), {IPCSYNC_CONSOLE_CHILD, o.ns, o.name});
  return Child::spawn(args, inherit);
}

// For a failure message: which of `children` have ended, with their exit codes (reaping them).
inline std::string endedChildren(std::vector<Child>& children) {
  std::string out;
  for (auto& c : children) {
    const pid_t pid = c.pid();
    if (auto code = c.poll()) out += " pid " + std::to_string(pid) + " exited " + std::to_string(*code) + ";";
  }
  return out.empty() ? "every child is still running" : "ended:" + out;
}

// A child registered as `name` that accepts sessions and receives and releases everything.
inline Child receiverChild(const ConnectOptions& o) { return consoleChild(o, {"receiver"}); }

// A child registered as `name` that, for each byte on `gate`, sends `count` messages of `bytes`
// to `peer` (opening the session the first time), then keeps its registration.
inline Child senderChild(const ConnectOptions& o, const std::string& peer, const Gate& gate, int count, std::uint64_t bytes) {
  return consoleChild(o, {"sender", std::to_string(gate.readFd()), peer, std::to_string(count), std::to_string(bytes)},
                      {gate.readFd()});
}

// A child registered as `name` that, for each byte on `gate`, allocates `pieces` sub-blocks of
// `bytes` more and keeps them.
inline Child allocatorChild(const ConnectOptions& o, const Gate& gate, int pieces, std::uint64_t bytes) {
  return consoleChild(o, {"allocator", std::to_string(gate.readFd()), std::to_string(pieces), std::to_string(bytes)},
                      {gate.readFd()});
}

// A child registered as `name` that sends `perSecond` messages of `bytes` to `peer` until killed.
inline Child streamerChild(const ConnectOptions& o, const std::string& peer, int perSecond, std::uint64_t bytes) {
  return consoleChild(o, {"streamer", peer, std::to_string(perSecond), std::to_string(bytes)});
}

// A child registered as `name` that advertises `topic` with a cache of `depth`, publishes
// `count` messages of `bytes` and stays registered.
inline Child publisherChild(const ConnectOptions& o, const std::string& topic, std::uint32_t depth, int count,
                            std::uint64_t bytes) {
  return consoleChild(o, {"publisher", topic, std::to_string(depth), std::to_string(count), std::to_string(bytes)});
}

}  // namespace ipcsync::test
