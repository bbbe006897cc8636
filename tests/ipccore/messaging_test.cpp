// The communications phase between real processes: sessions, FIFO delivery with integrity,
// back-pressure, peers that die, clients that lie, and event-loop wake-ups.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "control_view.h"
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

// Payload: every 8-byte word is mixed from (sequence, word index); a short tail too. The receiver
// recomputes it, so any lost, reordered, duplicated or damaged byte shows.
std::uint64_t word(std::uint64_t seq, std::uint64_t i) {
  std::uint64_t x = seq * 0x9E3779B97F4A7C15ULL ^ (i + 1) * 0xC2B2AE3D27D4EB4FULL;
  return x ^ (x >> 29);
}
void fill(std::span<std::byte> b, std::uint64_t seq) {
  const std::size_t words = b.size() / 8;
  auto* w = reinterpret_cast<std::uint64_t*>(b.data());
  for (std::size_t i = 0; i < words; ++i) w[i] = word(seq, i);
  for (std::size_t i = words * 8; i < b.size(); ++i) b[i] = static_cast<std::byte>(word(seq, i) & 0xff);
}
bool intact(std::span<const std::byte> b, std::uint64_t seq) {
  const std::size_t words = b.size() / 8;
  const auto* w = reinterpret_cast<const std::uint64_t*>(b.data());
  for (std::size_t i = 0; i < words; ++i)
    if (w[i] != word(seq, i)) return false;
  for (std::size_t i = words * 8; i < b.size(); ++i)
    if (b[i] != static_cast<std::byte>(word(seq, i) & 0xff)) return false;
  return true;
}

class MessagingTest : public test::NamespaceTest {
 protected:
  void startEngine(std::vector<std::string> extra = {}) { NamespaceTest::startEngine("msg", std::move(extra)); }
  // A receiver child that accepts one session and checks `count` messages; exit 0 when all
  // arrived in order and intact.
  // With `hold` (a pipe), it stays registered after the last message until the parent closes the
  // pipe's write end. With `gate` (a pipe), it reads nothing until the parent writes a byte to it.
  Child receiver(const std::string& name, std::uint64_t count, const int* gate = nullptr, const int* hold = nullptr) {
    const int holdFd = hold ? hold[0] : -1;
    const int otherEnd = hold ? hold[1] : -1;
    const int gateFd = gate ? gate[0] : -1;
    const int gateOtherEnd = gate ? gate[1] : -1;
    return Child([=, this] {
      if (otherEnd >= 0) ::close(otherEnd);
      if (gateOtherEnd >= 0) ::close(gateOtherEnd);
      auto c = Client::connect(options(name));
      if (!c) return 10;
      if (gateFd >= 0) {  // answers session offers (ping reads control messages) but takes no message
        pollfd p{gateFd, POLLIN, 0};
        while (::poll(&p, 1, 1) == 0)
          if (!(*c)->ping()) return 16;
      }
      for (std::uint64_t expect = 1; expect <= count; ++expect) {
        auto m = (*c)->receive(30s);
        if (!m) {
          std::fprintf(stderr, "receiver: %s after %llu messages\n", m.error().message().c_str(),
                       static_cast<unsigned long long>(expect - 1));
          return 11;
        }
        if (m->sequence() != expect) return 12;
        if (!intact(m->bytes(), expect)) return 13;
        (*c)->release(std::move(*m));
      }
      char x;
      if (holdFd >= 0) [[maybe_unused]] auto n = ::read(holdFd, &x, 1);
      return 0;
    });
  }
};

TEST_F(MessagingTest, OpensASessionAndDeliversAMessage) {
  startEngine();
  auto rx = Client::connect(options("rx"));
  auto tx = Client::connect(options("tx"));
  ASSERT_TRUE(rx && tx);
  std::thread answer([&] {
    auto m = (*rx)->receive(5s);  // answers the session offer while it waits, then gets the message
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(m->bytes().data()), m->bytes().size()), "hello, crm");
    EXPECT_EQ(m->sequence(), 1u);
    EXPECT_EQ((*rx)->peerOf(m->session()), "tx");
    (*rx)->release(std::move(*m));
  });
  auto s = (*tx)->openSession("rx");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ((*tx)->peerOf(*s), "rx");
  auto loan = (*tx)->loan(10);
  ASSERT_TRUE(loan);
  std::memcpy(loan->bytes().data(), "hello, crm", 10);
  ASSERT_TRUE((*tx)->send(*s, *loan));
  EXPECT_FALSE(loan->valid()) << "a sent loan is consumed";
  answer.join();
  EXPECT_TRUE(test::waitFor([&] { return record("tx") && record("tx")->stats.bytesInUse == 0; }, 2s))
      << "the engine released the sender's run after copying";
}

TEST_F(MessagingTest, RefusedUnknownAndClosedSessionsAreClearErrors) {
  startEngine();
  auto rx = Client::connect(options("picky"));
  auto tx = Client::connect(options("tx"));
  ASSERT_TRUE(rx && tx);
  (*rx)->setSessionPolicy([](std::string_view from) { return from != "tx"; });
  std::atomic<bool> stop{false};
  std::thread pump([&] {
    while (!stop) (void)(*rx)->receive(20ms);
  });
  auto refused = (*tx)->openSession("picky");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::SessionRefused);
  EXPECT_NE(refused.error().detail.find("'picky' refused"), std::string::npos) << refused.error().message();
  auto nobody = (*tx)->openSession("nobody");
  ASSERT_FALSE(nobody);
  EXPECT_EQ(nobody.error().code, Errc::NoSuchPeer);
  stop = true;
  pump.join();

  (*rx)->setSessionPolicy({});
  stop = false;
  std::thread pump2([&] {
    while (!stop) (void)(*rx)->receive(20ms);
  });
  auto s = (*tx)->openSession("picky");
  ASSERT_TRUE(s) << s.error().message();
  stop = true;
  pump2.join();
  // The receiver closes; the sender learns it (any call that talks to the engine reads the news)
  // and its next send says so.
  ASSERT_TRUE((*rx)->closeSession(*s));
  ASSERT_TRUE(test::waitFor([&] { return (*tx)->ping() && !(*tx)->peerOf(*s); }, 2s)) << "the sender is told";
  auto loan = (*tx)->loan(64);
  ASSERT_TRUE(loan);
  auto r = (*tx)->trySend(*s, *loan);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::SessionClosed);
  EXPECT_NE(r.error().detail.find("'picky' closed the session"), std::string::npos) << r.error().message();
  EXPECT_TRUE(loan->valid()) << "a failed send leaves the loan with the caller";
  (*tx)->abandon(std::move(*loan));
}

