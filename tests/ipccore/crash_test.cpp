// Crash and exit: whatever a process holds is released when it ends, however it ends; when the
// engine ends, clients are told at once; nothing of a namespace survives its processes.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "ipcsync/ipccore/admin_segment.h"
#include "ipcsync/ipccore/client.h"
#include "ipcsync/ipccore/control_layout.h"
#include "control_view.h"
#include "namespace_test.h"
#include "processes.h"
#include "protocol.h"
#include "socket_io.h"

namespace ipcsync {
namespace {

using namespace std::chrono_literals;
using test::Child;
using test::EngineProcess;

class CrashTest : public test::NamespaceTest {
 protected:
  void SetUp() override { startEngine("crash"); }
  // In a victim: tell the test it is registered and ready, then wait to be killed.
  static int readyThenWait(int readyFd) {
    [[maybe_unused]] auto n = ::write(readyFd, "r", 1);
    ::pause();
    return 0;
  }
  // In the test: wait for the victim to be ready; its pid, which must be in the registry.
  pid_t awaitVictim(int readyFd, const Child& victim) {
    char x;
    EXPECT_EQ(::read(readyFd, &x, 1), 1) << "the victim did not get ready";
    EXPECT_TRUE(hasRecord(victim.pid()));
    return victim.pid();
  }
  bool shmExists() const { return std::filesystem::exists("/dev/shm/" + AdminSegment::shmName(ns)); }
};

TEST_F(CrashTest, KillNineAtRandomPointsReleasesEverythingAndOthersCarryOn) {
  auto survivor = Client::connect(options("survivor"));
  ASSERT_TRUE(survivor);
  const std::uint32_t seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  for (int round = 0; round < 24; ++round) {
    Child victim([&, round] {
      auto c = Client::connect(options("victim-" + std::to_string(round)));
      if (!c) return 1;
      std::vector<Allocation> held;
      for (std::uint64_t i = 0;; ++i) {  // churn until killed, holding ever more memory
        if (auto a = (*c)->allocate(64 << (i % 10))) held.push_back(*a);
        if (held.size() > 200) {
          (void)(*c)->free(held.front());
          held.erase(held.begin());
        }
      }
    });
    // Anywhere from before the rendezvous to deep in the churn.
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    const pid_t pid = victim.pid();
    EXPECT_EQ(victim.kill(SIGKILL), 128 + SIGKILL) << "round " << round;
    EXPECT_TRUE(test::waitFor([&] { return !hasRecord(pid); }, 5s))
        << "round " << round << ": the killed process's record stays";
    auto a = (*survivor)->allocate(512);
    ASSERT_TRUE(a) << a.error().message();
    ASSERT_TRUE((*survivor)->free(*a));
  }
  EXPECT_TRUE((*survivor)->ping(5s)) << "the engine kept serving throughout";
  EXPECT_EQ(records().size(), 1u);
  // Not only the records: the engine holds the survivor's block and control segment, and
  // nothing of the victims, neither descriptors nor mappings.
  const std::string block = "ipcsync-block:" + ns + ":";
  const std::string control = "ipcsync-control:" + ns + ":";
  EXPECT_TRUE(test::waitFor([&] { return test::countDescriptors(engine->pid(), block) == 1; }, 5s))
      << test::countDescriptors(engine->pid(), block) << " block descriptors held";
  EXPECT_EQ(test::countDescriptors(engine->pid(), control), 1);
  EXPECT_EQ(test::countMappings(engine->pid(), block), 1);
  EXPECT_EQ(test::countMappings(engine->pid(), control), 1);
}

TEST_F(CrashTest, TheEngineNoticesADeathWithinMilliseconds) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  Child victim([&] {
    auto c = Client::connect(options("short-lived"));
    if (!c) return 1;
    return readyThenWait(ready[1]);
  });
  const pid_t pid = awaitVictim(ready[0], victim);
  const auto t0 = std::chrono::steady_clock::now();
  victim.kill(SIGKILL);
  ASSERT_TRUE(test::waitFor([&] { return !hasRecord(pid); }, 5s));
  const auto took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  std::printf("record gone %lld us after kill -9\n", static_cast<long long>(took.count()));
}

// A raw client that goes through the rendezvous itself so that it can take its manager's lock
// and die holding it: the one moment a robust mutex would be needed, if reclaiming needed a lock.
TEST_F(CrashTest, AProcessKilledWhileHoldingItsManagerLockIsReclaimed) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  Child victim([&] {
    auto admin = AdminSegment::open(ns);
    if (!admin) return 1;
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, (*admin)->engine().socketPath.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 2;
    protocol::Hello hello;
    std::strcpy(hello.name, "lock-holder");
    if (!io::sendMessage(fd.get(), io::asBytes(hello)) || !io::waitReadable(fd.get(), 5000ms)) return 3;
    alignas(8) std::byte buf[512];
    auto got = io::receiveMessage(fd.get(), buf);
    if (!got || got->fds.size() != protocol::kWelcomeFds) return 4;
    protocol::Welcome w;
    std::memcpy(&w, buf, sizeof w);
    const auto lay = layout::controlLayoutFor(w.geometry);
    auto control = Mapping::map(got->fds[0].get(), lay.size, Mapping::Access::ReadWrite, "control");
    if (!control) return 5;
    auto* shared = reinterpret_cast<layout::ManagerShared*>(control->data() + lay.managerOffset);
    shared->lock.store(::getpid());
    return readyThenWait(ready[1]);
  });
  const pid_t pid = awaitVictim(ready[0], victim);
  victim.kill(SIGKILL);
  EXPECT_TRUE(test::waitFor([&] { return !hasRecord(pid); }, 5s));
  EXPECT_EQ(test::countDescriptors(engine->pid(), "ipcsync-block:" + ns + ":lock-holder"), 0)
      << "the engine let go of the dead holder's block without needing its lock";
  EXPECT_EQ(test::countMappings(engine->pid(), "ipcsync-control:" + ns + ":lock-holder"), 0);
  auto next = Client::connect(options("next"));
  ASSERT_TRUE(next) << next.error().message();
  EXPECT_TRUE((*next)->allocate(100));
  EXPECT_TRUE((*next)->ping());
}

