#include "ipcsync/ipccore/buddy_manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <random>

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "ipcsync/ipccore/process_memory.h"
#include "ipcsync/ipccore/control_layout.h"
#include "manager_fixture.h"

namespace ipcsync {
namespace {

using test::ManagerMemory;

BlockGeometry smallGeometry(std::uint32_t maxArenas = 4, std::uint32_t minArenas = 1) {
  return BlockGeometry{.minBlockShift = 6, .arenaShift = 16, .minArenas = minArenas, .maxArenas = maxArenas};  // 64 KiB
}

TEST(BuddyManagerTest, RoundsRequestsUpToAPowerOfTwoOfAtLeastTheMinimumBlock) {
  ManagerMemory mem(smallGeometry());
  auto m = mem.view();
  for (auto [ask, want] : {std::pair{1, 64}, {64, 64}, {65, 128}, {1000, 1024}, {4096, 4096}, {4097, 8192}}) {
    auto a = m->allocate(ask);
    ASSERT_TRUE(a) << ask;
    EXPECT_EQ(a->size, std::uint64_t(want)) << ask;
    EXPECT_EQ(a->offset % a->size, 0u) << "runs are aligned to their size";
  }
}

TEST(BuddyManagerTest, HonoursAConfiguredMinimumBlock) {
  BlockGeometry g = smallGeometry();
  g.minBlockShift = 9;  // 512 B
  ManagerMemory mem(g);
  auto a = mem.view()->allocate(1);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size, 512u);
}

TEST(BuddyManagerTest, CoalescesFreedBuddiesBackIntoOneArena) {
  ManagerMemory mem(smallGeometry());
  auto m = mem.view();
  std::vector<Allocation> all;
  for (int i = 0; i < 1024; ++i) {  // the whole 64 KiB arena in 64 B runs
    auto a = m->allocate(64);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->arena, 0u);
    all.push_back(*a);
  }
  auto s = m->stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->bytesFree, 0u);
  EXPECT_EQ(s->largestFreeRun, 0u);
  std::shuffle(all.begin(), all.end(), std::mt19937(7));
  for (const auto& a : all) ASSERT_TRUE(m->free(a.arena, a.offset));
  s = m->stats();
  EXPECT_EQ(s->bytesInUse, 0u);
  EXPECT_EQ(s->largestFreeRun, 64u * 1024) << "every buddy pair merged back";
  EXPECT_EQ(s->freeBlocksPerOrder[10], 1u);
  for (int k = 0; k < 10; ++k) EXPECT_EQ(s->freeBlocksPerOrder[k], 0u) << "order " << k;
}

TEST(BuddyManagerTest, ReportsHowFullEachArenaIs) {
  ManagerMemory mem(smallGeometry(4, 1));
  auto m = mem.view();
  std::array<std::uint16_t, kMaxArenas> use{};
  ASSERT_TRUE(m->arenaUse(use).value());
  EXPECT_EQ(use[0], 0) << "an active, empty arena";
  EXPECT_EQ(use[1], kArenaInactive);
  auto quarter = m->allocate(16 << 10);  // a quarter of arena 0
  ASSERT_TRUE(quarter);
  auto whole = m->allocate(64 << 10);    // all of a second arena
  ASSERT_TRUE(whole);
  auto tiny = m->allocate(1);             // 64 B of arena 0: rounds up to a thousandth
  ASSERT_TRUE(tiny);
  ASSERT_TRUE(m->arenaUse(use).value());
  EXPECT_EQ(use[quarter->arena], 251) << "16 KiB + 64 B of 64 KiB, rounded up";
  EXPECT_EQ(use[whole->arena], 1000);
  EXPECT_EQ(use[2], kArenaInactive);
  EXPECT_EQ(use[kMaxArenas - 1], kArenaInactive);
  EXPECT_FALSE(m->arenaUse(use, 1).value()) << "more free runs than it may walk: no picture";
}