TEST_F(MessagingTest, DeliversInOrderAndIntactAcrossRandomSizes) {
  startEngine({"--max-arenas", "16"});
  const char* env = std::getenv("IPCSYNC_FIFO_MESSAGES");
#if defined(IPCSYNC_UNDER_TSAN)
  constexpr std::uint64_t kDefault = 200000;  // ThreadSanitizer runs this 5x slower
#else
  constexpr std::uint64_t kDefault = 1000000;
#endif
  const std::uint64_t count = env ? std::strtoull(env, nullptr, 10) : kDefault;
  const std::uint32_t seed = std::random_device{}();
  std::printf("seed %u, %llu messages\n", seed, static_cast<unsigned long long>(count));
  Child rx = receiver("rx", count);
  ASSERT_TRUE(test::waitFor([&] { return registered("rx"); }, 5s));
  auto tx = Client::connect(options("tx"));
  ASSERT_TRUE(tx);
  auto s = (*tx)->openSession("rx", 5s);
  ASSERT_TRUE(s) << s.error().message();
  std::mt19937_64 rng(seed);
  std::uint64_t bytes = 0;
  for (std::uint64_t seq = 1; seq <= count; ++seq) {
    // Log-uniform from 1 B to 1 MiB: every size class is exercised, small ones most often.
    const auto size = static_cast<std::uint64_t>(std::exp2(std::uniform_real_distribution<double>(0, 20)(rng)));
    auto loan = (*tx)->loan(size);
    for (int tries = 0; !loan && loan.error().code == Errc::OutOfMemory && tries < 30000; ++tries) {
      std::this_thread::sleep_for(100us);  // our own block is full of messages the engine has not copied yet
      loan = (*tx)->loan(size);
    }
    ASSERT_TRUE(loan) << loan.error().message();
    fill(loan->bytes(), seq);
    auto sent = (*tx)->send(*s, *loan, 30s);
    ASSERT_TRUE(sent) << sent.error().message() << " at message " << seq;
    bytes += size;
  }
  EXPECT_EQ(rx.wait(), 0) << "the receiver saw every message in order and intact";
  std::printf("%.1f MiB in %llu messages\n", static_cast<double>(bytes) / (1 << 20), static_cast<unsigned long long>(count));
}

// Above the hand-over threshold a message travels as its own sealed memory object: the
// receiver maps the sender's pages read-only, nothing is copied, and order with the copied
// messages around it is kept.
TEST_F(MessagingTest, LargeMessagesAreHandedOverSealedInOrderAndIntact) {
  startEngine({"--handover-threshold", "256KiB"});
  constexpr std::uint64_t kCount = 60;
  Child rx([&] {
    auto c = Client::connect(options("rx"));
    if (!c) return 10;
    for (std::uint64_t seq = 1; seq <= kCount; ++seq) {
      auto m = (*c)->receive(30s);
      if (!m || m->sequence() != seq) return 11;
      if (!intact(m->bytes(), seq)) return 12;
      if (m->bytes().size() >= 256 * 1024) {
        // The pages are the sender's, mapped here read-only and shared, not copied into our block.
        std::ifstream maps("/proc/self/maps");
        bool readOnly = false;
        for (std::string line; std::getline(maps, line);)
          if (line.find("ipcsync-handover:") != std::string::npos && line.find(" r--s ") != std::string::npos) readOnly = true;
        if (!readOnly) return 13;
      }
      (*c)->release(std::move(*m));
    }
    return 0;
  });
  ASSERT_TRUE(test::waitFor([&] { return registered("rx"); }, 5s));
  auto tx = Client::connect(options("tx"));
  ASSERT_TRUE(tx);
  auto s = (*tx)->openSession("rx", 5s);
  ASSERT_TRUE(s) << s.error().message();
  for (std::uint64_t seq = 1; seq <= kCount; ++seq) {
    const std::uint64_t size = seq % 3 == 0 ? 1000 : (seq % 3 == 1 ? 300 * 1024 : 4 << 20);  // copied, handed over, handed over
    auto loan = (*tx)->loan(size);
    ASSERT_TRUE(loan) << loan.error().message();
    EXPECT_EQ(loan->handover(), size >= 256 * 1024);
    fill(loan->bytes(), seq);
    auto sent = (*tx)->send(*s, *loan, 10s);
    ASSERT_TRUE(sent) << sent.error().message() << " at message " << seq;
  }
  EXPECT_EQ(rx.wait(), 0);
  EXPECT_EQ(test::countDescriptors(engine->pid(), "ipcsync-handover"), 0) << "the engine keeps no hand-over";
}

TEST_F(MessagingTest, ByDefaultOnlyMessagesLargerThanAnArenaAreHandedOver) {
  startEngine();  // 1 MiB arenas
  auto c = Client::connect(options("sizes"));
  ASSERT_TRUE(c);
  auto fits = (*c)->loan(1 << 20);
  auto larger = (*c)->loan((1 << 20) + 1);
  ASSERT_TRUE(fits && larger) << "a message larger than an arena is not refused as too large";
  EXPECT_FALSE(fits->handover()) << "what fits in an arena is copied";
  EXPECT_TRUE(larger->handover());
  (*c)->abandon(std::move(*fits));
  (*c)->abandon(std::move(*larger));
  EXPECT_EQ((*c)->stats()->bytesInUse, 0u);
}