TEST_F(CrashTest, ClientsLearnPromptlyThatTheEngineIsGone) {
  auto c = Client::connect(options("orphan"));
  ASSERT_TRUE(c);
  EXPECT_TRUE((*c)->engineAlive());
  engine->stop(SIGKILL);
  pollfd p{(*c)->engineFd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1) << "the engine descriptor wakes an event loop";
  EXPECT_FALSE((*c)->engineAlive());
  auto ping = (*c)->ping(5s);
  ASSERT_FALSE(ping);
  EXPECT_EQ(ping.error().code, Errc::EngineGone);
  EXPECT_NE(ping.error().detail.find("has gone"), std::string::npos) << ping.error().message();
  // The own block stays usable for what is in it; nothing hangs.
  auto a = (*c)->allocate(64);
  EXPECT_TRUE(a);
}

TEST_F(CrashTest, AClientBlockedOnALockTheDeadEngineHeldGetsEngineGone) {
  auto o = options("stuck");
  o.lockTimeout = 200ms;
  auto c = Client::connect(o);
  ASSERT_TRUE(c);
  // Pretend the engine died inside our manager: its pid in the lock word, then kill -9 it.
  // (The engine does take this lock when it copies into our block.)
  auto view = test::ControlView::find(ns, "stuck", (*c)->geometry());
  ASSERT_TRUE(view);
  // Stop the engine first, so that no tick of its own can take and drop the lock under us.
  ASSERT_TRUE(test::stopProcess(engine->pid()));
  view->manager().lock.store(engine->pid());
  engine->stop(SIGKILL);
  auto a = (*c)->allocate(64);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, Errc::EngineGone) << a.error().message();
}

TEST_F(CrashTest, SigtermStopsTheEngineCleanlyAndLeavesNothingBehind) {
  std::vector<Child> clients;
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  for (int i = 0; i < 4; ++i)
    clients.emplace_back([&, i] {
      auto c = Client::connect(options("c" + std::to_string(i)));
      if (!c) return 1;
      [[maybe_unused]] auto n = ::write(ready[1], "r", 1);
      pollfd p{(*c)->engineFd(), POLLIN, 0};
      if (::poll(&p, 1, 10000) != 1) return 2;  // wait for the engine to go
      return (*c)->ping().error().code == Errc::EngineGone ? 0 : 3;
    });
  for (int i = 0; i < 4; ++i) {
    char x;
    ASSERT_EQ(::read(ready[0], &x, 1), 1);
  }
  ASSERT_TRUE(shmExists());
  EXPECT_EQ(engine->stop(SIGTERM), 0) << "exit code 0 on SIGTERM";
  for (auto& c : clients) EXPECT_EQ(c.wait(), 0) << "every client saw 'engine gone'";
  EXPECT_FALSE(shmExists()) << "admin segment removed";
  EXPECT_FALSE(std::filesystem::exists(dir.path() / ns)) << "socket and runtime directory removed";
}

TEST_F(CrashTest, ASegmentLeftByADeadEngineIsDetectedAndReplaced) {
  engine->stop(SIGKILL);
  ASSERT_TRUE(shmExists()) << "a kill -9 leaves the segment";
  auto c = Client::connect(options("too-late"));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::EngineNotRunning);
  EXPECT_NE(c.error().detail.find("stale"), std::string::npos) << c.error().message();

  auto fresh = EngineProcess::start(ns, dir.path());
  ASSERT_TRUE(fresh) << "a new engine takes over the namespace";
  EXPECT_NE(fresh->log().find("left behind by engine pid"), std::string::npos) << fresh->log();
  EXPECT_TRUE(Client::connect(options("welcome-back")));
  EXPECT_EQ(fresh->stop(SIGTERM), 0);
  EXPECT_FALSE(shmExists());
}

}  // namespace
}  // namespace ipcsync