TEST(BuddyManagerTest, AHoldTakesTheLockOnceForManyCalls) {
  ManagerMemory mem(smallGeometry());
  auto engine = mem.view(100);
  auto owner = mem.view(200);
  owner->setLockTimeout(std::chrono::microseconds(1000));
  {
    auto hold = engine->hold();
    ASSERT_TRUE(hold);
    EXPECT_EQ(engine->hold().error(), Errc::InvalidArgument) << "one hold per view at a time";
    auto a = engine->allocate(64);
    ASSERT_TRUE(a) << "calls through the holding view go ahead";
    EXPECT_TRUE(engine->checkAllocated(a->arena, a->offset, 64));
    EXPECT_EQ(owner->allocate(64).error(), Errc::LockTimeout) << "the other party waits while the hold lasts";
    ASSERT_TRUE(engine->free(a->arena, a->offset));
  }
  EXPECT_TRUE(owner->allocate(64)) << "the hold released the lock";
}

TEST(BuddyManagerTest, AnAllocationCanBeMadeToLeaveRoomFree) {
  ManagerMemory mem(smallGeometry(2, 1));  // 128 KiB at most
  auto m = mem.view();
  ASSERT_TRUE(m->allocate(32 << 10, 64 << 10));
  ASSERT_TRUE(m->allocate(32 << 10, 64 << 10)) << "64 KiB in use, 64 KiB left free";
  EXPECT_EQ(m->allocate(64, 64 << 10).error(), Errc::OutOfMemory) << "it would eat into the room kept free";
  EXPECT_TRUE(m->allocate(64)) << "without the reserve the block still has room";
}

TEST(BuddyManagerTest, SplitsLeaveOneFreeBuddyPerOrder) {
  ManagerMemory mem(smallGeometry());
  auto m = mem.view();
  ASSERT_TRUE(m->allocate(64));
  auto s = m->stats();
  for (int k = 0; k < 10; ++k) EXPECT_EQ(s->freeBlocksPerOrder[k], 1u) << "order " << k;
  EXPECT_EQ(s->bytesFree, 64u * 1024 - 64);
  EXPECT_EQ(s->largestFreeRun, 32u * 1024);
}

TEST(BuddyManagerTest, OutOfMemoryIsATypedErrorAndLeavesTheManagerUsable) {
  ManagerMemory mem(smallGeometry(2));
  auto m = mem.view();
  std::vector<Allocation> held;
  for (int i = 0; i < 2; ++i) {
    auto a = m->allocate(64 * 1024);
    ASSERT_TRUE(a);
    held.push_back(*a);
  }
  auto refused = m->allocate(64);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), Errc::OutOfMemory);
  EXPECT_EQ(m->stats()->failures, 1u);
  ASSERT_TRUE(m->free(held[1].arena, held[1].offset));
  EXPECT_TRUE(m->allocate(64)) << "memory freed after an out-of-memory error is usable again";
}

TEST(BuddyManagerTest, RefusesRequestsLargerThanAnArenaAndZeroBytes) {
  ManagerMemory mem(smallGeometry());
  auto m = mem.view();
  EXPECT_EQ(m->allocate(64 * 1024 + 1).error(), Errc::TooLarge);
  EXPECT_EQ(m->allocate(0).error(), Errc::InvalidArgument);
}

TEST(BuddyManagerTest, DetectsDoubleFree) {
  ManagerMemory mem(smallGeometry());
  auto m = mem.view();
  auto a = m->allocate(256);
  auto keep = m->allocate(256);  // keeps a's buddy busy so a stays a free head
  ASSERT_TRUE(a && keep);
  ASSERT_TRUE(m->free(a->arena, a->offset));
  auto again = m->free(a->arena, a->offset);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), Errc::DoubleFree);
  EXPECT_EQ(m->stats()->bytesInUse, 256u) << "the failed free changed nothing";
}

TEST(BuddyManagerTest, DetectsADoubleFreeAfterTheRunWasMergedIntoItsBuddy) {
  ManagerMemory mem(smallGeometry());
  auto m = mem.view();
  auto a = m->allocate(64);
  auto b = m->allocate(64);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(m->free(b->arena, b->offset));
  ASSERT_TRUE(m->free(a->arena, a->offset));  // a and b merge; b's unit is no head any more
  const auto second = m->free(b->arena, b->offset);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), Errc::NotAllocated);
}

