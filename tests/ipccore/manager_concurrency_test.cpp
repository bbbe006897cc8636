// Two parties (the owner and the engine) using one manager at once. Run under the tsan preset to
// show the lock protocol is race-free; under any preset it shows that no run is handed out twice.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "manager_fixture.h"

namespace ipcsync {
namespace {

TEST(ManagerConcurrencyTest, OwnerAndEngineNeverReceiveOverlappingRuns) {
  const BlockGeometry g{.minBlockShift = 6, .arenaShift = 16, .minArenas = 1, .maxArenas = 4};
  test::ManagerMemory mem(g);
  // The block itself: each party stamps its runs and checks the stamp before freeing.
  std::vector<std::atomic<std::uint8_t>> block(g.maxBytes());
  std::atomic<bool> overlap{false};
  auto party = [&](std::int32_t pid, std::uint8_t stamp, std::uint32_t seed) {
    auto m = mem.view(pid);
    std::vector<Allocation> mine;
    std::uint32_t x = seed;
    for (int i = 0; i < 20000; ++i) {
      x = x * 1664525 + 1013904223;
      if (mine.size() < 32 && (x >> 28) < 9) {
        auto a = m->allocate(1 + (x >> 8) % 2048);
        if (!a) continue;
        const std::uint64_t at = m->blockOffset(a->arena, a->offset);
        for (std::uint64_t b = at; b < at + a->size; b += 64) {
          if (block[b].exchange(stamp, std::memory_order_relaxed) != 0) overlap = true;
        }
        mine.push_back(*a);
      } else if (!mine.empty()) {
        const Allocation a = mine.back();
        mine.pop_back();
        const std::uint64_t at = m->blockOffset(a.arena, a.offset);
        for (std::uint64_t b = at; b < at + a.size; b += 64) {
          if (block[b].exchange(0, std::memory_order_relaxed) != stamp) overlap = true;
        }
        ASSERT_TRUE(m->free(a.arena, a.offset));
      }
    }
    for (const auto& a : mine) {
      const std::uint64_t at = m->blockOffset(a.arena, a.offset);
      for (std::uint64_t b = at; b < at + a.size; b += 64) block[b].store(0, std::memory_order_relaxed);
      ASSERT_TRUE(m->free(a.arena, a.offset));
    }
  };
  std::thread owner(party, 100, 1, 1);
  std::thread engine(party, 200, 2, 2);
  owner.join();
  engine.join();
  EXPECT_FALSE(overlap) << "a run was handed to both parties at once";
  auto s = mem.view()->stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->bytesInUse, 0u);
  EXPECT_EQ(s->allocations, s->frees);
  EXPECT_EQ(mem.shared()->lock.load(), 0);
}

}  // namespace
}  // namespace ipcsync
