// Hand-over of large messages with the pool of prepared memory objects: the pool itself, and
// between real processes integrity, and that nothing leaks when a peer is killed while objects are
// prepared, lent, in flight or held.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "handover_pool.h"
#include "ipcsync/ipccore/client.h"
#include "namespace_test.h"
#include "processes.h"

namespace ipcsync {
namespace {

using namespace std::chrono_literals;
using test::Child;

std::uint64_t word(std::uint64_t seq, std::uint64_t i) {
  std::uint64_t x = seq * 0x9E3779B97F4A7C15ULL ^ (i + 1) * 0xC2B2AE3D27D4EB4FULL;
  return x ^ (x >> 29);
}
void fill(std::span<std::byte> b, std::uint64_t seq) {
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::byte>(word(seq, i / 8) >> (8 * (i % 8)));
}
bool intact(std::span<const std::byte> b, std::uint64_t seq) {
  for (std::size_t i = 0; i < b.size(); ++i)
    if (b[i] != static_cast<std::byte>(word(seq, i / 8) >> (8 * (i % 8)))) return false;
  return true;
}
// Every descriptor of `pid`, whatever it names.
int allDescriptors(pid_t pid) { return test::countDescriptors(pid, ""); }
// Whether this process maps the file with inode `ino` (hand-over objects are memfds, one inode each).
bool inodeMapped(ino_t ino) {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    std::istringstream fields(line);
    std::string range, perms, offset, device;
    unsigned long long inode = 0;
    if (fields >> range >> perms >> offset >> device >> inode && inode == ino) return true;
  }
  return false;
}
// What they name, for failure messages.
std::string describeDescriptors(pid_t pid) {
  std::string out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code ignored;
    out += " " + e.path().filename().string() + "=" + std::filesystem::read_symlink(e.path(), ignored).string();
  }
  return out;
}

TEST(HandoverPoolTest, SizeClassesArePagesAndAtMostAQuarterAboveTheRequest) {
  EXPECT_EQ(HandoverPool::sizeClass(1), 4096u);
  EXPECT_EQ(HandoverPool::sizeClass(1 << 20), 1u << 20);
  EXPECT_EQ(HandoverPool::sizeClass((1 << 20) + 1), (1u << 20) + (1u << 18));
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i) {
    const std::uint64_t bytes = 1 + rng() % (64u << 20);
    const std::uint64_t c = HandoverPool::sizeClass(bytes);
    ASSERT_GE(c, bytes);
    ASSERT_EQ(c % 4096, 0u);
    ASSERT_LE(c, std::max<std::uint64_t>(bytes + bytes / 4, 4 * 4096)) << bytes;
  }
}

TEST(HandoverPoolTest, PreparedObjectsAreZeroMappedWritableAndNotYetSealedAgainstWriting) {
  auto o = HandoverPool::prepare("pool-test", 256 * 1024, true);
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->size, 256u * 1024);
  for (std::uint64_t i = 0; i < o->size; ++i) ASSERT_EQ(o->data[i], std::byte{0}) << i;
  std::memset(o->data, 0x5a, o->size);  // writable, and...
  EXPECT_EQ(::fcntl(o->fd.get(), F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW) << "its size is fixed, its bytes not yet";
  EXPECT_NE(::fcntl(o->fd.get(), F_ADD_SEALS, F_SEAL_WRITE), 0) << "...sealing must wait until the mapping is gone";
  ::munmap(o->data, o->size);
  EXPECT_EQ(::fcntl(o->fd.get(), F_ADD_SEALS, F_SEAL_WRITE), 0);
}