TEST_F(MessagingTest, BackPressureHoldsMessagesWithoutLossOrUnboundedGrowth) {
  // Small blocks: the receiver's holds 4096 messages of 64 B, then the engine must wait, then
  // the sender's ring (1024 entries) fills (its loans may use 3072 runs: one arena stays free
  // for incoming messages).
  startEngine({"--max-arenas", "4", "--arena-size", "64KiB"});
  const std::uint64_t count = 20000;
  int hold[2], gate[2];
  ASSERT_EQ(::pipe(hold), 0);
  ASSERT_EQ(::pipe(gate), 0);
  Child rx = receiver("slow", count, gate, hold);  // stalls until the sender has been pushed back
  ::close(hold[0]);
  ::close(gate[0]);
  bool gateOpen = false;
  auto openGate = [&] {
    if (!gateOpen) {
      ASSERT_EQ(::write(gate[1], "g", 1), 1);
    }
    gateOpen = true;
  };
  ASSERT_TRUE(test::waitFor([&] { return registered("slow"); }, 5s));
  auto tx = Client::connect(options("fast"));
  ASSERT_TRUE(tx);
  auto s = (*tx)->openSession("slow", 5s);
  ASSERT_TRUE(s);
  std::uint64_t wouldBlock = 0;
  for (std::uint64_t seq = 1; seq <= count; ++seq) {
    auto loan = (*tx)->loan(64);
    ASSERT_TRUE(loan) << loan.error().message();
    fill(loan->bytes(), seq);
    auto r = (*tx)->trySend(*s, *loan);
    if (!r) {
      ASSERT_EQ(r.error().code, Errc::WouldBlock) << r.error().message();
      ++wouldBlock;
      // Let the receiver read once the engine has found its block full (the record shows it).
      for (int tries = 0;; ++tries) {
        ASSERT_LT(tries, 300) << "the message stayed in the ring for 30 s";
        if (!gateOpen && record("slow") && record("slow")->traffic.waitsForRoom > 0) openGate();
        auto sent = (*tx)->send(*s, *loan, 100ms);
        if (sent) break;
        ASSERT_EQ(sent.error().code, Errc::Timeout) << sent.error().message();
      }
    }
  }
  openGate();
  ::close(gate[1]);
  std::optional<ProcessRecord> after;
  EXPECT_TRUE(test::waitFor([&] {
    after = record("slow");
    return after && after->traffic.messagesIn == count;
  }, 30s)) << "every message reached the receiver";
  ::close(hold[1]);
  EXPECT_EQ(rx.wait(), 0) << "every message arrived, in order and intact";
  EXPECT_GT(wouldBlock, 0u) << "the stalled receiver pushed back on the sender";
  ASSERT_TRUE(after);
  EXPECT_GT(after->traffic.waitsForRoom, 0u) << "the engine waited for room in the receiver's block";
  EXPECT_LE(after->stats.activeArenas, 4u) << "the receiver's block stayed within its bound";
}

// One sender alternating between two sessions: each engine batch then stages copies for two
// receivers (two receivers' locks, two publishes per batch). Each receiver gets its own stream,
// in order and intact.
TEST_F(MessagingTest, ABatchSplitBetweenTwoReceiversKeepsEachStreamInOrderAndIntact) {
  startEngine();
  const std::uint64_t count = 50000;
  const std::uint32_t seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  Child a = receiver("rx-a", count);
  Child b = receiver("rx-b", count);
  ASSERT_TRUE(test::waitFor([&] { return registered("rx-a") && registered("rx-b"); }, 5s));
  auto tx = Client::connect(options("tx"));
  ASSERT_TRUE(tx);
  auto sa = (*tx)->openSession("rx-a", 5s);
  auto sb = (*tx)->openSession("rx-b", 5s);
  ASSERT_TRUE(sa && sb);
  std::mt19937_64 rng(seed);
  std::uint64_t next[2] = {1, 1};
  while (next[0] <= count || next[1] <= count) {
    // Runs of 1..8 messages to one receiver, then to the other: batches mix both.
    const int side = next[0] > count ? 1 : next[1] > count ? 0 : static_cast<int>(rng() & 1);
    for (auto run = rng() % 8 + 1; run > 0 && next[side] <= count; --run) {
      const auto size = static_cast<std::uint64_t>(std::exp2(std::uniform_real_distribution<double>(0, 12)(rng)));
      auto loan = (*tx)->loan(size, 30s);
      ASSERT_TRUE(loan) << loan.error().message();
      fill(loan->bytes(), next[side]);
      auto sent = (*tx)->send(side ? *sb : *sa, *loan, 30s);
      ASSERT_TRUE(sent) << sent.error().message();
      ++next[side];
    }
  }
  EXPECT_EQ(a.wait(), 0) << "the first receiver saw its messages in order and intact";
  EXPECT_EQ(b.wait(), 0) << "the second receiver saw its messages in order and intact";
}

// release() puts runs aside and returns them in batches. A receiver that takes everything
// waiting, then releases it all and goes back to its event loop, must not leave runs aside: here
// each round of 16 messages fills its block exactly, so with the runs left aside the engine finds
// no room for the next round, and nothing would ever wake the receiver again.
TEST_F(MessagingTest, AReceiverThatReleasesEverythingAndWaitsInItsEventLoopLeavesNoRunAside) {
  // 64 KiB blocks: 16 messages of 4 KiB fill the receiver's block, fewer than a release batch.
  startEngine({"--arena-size", "16KiB", "--max-arenas", "4", "--min-arenas", "4"});
  constexpr std::uint64_t kRound = 16, kRounds = 20;
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  Child tx([&] {
    ::close(go[1]);
    auto c = Client::connect(options("tx"));
    if (!c) return 1;
    if (!test::waitFor([&] { return registered("loop"); }, 5s)) return 5;
    auto s = (*c)->openSession("loop", 5s);
    if (!s) return 2;
    std::uint64_t seq = 0;
    for (char x; ::read(go[0], &x, 1) == 1;) {  // a round when the receiver asks for one
      for (std::uint64_t i = 0; i < kRound; ++i) {
        auto loan = (*c)->loan(4096, 30s);
        if (!loan) return 3;
        fill(loan->bytes(), ++seq);
        if (!(*c)->send(*s, *loan, 30s)) return 4;
      }
    }
    return 0;
  });
  ::close(go[0]);
  auto rx = Client::connect(options("loop"));
  ASSERT_TRUE(rx);
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, (*rx)->pollFd(), &ev), 0);
  std::uint64_t got = 0;
  for (std::uint64_t round = 1; round <= kRounds; ++round) {
    ASSERT_EQ(::write(go[1], "r", 1), 1);
    std::vector<Message> taken;
    while (got < round * kRound) {  // take the whole round, holding every message
      epoll_event out{};
      ASSERT_EQ(::epoll_wait(ep.get(), &out, 1, 5000), 1) << "not woken after " << got << " messages";
      for (;;) {
        auto m = (*rx)->tryReceive();
        ASSERT_TRUE(m) << m.error().message();
        if (!m->valid()) break;
        ASSERT_EQ(m->sequence(), got + 1);
        ASSERT_TRUE(intact(m->bytes(), got + 1));
        taken.push_back(std::move(*m));
        ++got;
      }
    }
    for (auto& m : taken) (*rx)->release(std::move(m));  // then release it all, and wait again
  }
  ::close(go[1]);
  EXPECT_EQ(tx.wait(), 0);
}

