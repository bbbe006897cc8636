// The console tests' clients, as a program of their own: the tests fork and exec it, never run
// client code in a bare fork of themselves. The test process has threads (the poller's reader and
// journal threads, Qt's), and a fork copies whatever lock one of them held at that moment: a
// child that then allocated could wait forever (seen under ASan: the allocator's region lock).
//
//   console_child NAMESPACE NAME receiver
//   console_child NAMESPACE NAME sender GATE_FD PEER COUNT BYTES
//   console_child NAMESPACE NAME allocator GATE_FD PIECES BYTES
//   console_child NAMESPACE NAME streamer PEER PER_SECOND BYTES
//   console_child NAMESPACE NAME publisher TOPIC DEPTH COUNT BYTES
//
// Each registers as NAME (waiting up to 30 s; why it could not goes to stderr, exit 10), then:
// receiver accepts sessions and receives and releases everything; sender, for each byte on
// GATE_FD, sends COUNT messages of BYTES to PEER (opening the session the first time);
// allocator, for each byte on GATE_FD, allocates PIECES sub-blocks of BYTES more and keeps them;
// streamer sends PER_SECOND messages of BYTES to PEER until killed; publisher advertises TOPIC
// with a cache of DEPTH, publishes COUNT messages of BYTES and stays registered. A closed gate
// ends the child (exit 0); a failed step exits 11-14.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ipcsync/ipccore/client.h"

namespace {

using namespace std::chrono_literals;
using ipcsync::Client;

// The next command byte on `fd`; false when the test closed its end.
bool nextCommand(int fd) {
  pollfd p{fd, POLLIN, 0};
  char c = 0;
  return ::poll(&p, 1, -1) == 1 && ::read(fd, &c, 1) == 1;
}

int receiver(Client& c) {
  for (;;) {
    auto m = c.receive(200ms);
    if (m) c.release(std::move(*m));
    else if (!c.engineAlive()) return 11;
  }
}

int sender(Client& c, int gate, const std::string& peer, int count, std::uint64_t bytes) {
  std::optional<ipcsync::SessionId> session;
  while (nextCommand(gate)) {
    if (!session) {
      auto s = c.openSession(peer);
      if (!s) return 12;
      session = *s;
    }
    for (int i = 0; i < count; ++i) {
      auto loan = c.loan(bytes, 1000ms);
      if (!loan) return 13;
      if (!c.send(*session, *loan)) return 14;
    }
  }
  return 0;
}

int allocator(Client& c, int gate, int pieces, std::uint64_t bytes) {
  std::vector<ipcsync::Allocation> held;
  while (nextCommand(gate)) {
    for (int i = 0; i < pieces; ++i) {
      auto a = c.allocate(bytes);
      if (!a) return 13;
      held.push_back(*a);
    }
  }
  return 0;
}

int streamer(Client& c, const std::string& peer, int perSecond, std::uint64_t bytes) {
  auto s = c.openSession(peer);
  if (!s) return 12;
  const auto gap = std::chrono::microseconds(1'000'000 / std::max(1, perSecond));
  for (auto next = std::chrono::steady_clock::now();; next += gap) {
    std::this_thread::sleep_until(next);
    auto loan = c.loan(bytes, 1000ms);
    if (!loan) return 13;
    if (!c.send(*s, *loan)) return 14;
  }
}

int publisher(Client& c, const std::string& topic, std::uint32_t depth, int count, std::uint64_t bytes) {
  auto t = c.advertise(topic, depth);
  if (!t) return 12;
  for (int i = 0; i < count; ++i) {
    auto loan = c.loan(bytes, 1000ms);
    if (!loan || !c.send(*t, *loan)) return 13;
  }
  for (;;) std::this_thread::sleep_for(1s);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv, argv + argc);
  const auto usage = [&] {
    std::fprintf(stderr, "console_child: bad arguments (see console_child.cpp)\n");
    return 2;
  };
  if (a.size() < 4) return usage();
  const auto number = [&](std::size_t i) { return i < a.size() ? std::strtoull(a[i].c_str(), nullptr, 10) : 0ULL; };
  ipcsync::ConnectOptions o;
  o.ns = a[1];
  o.name = a[2];
  o.timeout = 30s;
  auto c = Client::connect(o);
  if (!c) {
    std::fprintf(stderr, "child '%s' (pid %d) could not register: %s\n", o.name.c_str(), static_cast<int>(::getpid()),
                 c.error().message().c_str());
    return 10;
  }
  const std::string& role = a[3];
  const int gate = static_cast<int>(number(4));
  if (role == "receiver") return receiver(**c);
  if (role == "sender" && a.size() == 8) return sender(**c, gate, a[5], static_cast<int>(number(6)), number(7));
  if (role == "allocator" && a.size() == 7) return allocator(**c, gate, static_cast<int>(number(5)), number(6));
  if (role == "streamer" && a.size() == 7) return streamer(**c, a[4], static_cast<int>(number(5)), number(6));
  if (role == "publisher" && a.size() == 8)
    return publisher(**c, a[4], static_cast<std::uint32_t>(number(5)), static_cast<int>(number(6)), number(7));
  return usage();
}