TEST(HandoverPoolTest, TheHelperPreparesTheNextObjectAndUnmapsWhatIsRetired) {
  const std::string label = "pool-test-" + std::to_string(::getpid());
  HandoverPool pool(label, 2, 8u << 20);
  auto first = pool.take(300 * 1024);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(first->size, HandoverPool::sizeClass(300 * 1024));
  EXPECT_EQ(pool.stats().prepared, 1u) << "nothing was ready for the first loan of a size";
  ASSERT_TRUE(test::waitFor([&] { return pool.stats().readyBytes == 2 * first->size; }, 10s))
      << "the helper keeps two objects of that class ready";
  auto second = pool.take(290 * 1024);  // the same class
  ASSERT_TRUE(second);
  EXPECT_EQ(pool.stats().taken, 1u);
  for (std::uint64_t i = 0; i < second->size; i += 4096) ASSERT_EQ(second->data[i], std::byte{0});
  // A class larger than the budget allows is never kept, only made on demand, of the size asked
  // for (to the page), not of its class.
  auto huge = pool.take((16u << 20) + 1);
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->size, (16u << 20) + 4096);
  // The helper maps replacements meanwhile, so look for these three objects by inode.
  std::vector<ino_t> retired;
  for (auto* o : {&*first, &*second, &*huge}) {
    struct stat st {};
    ASSERT_EQ(::fstat(o->fd.get(), &st), 0);
    retired.push_back(st.st_ino);
    ASSERT_TRUE(inodeMapped(st.st_ino));
    pool.retire(o->data, o->size, std::move(o->fd));
  }
  EXPECT_TRUE(test::waitFor([&] {
    return std::none_of(retired.begin(), retired.end(), [](ino_t i) { return inodeMapped(i); });
  }, 10s)) << "the helper unmapped the three retired objects";
  EXPECT_TRUE(test::waitFor([&] { return pool.stats().readyBytes == 2 * HandoverPool::sizeClass(300 * 1024); }, 10s))
      << pool.stats().readyBytes << " B ready: the class refilled, and no 16 MiB object kept";
}

class HandoverTest : public test::NamespaceTest {
 protected:
  void startEngine() { NamespaceTest::startEngine("hand", {"--handover-threshold", "64KiB"}); }
  ConnectOptions options(const std::string& name, std::uint32_t pool = 2) const {
    ConnectOptions o = NamespaceTest::options(name);
    o.handoverPool = pool;
    return o;
  }
  // The engine finishes a registration after connect() returns (it opens the client's pidfd
  // then): wait for `clients` pidfds before counting its descriptors.
  bool settled(int clients) const {
    return test::waitFor([&] { return test::countDescriptors(engine->pid(), "[pidfd]") == clients; }, 10s);
  }
};

class PooledHandoverTest : public HandoverTest, public ::testing::WithParamInterface<std::uint32_t> {};

// Random sizes on both sides of the threshold, so pooled objects of many classes, objects
// prepared on demand and copied messages interleave; every byte is checked, in order.
TEST_P(PooledHandoverTest, MessagesOfRandomSizesArriveInOrderAndIntact) {
  startEngine();
  const std::uint32_t depth = GetParam();
  constexpr std::uint64_t kCount = 400;
  const unsigned seed = std::random_device{}();
  std::printf("seed %u, pool depth %u\n", seed, depth);
  Child rx([&] {
    auto c = Client::connect(options("rx", depth));
    if (!c) return 10;
    for (std::uint64_t seq = 1; seq <= kCount; ++seq) {
      auto m = (*c)->receive(30s);
      if (!m || m->sequence() != seq) return 11;
      if (!intact(m->bytes(), seq)) return 12;
      (*c)->release(std::move(*m));
    }
    return 0;
  });
  ASSERT_TRUE(test::waitFor([&] { return registered("rx"); }, 5s));
  auto tx = Client::connect(options("tx", depth));
  ASSERT_TRUE(tx);
  auto s = (*tx)->openSession("rx", 5s);
  ASSERT_TRUE(s) << s.error().message();
  std::mt19937_64 rng(seed);
  std::uint64_t handedOver = 0;
  for (std::uint64_t seq = 1; seq <= kCount; ++seq) {
    const std::uint64_t size = rng() % 4 == 0 ? 1 + rng() % 65535 : 64 * 1024 + rng() % (1u << 20);
    auto loan = (*tx)->loan(size);
    ASSERT_TRUE(loan) << loan.error().message();
    ASSERT_EQ(loan->handover(), size >= 64 * 1024);
    handedOver += loan->handover();
    fill(loan->bytes(), seq);
    auto sent = (*tx)->send(*s, *loan, 10s);
    ASSERT_TRUE(sent) << sent.error().message() << " at message " << seq;
  }
  EXPECT_EQ(rx.wait(), 0) << "the receiver saw every message in order and intact";
  EXPECT_GT(handedOver, kCount / 2);
  if (depth > 0)
    EXPECT_TRUE(test::waitFor([&] { return test::countDescriptors(::getpid(), "ipcsync-handover") > 0; }, 10s))
        << "the sender keeps prepared objects";
  else
    EXPECT_EQ(test::countDescriptors(::getpid(), "ipcsync-handover"), 0) << "without a pool nothing is kept";
  EXPECT_EQ(test::countDescriptors(engine->pid(), "ipcsync-handover"), 0) << "the engine keeps no hand-over";
}

