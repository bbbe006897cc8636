// Invariant 1: no process can read or write another process's block. Blocks have no name to
// open; only the owner and the engine hold a descriptor; the engine hands each client its own.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "ipcsync/ipccore/admin_segment.h"
#include "ipcsync/ipccore/client.h"
#include "processes.h"

namespace ipcsync {
namespace {

using namespace std::chrono_literals;
using test::Child;

constexpr uid_t kNobody = 65534;

// Descriptors of `pid` whose target names an ipcsync block.
std::vector<std::string> blockDescriptors(pid_t pid) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(e.path(), ec).string();
    // Client blocks only: the engine's own block (its topic cache) is nobody else's.
    if (target.find("ipcsync-block:") != std::string::npos && target.find("engine-cache") == std::string::npos)
      out.push_back(e.path().string());
  }
  return out;
}

TEST(IsolationTest, ABlockHasNoNameAndOnlyItsOwnerAndTheEngineHoldIt) {
  test::TempDir dir;
  const std::string ns = test::uniqueNamespace("iso");
  auto engine = test::EngineProcess::start(ns, dir.path());
  ASSERT_TRUE(engine);
  auto owner = Client::connect(ConnectOptions{.ns = ns, .name = "owner"});
  ASSERT_TRUE(owner);
  auto other = Client::connect(ConnectOptions{.ns = ns, .name = "other"});
  ASSERT_TRUE(other);

  // Nothing under /dev/shm but the admin segment: no name through which to open a block.
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm")) {
    const std::string name = e.path().filename().string();
    if (name.find(ns) != std::string::npos) {
      EXPECT_EQ(name, AdminSegment::shmName(ns));
    }
  }
  // The test process holds exactly the two blocks the engine gave it; the engine holds both too.
  EXPECT_EQ(blockDescriptors(::getpid()).size(), 2u);
  EXPECT_EQ(blockDescriptors(engine->pid()).size(), 2u);
  // A third process that registers receives its own block, not another's.
  Child third([&] {
    auto c = Client::connect(ConnectOptions{.ns = ns, .name = "third"});
    if (!c) return 1;
    const auto fds = blockDescriptors(::getpid());
    // Inherited from the parent by fork: two; its own: one more, and only that one is mapped.
    return fds.size() == 3 ? 0 : 2;
  });
  EXPECT_EQ(third.wait(), 0);
}

TEST(IsolationTest, AProcessOfAnotherUserCannotOpenABlockThroughProc) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another user";
  test::TempDir dir;
  const std::string ns = test::uniqueNamespace("iso-uid");
  auto engine = test::EngineProcess::start(ns, dir.path(), {"--allow-uid", "0", "--allow-uid", std::to_string(kNobody)});
  ASSERT_TRUE(engine);
  auto owner = Client::connect(ConnectOptions{.ns = ns, .name = "owner"});
  ASSERT_TRUE(owner);
  const auto ownerBlocks = blockDescriptors(::getpid());
  ASSERT_EQ(ownerBlocks.size(), 1u);
  const std::string ownerBlock = ownerBlocks.front();
  auto bytes = (*owner)->allocate(64);
  ASSERT_TRUE(bytes);
  std::memcpy((*owner)->bytes(*bytes).data(), "secret", 7);

  Child intruder([&] {
    if (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) return 10;
    // It may register (it is on the access list) and gets a block of its own...
    auto mine = Client::connect(ConnectOptions{.ns = ns, .name = "intruder"});
    if (!mine) {
      std::fprintf(stderr, "%s\n", mine.error().message().c_str());
      return 11;
    }
    // ...but the owner's block is out of reach: /proc refuses, and no name exists to open.
    const int fd = ::open(ownerBlock.c_str(), O_RDWR);
    if (fd >= 0) return 12;
    const int shm = ::shm_open(("/ipcsync-block:" + ns + ":owner").c_str(), O_RDWR, 0);
    if (shm >= 0) return 13;
    return errno == ENOENT ? 0 : 14;
  });
  EXPECT_EQ(intruder.wait(), 0);
  EXPECT_EQ(std::memcmp((*owner)->bytes(*bytes).data(), "secret", 7), 0);
}

TEST(IsolationTest, ObserversMapTheAdminSegmentReadOnly) {
  test::TempDir dir;
  const std::string ns = test::uniqueNamespace("ro");
  auto engine = test::EngineProcess::start(ns, dir.path());
  ASSERT_TRUE(engine);
  auto admin = AdminSegment::open(ns);
  ASSERT_TRUE(admin);
  Child writer([&] {
    // Our own handler, so that the fault shows the same under sanitizers, which catch SIGSEGV.
    struct sigaction sa {};
    sa.sa_handler = [](int) { ::_exit(42); };
    ::sigaction(SIGSEGV, &sa, nullptr);
    ProcessRecord junk;
    junk.state = RecordState::Registered;
    (*admin)->store(0, junk);  // the writer API on an observer's mapping must fault
    return 0;
  });
  EXPECT_EQ(writer.wait(), 42) << "a write through an observer's mapping faults";
  EXPECT_EQ((*admin)->load(0)->state, RecordState::Free);
}

}  // namespace
}  // namespace ipcsync