// The in-flight cap makes loan() wait while the engine keeps taking messages. With the receiver
// stalled the engine takes nothing once the receiver's block is full: the sender goes ahead,
// fills its own block and meets the usual back-pressure (OutOfMemory), and once the receiver
// reads again every message arrives, in order and intact.
TEST_F(MessagingTest, TheInFlightCapGivesWayToBackPressureWhenTheReceiverStalls) {
  startEngine({"--arena-size", "256KiB", "--max-arenas", "4"});  // 1 MiB blocks
  const std::uint64_t count = 400;                                 // 6.25 MiB of 16 KiB messages
  int gate[2];
  ASSERT_EQ(::pipe(gate), 0);
  Child rx = receiver("stalled", count, gate);
  ::close(gate[0]);
  ASSERT_TRUE(test::waitFor([&] { return registered("stalled"); }, 5s));
  auto o = options("capped");
  o.maxBytesInFlight = 64 << 10;
  auto tx = Client::connect(o);
  ASSERT_TRUE(tx);
  auto s = (*tx)->openSession("stalled", 5s);
  ASSERT_TRUE(s);
  std::uint64_t outOfMemory = 0, maxInUse = 0;
  bool gateOpen = false;
  for (std::uint64_t seq = 1; seq <= count; ++seq) {
    auto loan = (*tx)->loan(16 << 10, 200ms);
    for (int tries = 0; !loan; ++tries) {
      ASSERT_EQ(loan.error().code, Errc::OutOfMemory) << loan.error().message();
      ASSERT_LT(tries, 150) << "no room in the sender's block for 30 s";
      ++outOfMemory;
      if (!gateOpen) {
        ASSERT_EQ(::write(gate[1], "g", 1), 1);
        gateOpen = true;
      }
      loan = (*tx)->loan(16 << 10, 200ms);
    }
    fill(loan->bytes(), seq);
    ASSERT_TRUE((*tx)->send(*s, *loan, 30s));
    auto st = (*tx)->stats();
    ASSERT_TRUE(st);
    maxInUse = std::max(maxInUse, st->bytesInUse);
  }
  ::close(gate[1]);
  EXPECT_EQ(rx.wait(), 0) << "every message arrived, in order and intact";
  EXPECT_GT(outOfMemory, 0u) << "the stalled receiver pushed back on the sender";
  EXPECT_LE(maxInUse, 1u << 20) << "the sender's block stayed within its bound";
}

// Two clients stream bulk to each other, each receiving only when it cannot send. Without room
// kept for incoming copies, both blocks fill with their own outbound messages, the engine can copy
// into neither, and both wait forever.
TEST_F(MessagingTest, TwoClientsStreamingBulkToEachOtherNeverDeadlock) {
  startEngine({"--arena-size", "64KiB", "--max-arenas", "8"});  // 512 KiB blocks
  const std::uint64_t count = 2000;                               // 2000 x 32 KiB = 125 blocks' worth each way
  const std::size_t size = 32 << 10;
  auto side = [&](const std::string& self, const std::string& peer, bool opens) {
    return Child([=, this] {
      auto c = Client::connect(options(self));
      if (!c) return 10;
      SessionId session = 0;
      if (opens) {
        if (!test::waitFor([&] { return registered(peer); }, 5s)) return 11;
        auto s = (*c)->openSession(peer, 5s);
        if (!s) return 12;
        session = *s;
      }
      std::uint64_t sent = 0, received = 0;
      const auto deadline = std::chrono::steady_clock::now() + 30s;
      while (sent < count || received < count) {
        if (std::chrono::steady_clock::now() > deadline) {
          std::fprintf(stderr, "%s: stuck after sending %llu and receiving %llu\n", self.c_str(),
                       static_cast<unsigned long long>(sent), static_cast<unsigned long long>(received));
          return 13;
        }
        bool progressed = false;
        if (sent < count && session != 0) {
          if (auto loan = (*c)->loan(size)) {
            fill(loan->bytes(), sent + 1);
            if ((*c)->trySend(session, *loan)) {
              ++sent;
              progressed = true;
            } else {
              (*c)->abandon(std::move(*loan));
            }
          }
        }
        auto m = (*c)->tryReceive();
        if (!m) return 14;
        if (m->valid()) {
          if (session == 0) session = m->session();
          if (m->sequence() != received + 1 || !intact(m->bytes(), received + 1)) return 15;
          ++received;
          (*c)->release(std::move(*m));
          progressed = true;
        }
        if (!progressed) std::this_thread::sleep_for(50us);
      }
      // Stay until the peer has everything: leaving early would close the session under it.
      std::this_thread::sleep_for(500ms);
      return 0;
    });
  };
  Child b = side("bulk-b", "bulk-a", false);
  Child a = side("bulk-a", "bulk-b", true);
  EXPECT_EQ(a.wait(), 0) << "a sent and received everything, in order and intact";
  EXPECT_EQ(b.wait(), 0) << "b sent and received everything, in order and intact";
}

TEST_F(MessagingTest, ASenderLearnsThatItsPeerWasKilledAndNothingLeaks) {
  startEngine();
  Child rx = receiver("doomed", 1'000'000'000);
  ASSERT_TRUE(test::waitFor([&] { return registered("doomed"); }, 5s));
  auto tx = Client::connect(options("tx"));
  ASSERT_TRUE(tx);
  auto s = (*tx)->openSession("doomed", 5s);
  ASSERT_TRUE(s);
  std::optional<Error> failure;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t seq = 1; !failure; ++seq) {
    if (seq == 2000) rx.kill(SIGKILL);
    auto loan = (*tx)->loan(512);
    if (!loan) continue;
    fill(loan->bytes(), seq);
    if (auto r = (*tx)->send(*s, *loan, 5s); !r) {
      failure = r.error();
      (*tx)->abandon(std::move(*loan));
    }
    ASSERT_LT(std::chrono::steady_clock::now() - t0, 20s) << "the sender was never told";
  }
  EXPECT_EQ(failure->code, Errc::PeerGone) << failure->message();
  EXPECT_NE(failure->detail.find("'doomed' has gone"), std::string::npos) << failure->message();
  EXPECT_TRUE(test::waitFor([&] { return !registered("doomed"); }, 5s));
  EXPECT_TRUE(test::waitFor([&] { return (*tx)->stats()->bytesInUse == 0; }, 5s))
      << "messages that were still in the sender's ring were released, not leaked";
  EXPECT_TRUE((*tx)->ping());
}