INSTANTIATE_TEST_SUITE_P(Depths, PooledHandoverTest, ::testing::Values(0u, 2u),
                         [](const auto& p) { return "Depth" + std::to_string(p.param); });

// The sender dies with prepared objects in its pool, a loan half filled, and hand-overs delivered
// to a receiver that holds some and has yet to take others: the engine ends up with exactly the
// descriptors it had before the sender came, and the receiver with none of the sender's objects
// once it released what it held.
TEST_F(HandoverTest, ASenderKilledMidStreamLeavesNoObjectInTheEngineOrTheReceiver) {
  startEngine();
  auto rx = Client::connect(options("rx"));
  ASSERT_TRUE(rx);
  ASSERT_TRUE(settled(1));
  // At most this many afterwards: a leak shows as more (the count may include a rendezvous socket
  // the engine was still closing, so fewer is fine).
  const int engineBefore = allDescriptors(engine->pid());
  const std::string engineFdsBefore = describeDescriptors(engine->pid());
  const int ownBefore = allDescriptors(::getpid());
  constexpr std::uint64_t kSent = 48;
  int progress[2];
  ASSERT_EQ(::pipe(progress), 0);
  Child tx([&] {
    ::close(progress[0]);
    auto c = Client::connect(options("tx"));
    if (!c) return 10;
    auto s = (*c)->openSession("rx", 5s);
    if (!s) return 11;
    for (std::uint64_t seq = 1; seq <= kSent; ++seq) {
      auto loan = (*c)->loan(256 * 1024);
      if (!loan || !loan->handover()) return 12;
      fill(loan->bytes(), seq);
      if (!(*c)->send(*s, *loan, 10s)) return 13;
    }
    auto unsent = (*c)->loan(256 * 1024);  // lent, half filled, never sent
    if (!unsent) return 14;
    std::memset(unsent->bytes().data(), 1, 128 * 1024);
    // Wait until the helper has refilled the pool, then tell the parent.
    while (test::countDescriptors(::getpid(), "ipcsync-handover") < 3) std::this_thread::sleep_for(1ms);
    [[maybe_unused]] auto w = ::write(progress[1], "x", 1);
    ::pause();
    return 0;
  });
  ::close(progress[1]);
  // Accept the session and take half of the messages, holding them; the rest stay undelivered or
  // unread in our ring.
  std::vector<Message> held;
  pollfd p{progress[0], POLLIN, 0};
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (::poll(&p, 1, 1) == 0 || held.size() < kSent / 2) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the sender never finished its part";
    if (held.size() >= kSent / 2) continue;
    auto m = (*rx)->tryReceive();
    ASSERT_TRUE(m) << m.error().message();
    if (!m->valid()) continue;
    ASSERT_EQ(m->sequence(), held.size() + 1);
    ASSERT_TRUE(intact(m->bytes(), m->sequence()));
    held.push_back(std::move(*m));
  }
  ::close(progress[0]);
  EXPECT_GE(test::countMappings(::getpid(), "ipcsync-handover"), static_cast<int>(kSent / 2));
  tx.kill(SIGKILL);
  ASSERT_TRUE(test::waitFor([&] { return !registered("tx"); }, 10s));
  EXPECT_TRUE(test::waitFor([&] { return allDescriptors(engine->pid()) <= engineBefore; }, 10s))
      << "the engine holds " << allDescriptors(engine->pid()) << " descriptors, " << engineBefore << " before the sender came ("
      << test::countDescriptors(engine->pid(), "ipcsync-handover") << " hand-overs):\n" << describeDescriptors(engine->pid())
      << "\nbefore:\n" << engineFdsBefore;
  // What was already on its way to us still arrives, intact, and is released like the rest.
  for (;;) {
    auto m = (*rx)->tryReceive();
    ASSERT_TRUE(m) << m.error().message();
    if (!m->valid()) break;
    EXPECT_EQ(m->sequence(), held.size() + 1);
    EXPECT_TRUE(intact(m->bytes(), m->sequence()));
    held.push_back(std::move(*m));
  }
  EXPECT_EQ(held.size(), kSent) << "everything the sender sent before it was killed was delivered";
  for (auto& m : held) (*rx)->release(std::move(m));
  EXPECT_TRUE(test::waitFor([&] { return test::countMappings(::getpid(), "ipcsync-handover") == 0; }, 10s))
      << test::countMappings(::getpid(), "ipcsync-handover") << " hand-overs still mapped after release";
  EXPECT_TRUE(test::waitFor([&] { return allDescriptors(::getpid()) == ownBefore; }, 10s))
      << "the receiver holds " << allDescriptors(::getpid()) << " descriptors, " << ownBefore << " before";
  EXPECT_TRUE((*rx)->ping());
}

