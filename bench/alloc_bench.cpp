// Allocator benchmark: one allocate+free pair through our BuddyManager (in a real control
// segment, its lock taken and released each call, as a client does), through Boost.Interprocess
// managed_shared_memory (rbtree_best_fit, its interprocess mutex included), and through glibc
// malloc, with the same request sequences, in one run.
//
//   build/release/bench/alloc_bench [--rounds N]
#include <unistd.h>

#include <boost/interprocess/managed_shared_memory.hpp>
#include <cstdlib>
#include <cstring>
#include <random>

#include "bench_util.h"
#include "ipcsync/ipccore/process_memory.h"

namespace bip = boost::interprocess;
using namespace ipcsync;
using namespace ipcsync::bench;

namespace {

// One workload: a sequence of operations. Positive entries allocate that many bytes into the
// next slot of a ring of `live` slots, freeing what the slot held first.
struct Workload {
  std::string name;
  std::vector<std::uint32_t> sizes;
  std::size_t live;  // how many allocations stay outstanding
};

Workload fixed(const char* name, std::uint32_t size, std::size_t ops) {
  return Workload{name, std::vector<std::uint32_t>(ops, size), 1};
}

Workload randomMix(std::size_t ops) {
  std::mt19937 rng(42);
  Workload w{"random mix 16 B-64 KiB, 1024 live", {}, 1024};
  for (std::size_t i = 0; i < ops; ++i) {
    // Mostly small, a long tail of large: log-uniform from 16 B to 64 KiB.
    const double e = std::uniform_real_distribution<double>(4, 16)(rng);
    w.sizes.push_back(static_cast<std::uint32_t>(std::exp2(e)));
  }
  return w;
}

template <typename Alloc, typename Free>
double nsPerPair(const Workload& w, Alloc alloc, Free release) {
  std::vector<void*> ring(w.live, nullptr);
  // Warm up with one pass so every allocator starts from a steady state.
  for (int pass = 0; pass < 2; ++pass) {
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < w.sizes.size(); ++i) {
      void*& slot = ring[i % w.live];
      if (slot) release(slot);
      slot = alloc(w.sizes[i]);
      if (w.live == 1) {  // pairs: free at once
        release(slot);
        slot = nullptr;
      }
    }
    const double ns = nsSince(t0);
    if (pass == 1) {
      for (auto*& p : ring)
        if (p) release(p), p = nullptr;
      return ns / static_cast<double>(w.sizes.size());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::atoi(argv[i + 1]);
  const std::size_t ops = 1 << 20;
  const std::vector<Workload> workloads = {fixed("64 B", 64, ops), fixed("4 KiB", 4096, ops),
                                           fixed("64 KiB", 65536, ops), randomMix(ops)};

  const BlockGeometry g{.minBlockShift = 6, .arenaShift = 22, .minArenas = 16, .maxArenas = 64};  // up to 256 MiB
  auto pm = ProcessMemory::create(g, "bench", ::getpid(), ::getpid(), 1);
  if (!pm) {
    std::fprintf(stderr, "alloc_bench: %s\n", pm.error().message().c_str());
    return 1;
  }
  BuddyManager& buddy = (*pm)->manager();

  const std::string shmName = "ipcsync-bench-alloc-" + std::to_string(::getpid());
  bip::shared_memory_object::remove(shmName.c_str());
  struct Remove {
    std::string name;
    ~Remove() { bip::shared_memory_object::remove(name.c_str()); }
  } remove{shmName};
  bip::managed_shared_memory boost(bip::create_only, shmName.c_str(), 256u << 20);

  std::printf("allocate+free, ns per pair (median of %d rounds of %zu operations)\n\n", rounds, ops);
  for (const auto& w : workloads) {
    std::vector<double> ours, theirs, libc;
    for (int r = 0; r < rounds; ++r) {
      ours.push_back(nsPerPair(
          w,
          [&](std::uint32_t n) -> void* {
            auto a = buddy.allocate(n);
            if (!a) std::abort();
            // Encode (arena, offset) as a fake pointer: the benchmark keeps handles, not addresses.
            return reinterpret_cast<void*>((std::uintptr_t{a->arena} << 40) | (a->offset + 1));
          },
          [&](void* p) {
            const auto v = reinterpret_cast<std::uintptr_t>(p);
            if (!buddy.free(static_cast<std::uint32_t>(v >> 40), (v & ((1ULL << 40) - 1)) - 1)) std::abort();
          }));
      theirs.push_back(nsPerPair(
          w, [&](std::uint32_t n) { return boost.allocate(n); }, [&](void* p) { boost.deallocate(p); }));
      libc.push_back(nsPerPair(
          w, [](std::uint32_t n) { return std::malloc(n); }, [](void* p) { std::free(p); }));
    }
    printComparison(w.name, "ns", {"ipcsync BuddyManager", median(ours)},
                    {{"Boost.Interprocess rbtree_best_fit", median(theirs)}, {"glibc malloc", median(libc)}});
    std::printf("\n");
  }
  return 0;
}