TEST(BuddyManagerTest, RejectsForeignAndOutOfBoundsOffsets) {
  ManagerMemory mem(smallGeometry(4));
  auto m = mem.view();
  auto a = m->allocate(1024);
  ASSERT_TRUE(a);
  EXPECT_EQ(m->free(a->arena, a->offset + 64).error(), Errc::NotAllocated) << "inside a run, not its start";
  EXPECT_EQ(m->free(a->arena, a->offset + 3).error(), Errc::NotAllocated) << "misaligned";
  EXPECT_EQ(m->free(a->arena, 64 * 1024).error(), Errc::OutOfBounds) << "past the arena";
  EXPECT_EQ(m->free(4, 0).error(), Errc::OutOfBounds) << "past the last arena";
  EXPECT_EQ(m->free(2, 0).error(), Errc::OutOfBounds) << "an arena that is not active";
  EXPECT_EQ(m->stats()->bytesInUse, 1024u);
}

TEST(BuddyManagerTest, GrowsByWholeArenasUpToTheMaximum) {
  ManagerMemory mem(smallGeometry(3));
  auto m = mem.view();
  EXPECT_EQ(m->stats()->activeArenas, 1u);
  std::vector<Allocation> held;
  for (std::uint32_t arena = 0; arena < 3; ++arena) {
    auto a = m->allocate(40 * 1024);  // 64 KiB run: one arena each
    ASSERT_TRUE(a);
    EXPECT_EQ(a->arena, arena);
    held.push_back(*a);
  }
  auto s = m->stats();
  EXPECT_EQ(s->activeArenas, 3u);
  EXPECT_EQ(s->arenasGrown, 2u);
  EXPECT_EQ(m->allocate(64).error(), Errc::OutOfMemory);
}

TEST(BuddyManagerTest, ShrinksOnTrimByReleasingEmptyArenas) {
  ManagerMemory mem(smallGeometry(4));
  auto m = mem.view();
  std::vector<Allocation> held;
  for (int i = 0; i < 4; ++i) held.push_back(*m->allocate(64 * 1024));
  ASSERT_EQ(m->stats()->activeArenas, 4u);
  ASSERT_TRUE(m->free(held[3].arena, held[3].offset));
  ASSERT_TRUE(m->free(held[2].arena, held[2].offset));
  EXPECT_EQ(m->stats()->activeArenas, 4u) << "a free alone never gives pages back: a busy block would fault them in again";
  auto trimmed = m->trim();
  ASSERT_TRUE(trimmed);
  EXPECT_EQ(*trimmed, 2u);
  EXPECT_EQ(m->stats()->activeArenas, 2u);
  ASSERT_TRUE(m->free(held[1].arena, held[1].offset));
  ASSERT_TRUE(m->free(held[0].arena, held[0].offset));
  EXPECT_EQ(*m->trim(), 1u) << "trim keeps the minimum";
  EXPECT_EQ(m->stats()->activeArenas, 1u);
  EXPECT_EQ(m->stats()->arenasReleased, 3u);
  // A released arena can be grown into again.
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(m->allocate(64 * 1024));
}

TEST(BuddyManagerTest, NeverShrinksBelowTheMinimumArenas) {
  ManagerMemory mem(smallGeometry(4, 2));
  auto m = mem.view();
  EXPECT_EQ(m->stats()->activeArenas, 2u);
  EXPECT_EQ(*m->trim(), 0u);
  EXPECT_EQ(m->stats()->activeArenas, 2u);
}

TEST(BuddyManagerTest, ReportsCorruptMetadataInsteadOfFollowingIt) {
  ManagerMemory mem(smallGeometry());
  auto m = mem.view();
  ASSERT_TRUE(m->allocate(64));
  mem.shared()->freeHead[3] = 0x7fffffff;  // a stray write points a free list far outside
  auto a = m->allocate(512);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error(), Errc::Corrupt);
  EXPECT_EQ(mem.shared()->lock.load(), 0) << "the lock is released on the error path";
}

TEST(BuddyManagerTest, TimesOutOnALockHeldByAnotherParty) {
  ManagerMemory mem(smallGeometry());
  auto m = mem.view(1);
  m->setLockTimeout(std::chrono::milliseconds(20));
  mem.shared()->lock.store(4242);  // a party that never lets go
  EXPECT_EQ(m->allocate(64).error(), Errc::LockTimeout);
  mem.shared()->lock.store(0);
  EXPECT_TRUE(m->allocate(64));
}

