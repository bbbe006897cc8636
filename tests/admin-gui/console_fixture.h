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

#include <algorithm>
#include <chrono>
#include <cstdio>
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
  // Child side: the next command, waiting at most `ms` (-1 forever); 0 when none or the pipe closed.
  char next(int ms) const {
    pollfd p{m_fd[0], POLLIN, 0};
    char c = 0;
    if (::poll(&p, 1, ms) == 1 && ::read(m_fd[0], &c, 1) == 1) return c;
    return 0;
  }

 private:
  int m_fd[2] = {-1, -1};
};

// Registers a child as `o.name`. The children below exist to be registered, so they wait up to
// 30 s (a forked debug or sanitizer build on a loaded CI machine can miss the default 2 s) and,
// when they cannot, say why on stderr, which the test's output keeps.
inline std::unique_ptr<Client> registerChild(ConnectOptions o) {
  o.timeout = std::max(o.timeout, std::chrono::milliseconds(30'000));
  auto c = Client::connect(o);
  if (c) return std::move(*c);
  std::fprintf(stderr, "child '%s' (pid %d) could not register: %s\n", o.name.c_str(), static_cast<int>(::getpid()),
               c.error().message().c_str());
  return nullptr;
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
inline Child receiverChild(const ConnectOptions& o) {
  return Child([o] {
    auto c = registerChild(o);
    if (!c) return 10;
    for (;;) {
      auto m = c->receive(std::chrono::milliseconds(200));
      if (m) c->release(std::move(*m));
      else if (!c->engineAlive()) return 11;
    }
  });
}

// A child registered as `name` that, for each byte on `gate`, sends `count` messages of `bytes`
// to `peer` (opening the session the first time), then keeps its registration.
inline Child senderChild(const ConnectOptions& o, const std::string& peer, const Gate& gate, int count, std::uint64_t bytes) {
  return Child([o, peer, &gate, count, bytes] {
    auto c = registerChild(o);
    if (!c) return 10;
    std::optional<SessionId> session;
    for (;;) {
      if (!gate.next(-1)) return 0;
      if (!session) {
        auto s = c->openSession(peer);
        if (!s) return 12;
        session = *s;
      }
      for (int i = 0; i < count; ++i) {
        auto loan = c->loan(bytes, std::chrono::milliseconds(1000));
        if (!loan) return 13;
        if (!c->send(*session, *loan)) return 14;
      }
    }
  });
}

// A child registered as `name` that, for each byte on `gate`, allocates `pieces` sub-blocks of
// `bytes` more and keeps them.
inline Child allocatorChild(const ConnectOptions& o, const Gate& gate, int pieces, std::uint64_t bytes) {
  return Child([o, &gate, pieces, bytes] {
    auto c = registerChild(o);
    if (!c) return 10;
    std::vector<Allocation> held;
    for (;;) {
      if (!gate.next(-1)) return 0;
      for (int i = 0; i < pieces; ++i) {
        auto a = c->allocate(bytes);
        if (!a) return 13;
        held.push_back(*a);
      }
    }
  });
}

}  // namespace ipcsync::test

namespace ipcsync::test {

// A child registered as `name` that sends `perSecond` messages of `bytes` to `peer` until killed.
inline Child streamerChild(const ConnectOptions& o, const std::string& peer, int perSecond, std::uint64_t bytes) {
  return Child([o, peer, perSecond, bytes] {
    auto c = registerChild(o);
    if (!c) return 10;
    auto s = c->openSession(peer);
    if (!s) return 12;
    const auto gap = std::chrono::microseconds(1'000'000 / std::max(1, perSecond));
    for (auto next = std::chrono::steady_clock::now();; next += gap) {
      std::this_thread::sleep_until(next);
      auto loan = c->loan(bytes, std::chrono::milliseconds(1000));
      if (!loan) return 13;
      if (!c->send(*s, *loan)) return 14;
    }
  });
}

// A child registered as `name` that advertises `topic` with a cache of `depth`, publishes
// `count` messages of `bytes` and stays registered.
inline Child publisherChild(const ConnectOptions& o, const std::string& topic, std::uint32_t depth, int count,
                            std::uint64_t bytes) {
  return Child([o, topic, depth, count, bytes] {
    auto c = registerChild(o);
    if (!c) return 10;
    auto t = c->advertise(topic, depth);
    if (!t) return 12;
    for (int i = 0; i < count; ++i) {
      auto loan = c->loan(bytes, std::chrono::milliseconds(1000));
      if (!loan || !c->send(*t, *loan)) return 13;
    }
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  });
}

}  // namespace ipcsync::test
