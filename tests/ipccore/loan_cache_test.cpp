// The loan cache (ipccore/src/loan_cache.h): small runs allocated ahead in batches, taken without
// the lock, given back by a drain; and threads taking while others refill and drain never get
// one run twice.
#include "loan_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "manager_fixture.h"

namespace ipcsync {
namespace {

const BlockGeometry kGeometry{.minBlockShift = 6, .arenaShift = 16, .minArenas = 1, .maxArenas = 4};

class LoanCacheTest : public ::testing::Test {
 protected:
  test::ManagerMemory mem{kGeometry};
  std::unique_ptr<BuddyManager> manager = mem.view(100);
  LoanCache cache{mem.channels().loanCache, *manager};

  std::uint64_t inUse() { return manager->stats()->bytesInUse; }
};

TEST_F(LoanCacheTest, KeepsRunsOfUpTo512BytesIn2KiBBatches) {
  EXPECT_EQ(cache.orderFor(0), std::nullopt);
  EXPECT_EQ(cache.orderFor(1), 0u);
  EXPECT_EQ(cache.orderFor(64), 0u);
  EXPECT_EQ(cache.orderFor(65), 1u);
  EXPECT_EQ(cache.orderFor(512), 3u);
  EXPECT_EQ(cache.orderFor(513), std::nullopt) << "larger loans are allocated one at a time";
  EXPECT_EQ(cache.batchFor(0), 32u);
  EXPECT_EQ(cache.batchFor(3), 4u);
}

TEST_F(LoanCacheTest, ARefillReturnsOneRunAndKeepsTheRestReadyEachAllocatedAndDistinct) {
  EXPECT_EQ(cache.take(0), std::nullopt) << "nothing is ready before a refill";
  auto first = cache.refill(0, 0);
  ASSERT_TRUE(first);
  EXPECT_EQ(cache.ready(), 31u);
  EXPECT_EQ(inUse(), 32u * 64) << "ready runs are allocated runs to the manager";
  std::set<std::pair<std::uint32_t, std::uint64_t>> seen{{first->arena, first->offset}};
  while (auto run = cache.take(0)) {
    EXPECT_EQ(run->size, 64u);
    EXPECT_TRUE(manager->checkAllocated(run->arena, run->offset, 64)) << run->offset;
    EXPECT_TRUE(seen.insert({run->arena, run->offset}).second) << "run at " << run->offset << " taken twice";
  }
  EXPECT_EQ(seen.size(), 32u);
  EXPECT_EQ(cache.ready(), 0u);
  for (const auto& [arena, offset] : seen) ASSERT_TRUE(manager->free(arena, offset));
  EXPECT_EQ(inUse(), 0u);
}

TEST_F(LoanCacheTest, ADrainFreesEveryReadyRunOfEveryOrderAndNothingTaken) {
  auto a = cache.refill(0, 0);
  auto b = cache.refill(3, 0);
  ASSERT_TRUE(a && b);
  auto taken = cache.take(0);
  ASSERT_TRUE(taken);
  EXPECT_EQ(cache.ready(), 30u + 3u);
  auto drained = cache.drain();
  ASSERT_TRUE(drained) << describe(drained.error());
  EXPECT_EQ(*drained, 33u);
  EXPECT_EQ(cache.ready(), 0u);
  EXPECT_EQ(cache.take(0), std::nullopt);
  EXPECT_EQ(inUse(), 2u * 64 + 512) << "the three runs handed out stay allocated";
  EXPECT_TRUE(manager->free(a->arena, a->offset) && manager->free(b->arena, b->offset) &&
              manager->free(taken->arena, taken->offset));
  EXPECT_EQ(inUse(), 0u);
}

TEST_F(LoanCacheTest, ARefillLeavesTheRequestedRoomFreeAndKeepsFewerWhenTheBlockIsNearlyFull) {
  // 4 arenas of 64 KiB; keep all but 1 KiB free beyond what is used: 16 runs of 64 B fit.
  const std::uint64_t keepFree = kGeometry.maxBytes() - 1024;
  auto first = cache.refill(0, keepFree);
  ASSERT_TRUE(first);
  EXPECT_EQ(cache.ready(), 15u);
  EXPECT_EQ(inUse(), 1024u);
  ASSERT_TRUE(cache.drain());
  ASSERT_TRUE(manager->free(first->arena, first->offset));
  auto none = cache.refill(0, kGeometry.maxBytes());
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error(), Errc::OutOfMemory) << "not even one run: the caller gets allocate()'s error";
  EXPECT_EQ(inUse(), 0u);
}

TEST_F(LoanCacheTest, AScribbledEntryStopsTheDrainWithAnErrorAndFreesNothingElse) {
  auto first = cache.refill(0, 0);
  ASSERT_TRUE(first);
  mem.channels().loanCache.stacks[0].units[0].store(100, std::memory_order_relaxed);  // inside a free run
  auto drained = cache.drain();
  ASSERT_FALSE(drained);
  EXPECT_EQ(drained.error(), Errc::NotAllocated);
  EXPECT_TRUE(manager->free(first->arena, first->offset)) << "the manager is intact";
  auto& stack = mem.channels().loanCache.stacks[1];
  stack.units[0].store(1U << 30, std::memory_order_relaxed);  // outside the block
  stack.word.store(1, std::memory_order_relaxed);
  drained = cache.drain();
  ASSERT_FALSE(drained);
  EXPECT_EQ(drained.error(), Errc::OutOfBounds);
  stack.word.store(1, std::memory_order_relaxed);
  EXPECT_EQ(cache.take(1), std::nullopt) << "an entry outside the block is not handed out";
}

// Four threads take and refill (as loan() on any thread), one drains now and then (as the engine):
// every run is handed out once, and once everything is freed nothing stays in use.
TEST_F(LoanCacheTest, ThreadsTakingWhileOthersRefillAndDrainNeverShareARun) {
  auto engine = mem.view(200);
  LoanCache engineSide(mem.channels().loanCache, *engine);
  std::vector<std::atomic<std::uint8_t>> owner(kGeometry.maxBytes() / 64);
  std::atomic<bool> twice{false}, stop{false}, failed{false};
  auto taker = [&] {
    LoanCache mine(mem.channels().loanCache, *manager);
    std::vector<Allocation> held;
    for (int i = 0; i < 20000; ++i) {
      const std::uint32_t order = i % 2;
      auto run = mine.take(order);
      if (!run) {
        auto fresh = mine.refill(order, 0);
        if (!fresh) continue;
        run = *fresh;
      }
      if (owner[manager->blockOffset(run->arena, run->offset) / 64].exchange(1) != 0) twice = true;
      held.push_back(*run);
      if (held.size() > 8) {
        const Allocation a = held.front();
        held.erase(held.begin());
        owner[manager->blockOffset(a.arena, a.offset) / 64].store(0);
        if (!manager->free(a.arena, a.offset)) failed = true;
      }
    }
    for (const auto& a : held) {
      owner[manager->blockOffset(a.arena, a.offset) / 64].store(0);
      if (!manager->free(a.arena, a.offset)) failed = true;
    }
  };
  std::thread drainer([&] {
    while (!stop) {
      if (auto d = engineSide.drain(); !d && d.error() != Errc::LockTimeout) failed = true;
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> takers;
  for (int t = 0; t < 4; ++t) takers.emplace_back(taker);
  for (auto& t : takers) t.join();
  stop = true;
  drainer.join();
  EXPECT_FALSE(twice) << "a run was handed out twice";
  EXPECT_FALSE(failed) << "a free or a drain failed";
  ASSERT_TRUE(engineSide.drain());
  EXPECT_EQ(inUse(), 0u);
  EXPECT_EQ(mem.shared()->lock.load(), 0);
}

}  // namespace
}  // namespace ipcsync