// What send() accepted is delivered even when the sender leaves right after, cleanly or by kill -9.
TEST_F(MessagingTest, MessagesSentBeforeTheSenderLeftAreAllDelivered) {
  // The receiver reads only after the sender is gone: its inbound ring takes 1024 messages, so
  // hundreds are still in the sender's outbound ring when the sender leaves.
  startEngine({"--arena-size", "64KiB", "--max-arenas", "2"});
  auto rx = Client::connect(options("rx"));
  ASSERT_TRUE(rx);
  for (const bool kill : {false, true}) {
    const std::string name = kill ? "killed-sender" : "leaving-sender";
    constexpr std::uint64_t kCount = 2000;  // the receiver's inbound ring (1024) + the sender's outbound ring (1024) hold them
    int sent[2];
    ASSERT_EQ(::pipe(sent), 0);
    Child tx([&] {
      auto c = Client::connect(options(name));
      if (!c) return 1;
      auto s = (*c)->openSession("rx", 5s);
      if (!s) return 2;
      for (std::uint64_t seq = 1; seq <= kCount; ++seq) {
        auto loan = (*c)->loan(64, 5s);
        if (!loan) {
          std::fprintf(stderr, "%s: message %llu: %s\n", name.c_str(), static_cast<unsigned long long>(seq), loan.error().message().c_str());
          return 3;
        }
        fill(loan->bytes(), seq);
        if (auto r = (*c)->send(*s, *loan, 5s); !r) {
          std::fprintf(stderr, "%s: message %llu: %s\n", name.c_str(), static_cast<unsigned long long>(seq), r.error().message().c_str());
          return 4;
        }
      }
      [[maybe_unused]] auto n = ::write(sent[1], "s", 1);
      if (kill) ::pause();  // killed by the parent the moment the last send returned
      return 0;              // leaves: the destructor says goodbye
    });
    std::uint64_t got = 0;
    // Answer the session offer (ping reads what the engine posted) without touching the ring.
    ASSERT_TRUE(test::waitFor([&] {
      (void)(*rx)->ping();
      pollfd p{sent[0], POLLIN, 0};
      return ::poll(&p, 1, 1) == 1;
    }, 20s)) << name << " could not send everything: " << tx.wait();
    char x;
    ASSERT_EQ(::read(sent[0], &x, 1), 1);
    if (kill) tx.kill(SIGKILL);
    else EXPECT_EQ(tx.wait(), 0);
    for (std::uint64_t seq = 1; seq <= kCount; ++seq) {
      auto m = (*rx)->receive(10s);
      ASSERT_TRUE(m) << name << ": " << m.error().message() << " after " << got << " messages";
      ASSERT_EQ(m->sequence(), seq);
      ASSERT_TRUE(intact(m->bytes(), seq));
      (*rx)->release(std::move(*m));
      ++got;
    }
    ::close(sent[0]);
    ::close(sent[1]);
    EXPECT_EQ(got, kCount) << name;
    EXPECT_TRUE(test::waitFor([&] { return !registered(name); }, 5s)) << name << " is reclaimed after delivery";
  }
}

TEST_F(MessagingTest, AClientInAnEpollLoopIsWokenByItsDescriptor) {
  // The engine's timer would look at every ring each tick and so rescue a lost doorbell: with a
  // 30 s tick, only the doorbells can wake anybody within the test's 5 s.
  const auto config = dir.path() / "slow-tick.yaml";
  std::ofstream(config) << "engine:\n  publish_interval_ms: 30000\n";
  startEngine({"--config", config.string()});
  // The sender stays registered until the test ends: a departing sender's messages are delivered
  // when it leaves, which would hide a lost doorbell too.
  int stay[2];
  ASSERT_EQ(::pipe(stay), 0);
  Child tx([&] {
    ::close(stay[1]);
    auto c = Client::connect(options("tx"));
    if (!c) return 1;
    if (!test::waitFor([&] { return registered("loop"); }, 5s)) return 5;
    auto s = (*c)->openSession("loop", 5s);
    if (!s) return 2;
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(50ms);  // long enough for the receiver to be asleep in epoll
      auto loan = (*c)->loan(8);
      if (!loan) return 3;
      std::memcpy(loan->bytes().data(), "wake up!", 8);
      if (!(*c)->send(*s, *loan)) return 4;
    }
    char x;
    [[maybe_unused]] auto n = ::read(stay[0], &x, 1);  // until the test closes the pipe
    return 0;
  });
  ::close(stay[0]);
  auto rx = Client::connect(options("loop"));
  ASSERT_TRUE(rx);
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, (*rx)->pollFd(), &ev), 0);
  int got = 0, idle = 0;
  for (int wakeups = 0; got < 3 && wakeups < 100; ++wakeups) {
    epoll_event out{};
    ASSERT_EQ(::epoll_wait(ep.get(), &out, 1, 5000), 1) << "not woken after " << got << " messages";
    for (bool first = true;; first = false) {
      auto m = (*rx)->tryReceive();
      ASSERT_TRUE(m) << m.error().message();
      if (!m->valid()) {
        idle += first;  // woken for nothing (a session offer also wakes it, once)
        break;
      }
      EXPECT_EQ(std::memcmp(m->bytes().data(), "wake up!", 8), 0);
      (*rx)->release(std::move(*m));
      ++got;
    }
  }
  ::close(stay[1]);
  EXPECT_EQ(got, 3);
  EXPECT_LE(idle, 3) << "woken without cause";
  EXPECT_EQ(tx.wait(), 0);
}

// The Dekker handshakes of engineSleeping and ownerSleeping (notification.md), raced in every
// round: with no spin anywhere, each message of this ping-pong is posted while the engine or its
// receiver is falling asleep or asleep, and with a 30 s tick only a doorbell can wake them within
// the 5 s each round trip is given. One lost wake-up fails here.
TEST_F(MessagingTest, ASleepingEngineMissesNoMessagePostedAsItFallsAsleep) {
  const auto config = dir.path() / "slow-tick.yaml";
  std::ofstream(config) << "engine:\n  publish_interval_ms: 30000\n";
  startEngine({"--config", config.string(), "--spin-us", "0"});
  constexpr int kRounds = 3000;
  auto unspun = [&](const std::string& name) {
    ConnectOptions o = options(name);
    o.spin = 0us;
    return o;
  };
  Child echo([&] {
    auto c = Client::connect(unspun("echo"));
    if (!c) return 1;
    for (int i = 0; i < kRounds; ++i) {
      auto m = (*c)->receive(5s);
      if (!m) return 2;
      const SessionId from = m->session();
      (*c)->release(std::move(*m));
      auto loan = (*c)->loan(8);
      if (!loan || !(*c)->send(from, *loan)) return 3;
    }
    return 0;
  });
  auto ping = Client::connect(unspun("ping"));
  ASSERT_TRUE(ping);
  ASSERT_TRUE(test::waitFor([&] { return registered("echo"); }, 5s));
  auto s = (*ping)->openSession("echo", 5s);
  ASSERT_TRUE(s) << s.error().message();
  for (int i = 0; i < kRounds; ++i) {
    auto loan = (*ping)->loan(8);
    ASSERT_TRUE(loan);
    ASSERT_TRUE((*ping)->send(*s, *loan));
    auto reply = (*ping)->receive(5s);
    ASSERT_TRUE(reply) << "round trip " << i << ": " << reply.error().message() << " (a message waited for no doorbell)";
    (*ping)->release(std::move(*reply));
  }
  EXPECT_EQ(echo.wait(), 0);
}