// Random allocate/free against a model: no two live runs overlap, sizes match, and the figures
// always add up.
TEST(BuddyManagerTest, AgreesWithASimpleModelUnderRandomisedAllocateAndFree) {
  const std::uint32_t seed = std::random_device{}();
  std::printf("seed %u (rerun with IPCSYNC_SEED=%u)\n", seed, seed);
  const char* forced = std::getenv("IPCSYNC_SEED");
  std::mt19937 rng(forced ? static_cast<std::uint32_t>(std::strtoul(forced, nullptr, 10)) : seed);
  const BlockGeometry g = smallGeometry(8);
  ManagerMemory mem(g);
  auto m = mem.view();
  std::map<std::uint64_t, Allocation> live;  // block offset -> allocation
  std::uint64_t modelInUse = 0;
  for (int step = 0; step < 200000; ++step) {
    const bool doAlloc = live.empty() || rng() % 100 < 55;
    if (doAlloc) {
      const std::uint64_t ask = 1 + rng() % (rng() % 8 == 0 ? 32768 : 2048);
      auto a = m->allocate(ask);
      if (!a) {
        ASSERT_EQ(a.error(), Errc::OutOfMemory) << "step " << step;
        continue;
      }
      ASSERT_GE(a->size, ask);
      ASSERT_LT(a->size / 2, std::max<std::uint64_t>(ask, 64)) << "rounded up to the next power of two only";
      const std::uint64_t at = m->blockOffset(a->arena, a->offset);
      auto next = live.lower_bound(at);
      if (next != live.end()) {
        ASSERT_LE(at + a->size, next->first) << "overlaps the next run, step " << step;
      }
      if (next != live.begin()) {
        auto prev = std::prev(next);
        ASSERT_LE(prev->first + prev->second.size, at) << "overlaps the previous run, step " << step;
      }
      live.emplace(at, *a);
      modelInUse += a->size;
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      ASSERT_TRUE(m->free(it->second.arena, it->second.offset)) << "step " << step;
      modelInUse -= it->second.size;
      live.erase(it);
    }
    if (step % 997 == 0) {
      auto s = m->stats();
      ASSERT_EQ(s->bytesInUse, modelInUse);
      ASSERT_EQ(s->bytesInUse + s->bytesFree, std::uint64_t{s->activeArenas} * g.arenaSize());
    }
  }
  for (const auto& [at, a] : live) ASSERT_TRUE(m->free(a.arena, a.offset));
  auto s = m->stats();
  EXPECT_EQ(s->bytesInUse, 0u);
  EXPECT_EQ(s->freeBlocksPerOrder[g.topOrder()], s->activeArenas) << "everything coalesced to whole arenas";
  EXPECT_EQ(*m->trim(), s->activeArenas - 1);
}

}  // namespace
}  // namespace ipcsync

namespace ipcsync {
namespace {

// With a real block (a memfd), a released arena's pages go back to the system.
TEST(BuddyManagerTest, ReleasingAnArenaReturnsItsPagesToTheSystem) {
  const BlockGeometry g{.minBlockShift = 6, .arenaShift = 20, .minArenas = 1, .maxArenas = 4};
  auto pm = ProcessMemory::create(g, "pages", ::getpid(), ::getpid(), 1);
  ASSERT_TRUE(pm) << pm.error().message();
  auto residentKiB = [&] {
    struct stat st {};
    ::fstat((*pm)->blockFd(), &st);
    return st.st_blocks / 2;
  };
  EXPECT_EQ(residentKiB(), 0) << "a fresh block holds no pages";
  std::vector<Allocation> arenas;
  for (int i = 0; i < 3; ++i) {
    auto a = (*pm)->manager().allocate(1 << 20);
    ASSERT_TRUE(a);
    auto bytes = (*pm)->bytes(*a);
    std::memset(bytes.data(), 0xab, bytes.size());  // touch every page
    arenas.push_back(*a);
  }
  EXPECT_GE(residentKiB(), 3 * 1024);
  for (const auto& a : arenas) ASSERT_TRUE((*pm)->manager().free(a.arena, a.offset));
  ASSERT_TRUE((*pm)->manager().trim());
  EXPECT_EQ((*pm)->manager().stats()->activeArenas, 1u);
  EXPECT_LE(residentKiB(), 1024) << "only the arena kept by the minimum still holds pages";
}

}  // namespace
}  // namespace ipcsync

