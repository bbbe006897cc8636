// Two parties (the owner and the engine) using one manager at once, and threads sharing a view.
// Run under the tsan preset to show the lock protocol is race-free; under any preset it shows
// that no run is handed out twice.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "manager_fixture.h"

namespace ipcsync {
namespace {

// Random allocations and frees through `m`, stamping each run in `block` and checking the stamp
// before freeing; `overlap` is raised when a run was handed out twice. With `holding`, every 8
// calls run under one Hold, as the engine's batches and a client's batched releases do.
void party(BuddyManager& m, std::vector<std::atomic<std::uint8_t>>& block, std::atomic<bool>& overlap,
           std::uint8_t stamp, std::uint32_t seed, bool holding) {
  std::vector<Allocation> mine;
  std::uint32_t x = seed;
  auto step = [&] {
    x = x * 1664525 + 1013904223;
    if (mine.size() < 32 && (x >> 28) < 9) {
      auto a = m.allocate(1 + (x >> 8) % 2048);
      if (!a) return;
      const std::uint64_t at = m.blockOffset(a->arena, a->offset);
      for (std::uint64_t b = at; b < at + a->size; b += 64) {
        if (block[b].exchange(stamp, std::memory_order_relaxed) != 0) overlap = true;
      }
      mine.push_back(*a);
    } else if (!mine.empty()) {
      const Allocation a = mine.back();
      mine.pop_back();
      const std::uint64_t at = m.blockOffset(a.arena, a.offset);
      for (std::uint64_t b = at; b < at + a.size; b += 64) {
        if (block[b].exchange(0, std::memory_order_relaxed) != stamp) overlap = true;
      }
      ASSERT_TRUE(m.free(a.arena, a.offset));
    }
  };
  for (int i = 0; i < 20000; i += 8) {
    if (holding) {
      auto hold = m.hold();  // the calls below skip the lock only if it was taken
      for (int j = 0; j < 8; ++j) step();
    } else {
      for (int j = 0; j < 8; ++j) step();
    }
  }
  for (const auto& a : mine) {
    const std::uint64_t at = m.blockOffset(a.arena, a.offset);
    for (std::uint64_t b = at; b < at + a.size; b += 64) block[b].store(0, std::memory_order_relaxed);
    ASSERT_TRUE(m.free(a.arena, a.offset));
  }
}

const BlockGeometry kGeometry{.minBlockShift = 6, .arenaShift = 16, .minArenas = 1, .maxArenas = 4};

void expectAllReturned(test::ManagerMemory& mem, bool overlap) {
  EXPECT_FALSE(overlap) << "a run was handed to both parties at once";
  auto s = mem.view()->stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->bytesInUse, 0u);
  EXPECT_EQ(s->allocations, s->frees);
  EXPECT_EQ(mem.shared()->lock.load(), 0);
}

TEST(ManagerConcurrencyTest, OwnerAndEngineNeverReceiveOverlappingRuns) {
  test::ManagerMemory mem(kGeometry);
  // The block itself: each party stamps its runs and checks the stamp before freeing.
  std::vector<std::atomic<std::uint8_t>> block(kGeometry.maxBytes());
  std::atomic<bool> overlap{false};
  auto owner = mem.view(100), engine = mem.view(200);
  std::thread a(party, std::ref(*owner), std::ref(block), std::ref(overlap), 1, 1, false);
  std::thread b(party, std::ref(*engine), std::ref(block), std::ref(overlap), 2, 2, true);
  a.join();
  b.join();
  expectAllReturned(mem, overlap);
}

// A client's view is shared by its threads (loan() runs on any of them) while its messaging
// thread returns runs under a Hold: the Hold lets only its own thread skip the lock.
TEST(ManagerConcurrencyTest, ThreadsSharingOneViewWaitForAnotherThreadsHold) {
  test::ManagerMemory mem(kGeometry);
  std::vector<std::atomic<std::uint8_t>> block(kGeometry.maxBytes());
  std::atomic<bool> overlap{false};
  auto owner = mem.view(100), engine = mem.view(200);
  std::thread holder(party, std::ref(*owner), std::ref(block), std::ref(overlap), 1, 1, true);
  std::thread loaner(party, std::ref(*owner), std::ref(block), std::ref(overlap), 2, 2, false);
  std::thread other(party, std::ref(*engine), std::ref(block), std::ref(overlap), 3, 3, true);
  holder.join();
  loaner.join();
  other.join();
  expectAllReturned(mem, overlap);
}

}  // namespace
}  // namespace ipcsync
