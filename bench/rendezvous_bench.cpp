// Rendezvous benchmark: how long Client::connect takes from call to registered (the engine has
// created the control segment, block and handles, stored the record and handed the descriptors
// over), against the floor any socket-based rendezvous pays: connect() plus one request/reply
// on a Unix socket to a server that does nothing.
//
//   build/release/bench/rendezvous_bench [--iterations N]
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "bench_util.h"
#include "ipcsync/ipccore/client.h"

using namespace ipcsync;
using namespace ipcsync::bench;

namespace {

pid_t startEngine(const std::string& ns, const std::string& dir) {
  int ready[2];
  if (::pipe(ready) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(ready[1], 3);
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 2);
    ::execl(IPCSYNC_BENCH_IPCSYNCD, "ipcsyncd", "--namespace", ns.c_str(), "--runtime-dir", dir.c_str(), "--ready-fd",
            "3", "--log-level", "warn", nullptr);
    ::_exit(127);
  }
  ::close(ready[1]);
  char b[8];
  pollfd p{ready[0], POLLIN, 0};
  const bool ok = ::poll(&p, 1, 10000) == 1 && ::read(ready[0], b, sizeof b) > 0;
  ::close(ready[0]);
  return ok ? pid : -1;
}

// A Unix SOCK_SEQPACKET server in a child process that answers each message with one byte.
pid_t startEcho(const std::string& path) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int l = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(l, 64);
    for (;;) {
      const int c = ::accept(l, nullptr, nullptr);
      char buf[128];
      if (::recv(c, buf, sizeof buf, 0) > 0) ::send(c, "k", 1, MSG_NOSIGNAL);
      ::close(c);
    }
  }
  return pid;
}

void summarise(const char* label, std::vector<double> us) {
  std::printf("  %-40s median %7.1f us   p99 %7.1f us   max %7.1f us\n", label, quantile(us, 0.5), quantile(us, 0.99),
              quantile(us, 1.0));
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 2000;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--iterations") == 0) iterations = std::atoi(argv[i + 1]);
  char tmpl[] = "/tmp/ipcsync-bench-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string ns = "bench-rv-" + std::to_string(::getpid());
  const pid_t engine = startEngine(ns, dir);
  if (engine < 0) {
    std::fprintf(stderr, "rendezvous_bench: ipcsyncd did not start\n");
    return 1;
  }
  const std::string echoPath = dir + "/echo.sock";
  const pid_t echo = startEcho(echoPath);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  std::vector<double> ours, floor;
  ConnectOptions o;
  o.ns = ns;
  for (int i = 0; i < iterations; ++i) {
    o.name = "bench-" + std::to_string(i);
    auto t0 = Clock::now();
    auto c = Client::connect(o);
    ours.push_back(nsSince(t0) / 1000);
    if (!c) {
      std::fprintf(stderr, "rendezvous_bench: %s\n", c.error().message().c_str());
      return 1;
    }
    c->reset();  // deregister, so the registry never fills

    t0 = Clock::now();
    const int s = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, echoPath.c_str(), sizeof a.sun_path - 1);
    char buf[8];
    if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::send(s, "hello", 5, 0) != 5 ||
        ::recv(s, buf, sizeof buf, 0) != 1)
      return 1;
    floor.push_back(nsSince(t0) / 1000);
    ::close(s);
  }
  std::printf("rendezvous, connect call to registered (%d iterations)\n", iterations);
  summarise("ipcsync Client::connect", ours);
  summarise("Unix socket connect + 1 round trip", floor);
  std::printf("  ipcsync costs %.1fx the bare socket round trip (median); target: median under 1000 us\n",
              median(ours) / median(floor));
  ::kill(echo, SIGKILL);
  ::waitpid(echo, nullptr, 0);
  ::kill(engine, SIGTERM);
  ::waitpid(engine, nullptr, 0);
  std::filesystem::remove_all(dir);
  return 0;
}
