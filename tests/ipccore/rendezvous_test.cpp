// The setup flow between real processes: an ipcsyncd and forked clients.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include "ipcsync/ipccore/admin_segment.h"
#include "ipcsync/ipccore/client.h"
#include "namespace_test.h"
#include "processes.h"
#include "protocol.h"
#include "socket_io.h"

namespace ipcsync {
namespace {

using namespace std::chrono_literals;
using test::Child;
using test::EngineProcess;

class RendezvousTest : public test::NamespaceTest {
 protected:
  void startEngine(std::vector<std::string> extra = {}) { NamespaceTest::startEngine("rv", std::move(extra)); }
  std::unique_ptr<AdminSegment> observe() {
    auto a = AdminSegment::open(ns);
    EXPECT_TRUE(a) << a.error().message();
    return a ? std::move(*a) : nullptr;
  }
  std::size_t registeredCount() const {
    std::size_t n = 0;
    for (const auto& r : records()) n += r.state == RecordState::Registered;
    return n;
  }
};

TEST_F(RendezvousTest, RegistersAProcessAndPublishesItsRecord) {
  startEngine();
  auto c = Client::connect(options("crm"));
  ASSERT_TRUE(c) << c.error().message();
  auto a = (*c)->allocate(4000);
  ASSERT_TRUE(a) << a.error().message();
  std::memset((*c)->bytes(*a).data(), 0x5a, a->size);

  auto admin = observe();
  const ProcessRecord r = admin->load((*c)->slot()).value();
  EXPECT_EQ(r.state, RecordState::Registered);
  EXPECT_EQ(r.nameView(), "crm");
  EXPECT_EQ(r.pid, ::getpid());
  EXPECT_EQ(r.uid, ::getuid());
  EXPECT_EQ(r.generation, (*c)->generation());
  EXPECT_EQ(r.geometry, (*c)->geometry());
  EXPECT_TRUE(test::waitFor([&] { return admin->load((*c)->slot())->stats.bytesInUse == 4096; }, 2s))
      << "the engine publishes the manager's figures";
  EXPECT_TRUE((*c)->ping());
}

TEST_F(RendezvousTest, TheEngineGivesBackTheArenasOfABlockThatWentIdle) {
  startEngine({"--arena-size", "64KiB", "--max-arenas", "8"});
  auto c = Client::connect(options("bursty"));
  ASSERT_TRUE(c);
  std::vector<Allocation> held;
  for (int i = 0; i < 6; ++i) held.push_back(*(*c)->allocate(64 * 1024));
  for (const auto& a : held) ASSERT_TRUE((*c)->free(a));
  EXPECT_EQ((*c)->stats()->activeArenas, 6u) << "freeing alone keeps the pages for the next burst";
  auto admin = observe();
  EXPECT_TRUE(test::waitFor([&] { return (*c)->stats()->activeArenas == 1; }, 5s))
      << "the engine trims a block that allocated nothing for a tick";
  EXPECT_TRUE(test::waitFor([&] { return admin->load((*c)->slot())->stats.activeArenas == 1; }, 2s));
}

TEST_F(RendezvousTest, SixtyFourProcessesRegisterAtOnce) {
  startEngine();
  int release[2];
  ASSERT_EQ(::pipe(release), 0);
  std::vector<Child> children;
  for (int i = 0; i < 64; ++i) {
    children.emplace_back([&, i] {
      ::close(release[1]);
      auto c = Client::connect(options("proc-" + std::to_string(i)));
      if (!c) {
        std::fprintf(stderr, "%s\n", c.error().message().c_str());
        return 1;
      }
      auto a = (*c)->allocate(1024 * (i + 1));
      if (!a) return 2;
      char x;
      [[maybe_unused]] auto n = ::read(release[0], &x, 1);  // hold the registration until released
      return (*c)->free(*a) ? 0 : 3;
    });
  }
  ::close(release[0]);
  EXPECT_TRUE(test::waitFor([&] { return registeredCount() == 64; }, 20s)) << registeredCount() << " of 64 registered";
  auto admin = observe();
  std::set<std::string> names;
  for (const auto& [slot, r] : admin->snapshot()) names.insert(std::string(r.nameView()));
  EXPECT_EQ(names.size(), 64u) << "each process has its own record";
  ::close(release[1]);
  for (auto& c : children) EXPECT_EQ(c.wait(), 0);
  EXPECT_TRUE(test::waitFor([&] { return registeredCount() == 0; }, 5s)) << "records leave the registry";
}

TEST_F(RendezvousTest, ReportsAnEngineThatIsNotRunning) {
  ns = test::uniqueNamespace("absent");
  auto c = Client::connect(options("lonely"));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::EngineNotRunning);
  EXPECT_NE(c.error().message().find("ipcsyncd --namespace " + ns), std::string::npos) << c.error().message();
}

TEST_F(RendezvousTest, RefusesAUserNotOnTheAccessList) {
  startEngine({"--allow-uid", "54321"});
  auto c = Client::connect(options("intruder"));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::AccessDenied);
  EXPECT_NE(c.error().detail.find("uid " + std::to_string(::getuid())), std::string::npos) << c.error().message();
  EXPECT_EQ(registeredCount(), 0u);
}

TEST_F(RendezvousTest, AdmitsAUserThroughTheGroupList) {
  startEngine({"--allow-uid", "54321", "--allow-gid", std::to_string(::getgid())});
  auto c = Client::connect(options("member"));
  EXPECT_TRUE(c) << c.error().message();
}