namespace ipcsync {
namespace {

// A forged free run at the block's last unit, claiming the top order: following it would split
// past the end of the metadata and hand out a run past the end of the block.
TEST(BuddyManagerTest, RefusesAForgedFreeRunThatIsNotAlignedToItsOrder) {
  const BlockGeometry g{.minBlockShift = 6, .arenaShift = 12, .minArenas = 1, .maxArenas = 4};
  test::ManagerMemory mem(g);
  auto m = mem.view();
  const std::uint32_t last = g.maxArenas * g.unitsPerArena() - 1;
  mem.shared()->freeHead[g.topOrder()] = last;
  mem.units()[last] = layout::UnitMeta{layout::kNil, layout::kNil, layout::UnitState::FreeHead,
                                       static_cast<std::uint8_t>(g.topOrder()), 0};
  auto a = m->allocate(64);
  ASSERT_FALSE(a) << "handed out arena " << a->arena << " offset " << a->offset;
  EXPECT_EQ(a.error(), Errc::Corrupt);
  EXPECT_EQ(mem.shared()->lock.load(), 0);
}

// The engine allocates in a client's manager, whose metadata the client can scribble on. Random
// corruption may make operations fail (Corrupt and friends) but must never make the manager
// touch memory outside its arrays (ASan watches) or hand out a run outside the block.
TEST(BuddyManagerTest, SurvivesRandomCorruptionOfItsMetadata) {
  const std::uint32_t seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  const BlockGeometry g{.minBlockShift = 6, .arenaShift = 12, .minArenas = 1, .maxArenas = 4};
  const auto lay = layout::controlLayoutFor(g);
  for (int round = 0; round < 3000; ++round) {
    test::ManagerMemory mem(g);
    auto m = mem.view();
    m->setLockTimeout(std::chrono::microseconds(10));
    std::vector<Allocation> live;
    for (int i = 0; i < 20; ++i)
      if (auto a = m->allocate(1 + rng() % 2048)) live.push_back(*a);
    auto* bytes = reinterpret_cast<std::uint8_t*>(mem.shared());
    const std::size_t span = lay.size - lay.managerOffset;
    for (int flips = 1 + static_cast<int>(rng() % 8); flips > 0; --flips) {
      // Mostly the manager's own fields and the first arena's units, where it matters.
      const std::size_t at = rng() % 4 ? rng() % (lay.unitsOffset - lay.managerOffset + 64 * 12) : rng() % span;
      bytes[at] = static_cast<std::uint8_t>(rng());
    }
    if (rng() % 2) {
      // A forged but plausible free run: right state and order, any unit, any links.
      const auto order = static_cast<std::uint32_t>(rng() % (g.topOrder() + 2));
      const auto unit = static_cast<std::uint32_t>(rng() % (g.maxArenas * g.unitsPerArena() + 8));
      if (order < kMaxOrders) {
        mem.shared()->freeHead[order] = unit;
        mem.shared()->freeBlocks[order] += 1;
      }
      if (unit < g.maxArenas * g.unitsPerArena())
        mem.units()[unit] = layout::UnitMeta{static_cast<std::uint32_t>(rng()), layout::kNil, layout::UnitState::FreeHead,
                                             static_cast<std::uint8_t>(order), 0};
    }
    mem.shared()->lock.store(0);  // a flipped lock word would only time out
    for (int i = 0; i < 40; ++i) {
      if (rng() % 2 && !live.empty()) {
        const auto a = live[rng() % live.size()];
        (void)m->free(a.arena, a.offset);
      } else if (auto a = m->allocate(1 + rng() % 4096)) {
        ASSERT_LT(a->arena, g.maxArenas) << "round " << round;
        ASSERT_LE(a->offset + a->size, g.arenaSize()) << "round " << round;
        live.push_back(*a);
      }
      (void)m->stats();
    }
  }
}

}  // namespace
}  // namespace ipcsync
