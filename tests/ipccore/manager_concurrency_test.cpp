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

// One party: which view it uses, and whether it batches its calls under Holds.
struct Party {
  BuddyManager* view;
  bool holding;
};

// Runs the parties at once, each on its own thread with its own stamp, over one block; then every
// run must have been handed to one party at a time and be free again, and the lock released.
void runAtOnce(test::ManagerMemory& mem, const std::vector<Party>& parties) {
  // The block itself: each party stamps its runs and checks the stamp before freeing.
  std::vector<std::atomic<std::uint8_t>> block(mem.geometry().maxBytes());
  std::atomic<bool> overlap{false};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < parties.size(); ++i) {
    const auto stamp = static_cast<std::uint8_t>(i + 1);
    threads.emplace_back(party, std::ref(*parties[i].view), std::ref(block), std::ref(overlap), stamp, stamp,
                         parties[i].holding);
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(overlap) << "a run was handed to two parties at once";
  auto s = mem.view()->stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->bytesInUse, 0u);
  EXPECT_EQ(s->allocations, s->frees);
  EXPECT_EQ(mem.shared()->lock.load(), 0);
}

const BlockGeometry kGeometry{.minBlockShift = 6, .arenaShift = 16, .minArenas = 1, .maxArenas = 4};

TEST(ManagerConcurrencyTest, OwnerAndEngineNeverReceiveOverlappingRuns) {
  test::ManagerMemory mem(kGeometry);
  auto owner = mem.view(100), engine = mem.view(200);
  runAtOnce(mem, {{owner.get(), false}, {engine.get(), true}});
}

// A client's view is shared by its threads (loan() runs on any of them) while its messaging
// thread returns runs under a Hold: the Hold lets only its own thread skip the lock.
TEST(ManagerConcurrencyTest, ThreadsSharingOneViewWaitForAnotherThreadsHold) {
  test::ManagerMemory mem(kGeometry);
  auto owner = mem.view(100), engine = mem.view(200);
  runAtOnce(mem, {{owner.get(), true}, {owner.get(), false}, {engine.get(), true}});
}

}  // namespace
}  // namespace ipcsync