TEST_F(MessagingTest, RequestGetsItsReplyAndKeepsWhatArrivedMeanwhile) {
  startEngine();
  Child server([&] {
    auto c = Client::connect(options("server"));
    if (!c) return 10;
    for (int i = 0; i < 100; ++i) {
      auto req = (*c)->receive(10s);
      if (!req) return 11;
      // First something unsolicited, then the answer: the doubled number.
      auto note = (*c)->loan(5);
      std::memcpy(note->bytes().data(), "note!", 5);
      if (!(*c)->send(req->session(), *note)) return 12;
      std::uint64_t n;
      std::memcpy(&n, req->bytes().data(), 8);
      n *= 2;
      auto answer = (*c)->loan(8);
      std::memcpy(answer->bytes().data(), &n, 8);
      if (!(*c)->reply(*req, *answer)) return 13;
      (*c)->release(std::move(*req));
    }
    return 0;
  });
  ASSERT_TRUE(test::waitFor([&] { return registered("server"); }, 5s));
  auto c = Client::connect(options("asker"));
  ASSERT_TRUE(c);
  auto s = (*c)->openSession("server", 5s);
  ASSERT_TRUE(s) << s.error().message();
  for (std::uint64_t i = 1; i <= 100; ++i) {
    auto loan = (*c)->loan(8);
    std::memcpy(loan->bytes().data(), &i, 8);
    auto answer = (*c)->request(*s, *loan, 10s);
    ASSERT_TRUE(answer) << answer.error().message();
    std::uint64_t n;
    std::memcpy(&n, answer->bytes().data(), 8);
    EXPECT_EQ(n, 2 * i);
    (*c)->release(std::move(*answer));
    auto note = (*c)->receive(1s);  // kept while request() waited, still in order
    ASSERT_TRUE(note) << note.error().message();
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(note->bytes().data()), 5), "note!");
    EXPECT_EQ(note->correlation(), 0u);
    (*c)->release(std::move(*note));
  }
  EXPECT_EQ(server.wait(), 0);
}

// Control messages (session offers here) must not be lost when a client does not read its
// engine socket for a while: what does not fit the socket buffer waits in the engine, in order.
TEST_F(MessagingTest, ControlMessagesWaitForAClientThatIsNotReadingItsSocket) {
  startEngine();
  auto busy = Client::connect(options("busy"));
  auto asker = Client::connect(options("asker"));
  ASSERT_TRUE(busy && asker);
  constexpr int kOffers = 3000;  // far more than a socket buffer holds
  for (int i = 0; i < kOffers; ++i) (void)(*asker)->openSession("busy", 0ms);
  ASSERT_TRUE((*asker)->ping());
  // Now the busy client reads: it answers (accepts) every offer.
  EXPECT_TRUE(test::waitFor([&] {
    (void)(*busy)->ping();
    auto r = record("busy");
    return r && r->traffic.sessions == kOffers;
  }, 20s)) << "some session offers were lost: " << (record("busy") ? record("busy")->traffic.sessions : 0);
  EXPECT_TRUE(registered("busy")) << "a slow reader is not disconnected";
  EXPECT_TRUE((*asker)->ping());
}

// Topics: publish once, every subscriber receives everything, in order, intact; a subscriber
// killed mid-stream costs the others nothing.
TEST_F(MessagingTest, ATopicFansOutToEightSubscribersAndSurvivesOneBeingKilled) {
  startEngine();
  constexpr std::uint64_t kCount = 20000;
  constexpr int kSubscribers = 8;
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  std::vector<Child> subscribers;
  for (int i = 0; i < kSubscribers; ++i) {
    subscribers.emplace_back([&, i] {
      auto c = Client::connect(options("sub-" + std::to_string(i)));
      if (!c) return 10;
      auto t = (*c)->subscribe("sales");
      if (!t) return 11;
      [[maybe_unused]] auto n = ::write(ready[1], "r", 1);
      for (std::uint64_t seq = 1; seq <= kCount; ++seq) {
        auto m = (*c)->receive(30s);
        if (!m) return 12;
        if (m->session() != *t || m->sequence() != seq || !intact(m->bytes(), seq)) return 13;
        (*c)->release(std::move(*m));
      }
      return 0;
    });
  }
  for (int i = 0; i < kSubscribers; ++i) {
    char x;
    ASSERT_EQ(::read(ready[0], &x, 1), 1);
  }
  auto pub = Client::connect(options("publisher"));
  ASSERT_TRUE(pub);
  auto topic = (*pub)->advertise("sales");
  ASSERT_TRUE(topic) << topic.error().message();
  std::mt19937 rng(5);
  for (std::uint64_t seq = 1; seq <= kCount; ++seq) {
    if (seq == kCount / 2) subscribers[3].kill(SIGKILL);
    auto loan = (*pub)->loan(1 + rng() % 8192, 10s);
    ASSERT_TRUE(loan) << loan.error().message();
    fill(loan->bytes(), seq);
    auto sent = (*pub)->send(*topic, *loan, 30s);
    ASSERT_TRUE(sent) << sent.error().message() << " at " << seq;
  }
  for (int i = 0; i < kSubscribers; ++i) {
    if (i == 3) continue;
    EXPECT_EQ(subscribers[i].wait(), 0) << "subscriber " << i;
  }
  EXPECT_TRUE(test::waitFor([&] {
    auto r = record("publisher");
    return r && r->traffic.messagesOut == kCount;
  }, 5s)) << "each message counts once for its publisher, however many received it";
}

TEST_F(MessagingTest, AHandedOverMessageReachesEverySubscriberOfATopic) {
  startEngine();  // 1 MiB arenas: 3 MiB messages are handed over
  std::vector<std::unique_ptr<Client>> subs;
  for (int i = 0; i < 3; ++i) {
    auto c = Client::connect(options("sub-" + std::to_string(i)));
    ASSERT_TRUE(c);
    ASSERT_TRUE((*c)->subscribe("images"));
    subs.push_back(std::move(*c));
  }
  auto pub = Client::connect(options("camera"));
  ASSERT_TRUE(pub);
  auto topic = (*pub)->advertise("images");
  ASSERT_TRUE(topic);
  for (std::uint64_t seq = 1; seq <= 4; ++seq) {
    auto loan = (*pub)->loan(3 << 20);
    ASSERT_TRUE(loan && loan->handover());
    fill(loan->bytes(), seq);
    ASSERT_TRUE((*pub)->send(*topic, *loan));
  }
  for (auto& c : subs) {
    for (std::uint64_t seq = 1; seq <= 4; ++seq) {
      auto m = c->receive(10s);
      ASSERT_TRUE(m) << m.error().message();
      EXPECT_EQ(m->sequence(), seq);
      EXPECT_TRUE(intact(m->bytes(), seq));
      c->release(std::move(*m));
    }
  }
}