// The receiver dies holding hand-overs and with more waiting for it: the sender learns it, the
// engine drops every object meant for it, and the sender keeps nothing but its prepared objects.
TEST_F(HandoverTest, AReceiverKilledHoldingHandOversLeavesNoObjectBehind) {
  startEngine();
  auto tx = Client::connect(options("tx"));
  ASSERT_TRUE(tx);
  ASSERT_TRUE(settled(1));
  // At most this many afterwards: a leak shows as more (the count may include a rendezvous socket
  // the engine was still closing, so fewer is fine).
  const int engineBefore = allDescriptors(engine->pid());
  int progress[2];
  ASSERT_EQ(::pipe(progress), 0);
  constexpr std::uint64_t kTaken = 16;
  Child rx([&] {
    ::close(progress[0]);
    auto c = Client::connect(options("rx"));
    if (!c) return 10;
    std::vector<Message> held;
    while (held.size() < kTaken) {
      auto m = (*c)->receive(30s);
      if (!m) return 11;
      held.push_back(std::move(*m));
    }
    [[maybe_unused]] auto w = ::write(progress[1], "x", 1);
    ::pause();  // killed holding them all
    return 0;
  });
  ::close(progress[1]);
  ASSERT_TRUE(test::waitFor([&] { return registered("rx"); }, 5s));
  auto s = (*tx)->openSession("rx", 5s);
  ASSERT_TRUE(s) << s.error().message();
  auto sendOne = [&](std::uint64_t seq) {
    auto loan = (*tx)->loan(256 * 1024);
    EXPECT_TRUE(loan && loan->handover());
    if (!loan) return std::expected<void, Error>(std::unexpected(loan.error()));
    fill(loan->bytes(), seq);
    auto r = (*tx)->send(*s, *loan, 5s);
    if (!r) (*tx)->abandon(std::move(*loan));
    return r;
  };
  std::uint64_t seq = 1;
  for (; seq <= kTaken + 8; ++seq) ASSERT_TRUE(sendOne(seq)) << seq;  // 8 more than it takes
  char x;
  ASSERT_EQ(::read(progress[0], &x, 1), 1);
  ::close(progress[0]);
  rx.kill(SIGKILL);
  std::optional<Error> failure;
  const auto t0 = std::chrono::steady_clock::now();
  while (!failure) {
    if (auto r = sendOne(++seq); !r) failure = r.error();
    ASSERT_LT(std::chrono::steady_clock::now() - t0, 20s) << "the sender was never told";
  }
  EXPECT_EQ(failure->code, Errc::PeerGone) << failure->message();
  EXPECT_TRUE(test::waitFor([&] { return allDescriptors(engine->pid()) <= engineBefore; }, 10s))
      << "the engine holds " << allDescriptors(engine->pid()) << " descriptors, " << engineBefore << " before the receiver came ("
      << test::countDescriptors(engine->pid(), "ipcsync-handover") << " hand-overs)";
  // Only the pool's prepared objects (one class, depth 2) stay with the sender, each mapped once.
  EXPECT_TRUE(test::waitFor([&] {
    return test::countDescriptors(::getpid(), "ipcsync-handover") <= 2 && test::countMappings(::getpid(), "ipcsync-handover") <= 2;
  }, 10s)) << test::countDescriptors(::getpid(), "ipcsync-handover") << " descriptors, "
           << test::countMappings(::getpid(), "ipcsync-handover") << " mappings";
  EXPECT_TRUE((*tx)->ping());
}

}  // namespace
}  // namespace ipcsync