TEST_F(RendezvousTest, RefusesAClientOfAnotherProtocolVersion) {
  startEngine();
  auto admin = observe();
  const std::string path = admin->engine().socketPath;
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  protocol::Hello hello;
  hello.head.version = protocol::kVersion + 1;
  std::strcpy(hello.name, "future");
  ASSERT_TRUE(io::sendMessage(fd.get(), io::asBytes(hello)));
  ASSERT_TRUE(io::waitReadable(fd.get(), 5000ms));
  alignas(8) std::byte buf[512];
  auto got = io::receiveMessage(fd.get(), buf);
  ASSERT_TRUE(got);
  ASSERT_EQ(got->size, sizeof(protocol::Refusal));
  protocol::Refusal r;
  std::memcpy(&r, buf, sizeof r);
  EXPECT_EQ(static_cast<Errc>(r.code), Errc::VersionMismatch);
  EXPECT_NE(std::string(r.detail).find("protocol " + std::to_string(protocol::kVersion)), std::string::npos) << r.detail;
  EXPECT_EQ(registeredCount(), 0u);
}

TEST_F(RendezvousTest, RefusesAGarbledHello) {
  startEngine();
  auto admin = observe();
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, admin->engine().socketPath.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const char junk[] = "GET / HTTP/1.1\r\n\r\n";
  ASSERT_TRUE(io::sendMessage(fd.get(), std::as_bytes(std::span(junk))));
  ASSERT_TRUE(io::waitReadable(fd.get(), 5000ms));
  alignas(8) std::byte buf[512];
  auto got = io::receiveMessage(fd.get(), buf);
  ASSERT_TRUE(got && got->size == sizeof(protocol::Refusal));
  protocol::Refusal r;
  std::memcpy(&r, buf, sizeof r);
  EXPECT_EQ(static_cast<Errc>(r.code), Errc::ProtocolError);
  EXPECT_TRUE(Client::connect(options("after-junk"))) << "the engine carries on";
}

TEST_F(RendezvousTest, RefusesANameThatIsAlreadyRegistered) {
  startEngine();
  auto first = Client::connect(options("mining"));
  ASSERT_TRUE(first);
  auto second = Client::connect(options("mining"));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::NameTaken);
  EXPECT_NE(second.error().detail.find("pid " + std::to_string(::getpid())), std::string::npos) << second.error().message();
  first->reset();
  EXPECT_TRUE(test::waitFor([&] { return Client::connect(options("mining")).has_value(); }, 2s))
      << "the name is free again once its holder left";
}

TEST_F(RendezvousTest, RefusesBadNames) {
  startEngine();
  for (const std::string& name : std::vector<std::string>{"", "has space", std::string(48, 'x')}) {
    auto c = Client::connect(options(name));
    ASSERT_FALSE(c) << "'" << name << "'";
    EXPECT_EQ(c.error().code, Errc::InvalidArgument);
  }
}

TEST_F(RendezvousTest, WaitsForASlotWhenTheRegistryIsFullThenGivesUp) {
  startEngine({"--capacity", "2"});
  auto a = Client::connect(options("a"));
  auto b = Client::connect(options("b"));
  ASSERT_TRUE(a && b);
  auto o = options("c");
  o.timeout = 300ms;
  const auto t0 = std::chrono::steady_clock::now();
  auto c = Client::connect(o);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::RegistryFull);
  EXPECT_GE(waited, 250ms) << "it waited for a slot before failing";
  EXPECT_NE(c.error().detail.find("2 registry slots"), std::string::npos) << c.error().message();
}

TEST_F(RendezvousTest, AWaitingClientGetsTheSlotThatFreesUp) {
  startEngine({"--capacity", "1"});
  Child holder([&] {
    auto c = Client::connect(options("holder"));
    if (!c) return 1;
    std::this_thread::sleep_for(300ms);
    return 0;
  });
  ASSERT_TRUE(test::waitFor([&] { return registeredCount() == 1; }, 5s));
  auto o = options("waiter");
  o.timeout = 10s;
  const auto t0 = std::chrono::steady_clock::now();
  auto c = Client::connect(o);
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(c) << c.error().message();
  // The holder keeps the only slot for 300 ms after registering: the waiter must have waited
  // for it to free up, not found one at once.
  EXPECT_GE(waited, 100ms);
  EXPECT_EQ(holder.wait(), 0);
}

TEST_F(RendezvousTest, ReportsABusyEngineInsteadOfHanging) {
  startEngine();
  ASSERT_TRUE(test::stopProcess(engine->pid()));
  auto o = options("patient");
  o.timeout = 300ms;
  auto c = Client::connect(o);
  ::kill(engine->pid(), SIGCONT);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::EngineBusy);
  EXPECT_NE(c.error().detail.find("pid " + std::to_string(engine->pid())), std::string::npos) << c.error().message();
}

TEST_F(RendezvousTest, ASecondEngineOnALiveNamespaceIsRefusedNamingThePid) {
  startEngine();
  auto [code, out] = EngineProcess::runToExit({"--namespace", ns, "--runtime-dir", dir.path().string()});
  EXPECT_EQ(code, 3);
  EXPECT_NE(out.find("running engine (pid " + std::to_string(engine->pid()) + ")"), std::string::npos) << out;
  EXPECT_TRUE(Client::connect(options("still-served"))) << "the first engine is untouched";
}

TEST_F(RendezvousTest, ASecondEngineWithAnotherRuntimeDirIsRefusedToo) {
  startEngine();
  test::TempDir other;
  auto [code, out] = EngineProcess::runToExit({"--namespace", ns, "--runtime-dir", other.path().string()});
  EXPECT_EQ(code, 3);
  EXPECT_NE(out.find("pid " + std::to_string(engine->pid())), std::string::npos) << out;
}

}  // namespace
}  // namespace ipcsync