// Cached blocks: the engine keeps a topic's last N messages in its own block; a subscriber
// that comes late gets them at once, in order, then the live ones; observers see the cache.
TEST_F(MessagingTest, ALateSubscriberGetsTheCachedMessagesFirst) {
  startEngine();
  auto pub = Client::connect(options("publisher"));
  ASSERT_TRUE(pub);
  auto topic = (*pub)->advertise("prices", 5);
  ASSERT_TRUE(topic) << topic.error().message();
  auto publish = [&](std::uint64_t seq) {
    auto loan = (*pub)->loan(100 + seq);
    ASSERT_TRUE(loan);
    fill(loan->bytes(), seq);
    ASSERT_TRUE((*pub)->send(*topic, *loan));
  };
  for (std::uint64_t seq = 1; seq <= 20; ++seq) publish(seq);
  EXPECT_TRUE(test::waitFor([&] {
    auto a = AdminSegment::open(ns);
    auto c = a ? (*a)->caches() : std::vector<CacheRecord>{};
    return c.size() == 1 && c[0].topicView() == "prices" && c[0].entries == 5 && c[0].depth == 5;
  }, 5s)) << "the cache is listed for observers";

  auto late = Client::connect(options("late"));
  ASSERT_TRUE(late);
  ASSERT_TRUE((*late)->subscribe("prices"));
  publish(21);
  for (std::uint64_t seq = 16; seq <= 21; ++seq) {  // the last five from the cache, then the live one
    auto m = (*late)->receive(5s);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->sequence(), seq);
    EXPECT_TRUE(intact(m->bytes(), seq));
    (*late)->release(std::move(*m));
  }
  EXPECT_TRUE(test::waitFor([&] {
    auto a = AdminSegment::open(ns);
    auto c = a ? (*a)->caches() : std::vector<CacheRecord>{};
    return c.size() == 1 && c[0].hits == 5;
  }, 5s)) << "hits count what the cache handed out";
}

// A sender streaming small messages takes most loans from runs allocated ahead (the loan cache,
// ipccore/src/loan_cache.h); every message still arrives in order and intact, and once it stops
// the engine gives the runs it kept ready back: it holds nothing.
TEST_F(MessagingTest, ASenderStreamingSmallMessagesLoansFromItsCacheAndHoldsNothingOnceItStops) {
  startEngine();
  constexpr std::uint64_t count = 20000;
  Child rx = receiver("rx", count);
  auto tx = Client::connect(options("tx"));
  ASSERT_TRUE(tx);
  ASSERT_TRUE(test::waitFor([&] { return registered("rx"); }, 5s));
  auto s = (*tx)->openSession("rx", 5s);
  ASSERT_TRUE(s) << s.error().message();
  auto view = test::ControlView::find(ns, "tx", (*tx)->geometry());
  ASSERT_TRUE(view);
  auto ready = [&] {
    std::uint64_t n = 0;
    for (const auto& stack : view->channels().loanCache.stacks) n += static_cast<std::uint32_t>(stack.word.load());
    return n;
  };
  std::mt19937 rng(7);
  bool sawReady = false;
  for (std::uint64_t seq = 1; seq <= count; ++seq) {
    auto loan = (*tx)->loan(1 + rng() % 512, 30s);
    ASSERT_TRUE(loan) << loan.error().message();
    fill(loan->bytes(), seq);
    ASSERT_TRUE((*tx)->send(*s, *loan, 30s));
    sawReady = sawReady || ready() > 0;
  }
  EXPECT_EQ(rx.wait(), 0);
  EXPECT_TRUE(sawReady) << "no run was ever kept ready: the loans did not use the cache";
  EXPECT_TRUE(test::waitFor([&] { return ready() == 0 && (*tx)->stats()->bytesInUse == 0; }, 5s))
      << ready() << " runs still kept ready, " << (*tx)->stats()->bytesInUse << " B in use";
}

// A client that posts a forged Location (or scribbles on the runs it keeps ready for loans) is
// disconnected and reclaimed; the engine and everyone
// else carry on. Each case runs in its own child so that it can be kicked.
class MaliciousLocationTest : public MessagingTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(MaliciousLocationTest, DisconnectsTheLiarAndKeepsServingOthers) {
  startEngine();
  const std::string kind = GetParam();
  // Two honest clients with a session between them, before and after.
  auto a = Client::connect(options("honest-a"));
  auto b = Client::connect(options("honest-b"));
  ASSERT_TRUE(a && b);
  std::atomic<bool> stop{false};
  std::atomic<int> honestReceived{0};
  std::thread pump([&] {
    while (!stop) {
      if (auto m = (*b)->receive(10ms); m) {
        if (m->bytes().size() == 128 && std::to_integer<int>(m->bytes()[0]) == 0x42) ++honestReceived;
        (*b)->release(std::move(*m));
      }
    }
  });
  auto honest = (*a)->openSession("honest-b");
  ASSERT_TRUE(honest);

  Child liar([&] {
    auto c = Client::connect(options("liar"));
    if (!c) return 10;
    auto s = (*c)->openSession("honest-b", 5s);
    if (!s) return 11;
    auto view = test::ControlView::find(ns, "liar", (*c)->geometry());
    if (!view) return 12;
    auto loan = (*c)->loan(256);
    if (!loan) return 13;
    const auto g = (*c)->geometry();
    Location l{0, LocationKind::Copy, 0, 256, 1, *s, 0};
    if (kind == std::string("out-of-bounds")) l.arena = g.maxArenas + 3;
    else if (kind == std::string("overflowing-length")) { l.offset = 64; l.length = ~std::uint64_t{0} - 10; }
    else if (kind == std::string("unallocated")) l.offset = g.arenaSize() / 2;
    else if (kind == std::string("foreign-session")) l.channel = *honest;
    else if (kind == std::string("bad-kind")) l.kind = static_cast<LocationKind>(77);
    else if (kind == std::string("handover-without-object")) { l.kind = LocationKind::Handover; l.arena = 999; }
    else if (kind == std::string("handover-length-mismatch")) {
      // A real sealed object of 4 KiB, then a Location claiming 1 GiB of it: the receiver would
      // fault reading past the end.
      UniqueFd fd(::memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING));
      if (!fd || ::ftruncate(fd.get(), 4096) != 0 ||
          ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW) != 0)
        return 16;
      protocol::Handover h;
      h.id = 77;
      h.length = 4096;
      const int fds[1] = {fd.get()};
      if (!io::sendMessage((*c)->engineFd(), io::asBytes(h), fds)) return 17;
      l.kind = LocationKind::Handover;
      l.arena = 77;
      l.length = std::uint64_t{1} << 30;
    }
    else if (kind == std::string("handover-unsealed") || kind == std::string("handover-still-writable")) {
      // An object the liar could still change under the receiver: not sealed against writing at
      // all, or sealed against everything but writing while it keeps a writable mapping.
      UniqueFd fd(::memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING));
      if (!fd || ::ftruncate(fd.get(), 4096) != 0) return 16;
      if (kind == std::string("handover-still-writable")) {
        void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
        if (p == MAP_FAILED || ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE) == 0) return 18;  // the kernel refuses that seal
        if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE) != 0) return 19;
      }
      protocol::Handover h;
      h.id = 78;
      h.length = 4096;
      const int fds[1] = {fd.get()};
      if (!io::sendMessage((*c)->engineFd(), io::asBytes(h), fds)) return 17;
      l.kind = LocationKind::Handover;
      l.arena = 78;
      l.length = 4096;
    }
    else if (kind == std::string("unadvertised-topic")) {
      auto t = (*c)->subscribe("news");  // a subscriber, not a publisher
      if (!t) return 15;
      l.channel = *t;
    }
    else if (kind == std::string("already-released")) {
      (*c)->abandon(std::move(*loan));  // the run is free again, then we post it anyway
    }
    auto& ring = view->channels().outbound;
    if (kind == std::string("corrupt-ring")) {
      ring.tail.store(ring.head.load() + kRingCapacity * 5);
    } else if (kind == std::string("scribbled-loan-cache")) {
      // A run "kept ready" that is not allocated: the engine finds it when it gives back the
      // runs of a client that stopped allocating.
      auto& stack = view->channels().loanCache.stacks[0];
      stack.units[0].store(g.unitsPerArena() / 2, std::memory_order_relaxed);
      stack.word.store(1, std::memory_order_release);
    } else {
      ring.push(l);
    }
    // The engine notices at its next round; our next call reports the disconnection.
    for (int i = 0; i < 500; ++i) {
      auto m = (*c)->receive(10ms);
      if (!m && m.error().code == Errc::Disconnected) {
        std::fprintf(stderr, "liar: %s\n", m.error().message().c_str());
        return 0;
      }
    }
    return 14;
  });
  EXPECT_EQ(liar.wait(), 0) << kind << ": the liar was not told it was disconnected";
  EXPECT_TRUE(test::waitFor([&] { return !registered("liar"); }, 5s)) << kind << ": not reclaimed";
  EXPECT_NE(engine->log().find("disconnecting 'liar'"), std::string::npos) << engine->log();
  // The honest pair still talks.
  auto loan = (*a)->loan(128);
  ASSERT_TRUE(loan);
  std::memset(loan->bytes().data(), 0x42, 128);
  EXPECT_TRUE((*a)->send(*honest, *loan)) << kind;
  EXPECT_TRUE(test::waitFor([&] { return honestReceived == 1; }, 5s)) << kind << ": the honest pair's message arrived";
  EXPECT_TRUE((*a)->ping());
  stop = true;
  pump.join();
}

INSTANTIATE_TEST_SUITE_P(Cases, MaliciousLocationTest,
                         ::testing::Values("out-of-bounds", "overflowing-length", "unallocated", "already-released",
                                           "foreign-session", "bad-kind", "handover-without-object", "handover-length-mismatch",
                                           "handover-unsealed", "handover-still-writable",
                                           "unadvertised-topic",
                                           "corrupt-ring", "scribbled-loan-cache"),
                         [](const auto& param) {
                           std::string n = param.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// A late subscriber whose block cannot take the whole cache at once gets the rest as it makes room,
// in order, and only then what is published live: nothing of the cache is skipped.
TEST_F(MessagingTest, ACacheReplayThatFillsTheSubscriberResumesInOrderBeforeLiveMessages) {
  startEngine({"--arena-size", "64KiB", "--max-arenas", "8"});  // 512 KiB blocks, the engine's too
  auto pub = Client::connect(options("publisher"));
  ASSERT_TRUE(pub);
  auto topic = (*pub)->advertise("ticks", 40);
  ASSERT_TRUE(topic) << topic.error().message();
  auto publish = [&](std::uint64_t seq) {
    auto loan = (*pub)->loan(8 << 10, 5000ms);
    ASSERT_TRUE(loan) << loan.error().message();
    fill(loan->bytes(), seq);
    ASSERT_TRUE((*pub)->send(*topic, *loan));
  };
  for (std::uint64_t seq = 1; seq <= 40; ++seq) publish(seq);  // 320 KiB cached
  ASSERT_TRUE(test::waitFor([&] {
    auto a = AdminSegment::open(ns);
    auto c = a ? (*a)->caches() : std::vector<CacheRecord>{};
    return c.size() == 1 && c[0].entries == 40;
  }, 5s));

  auto late = Client::connect(options("late"));
  ASSERT_TRUE(late);
  std::vector<Allocation> ballast;  // 384 KiB of its own block in use: the cache cannot fit
  for (int i = 0; i < 6; ++i) {
    auto a = (*late)->allocate(64 << 10);
    ASSERT_TRUE(a) << a.error().message();
    ballast.push_back(*a);
  }
  ASSERT_TRUE((*late)->subscribe("ticks"));
  publish(41);  // live: must come after the whole cache
  std::uint64_t expect = 1;
  for (; expect <= 41; ++expect) {
    if (expect == 4) {  // by now the replay has stalled on the full block: make room
      for (const auto& a : ballast) ASSERT_TRUE((*late)->free(a));
    }
    auto m = (*late)->receive(5s);
    ASSERT_TRUE(m) << "message " << expect << ": " << m.error().message();
    EXPECT_EQ(m->sequence(), expect);
    EXPECT_TRUE(intact(m->bytes(), expect));
    (*late)->release(std::move(*m));
  }
  EXPECT_TRUE(test::waitFor([&] {
    auto a = AdminSegment::open(ns);
    auto c = a ? (*a)->caches() : std::vector<CacheRecord>{};
    return c.size() == 1 && c[0].hits == 40;
  }, 5s)) << "every cached message was handed over";
}

}  // namespace
}  // namespace ipcsync
