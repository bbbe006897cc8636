#include "loan_cache.h"

#include <algorithm>

namespace ipcsync {
namespace {

constexpr std::uint64_t kBatchBytes = 2048;     // a refill allocates this much, in runs of one order
constexpr std::uint64_t kLargestCached = 512;  // bytes of the largest run kept ready

std::uint32_t countOf(std::uint64_t word) noexcept { return static_cast<std::uint32_t>(word); }
std::uint64_t nextGeneration(std::uint64_t word) noexcept { return ((word >> 32) + 1) << 32; }

}  // namespace

std::optional<std::uint32_t> LoanCache::orderFor(std::uint64_t bytes) const noexcept {
  const BlockGeometry& g = m_manager.geometry();
  if (bytes == 0 || bytes > kLargestCached) return std::nullopt;
  const std::uint32_t order = std::max(ceilLog2(bytes), g.minBlockShift) - g.minBlockShift;
  if (order >= layout::kLoanCacheOrders || order > g.topOrder() || batchFor(order) < 2) return std::nullopt;
  return order;
}

std::uint32_t LoanCache::batchFor(std::uint32_t order) const noexcept {
  const std::uint64_t run = m_manager.geometry().minBlock() << order;
  return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(kBatchBytes / run, 1, layout::kLoanCacheRuns));
}

std::optional<Allocation> LoanCache::allocationOf(std::uint32_t unit, std::uint32_t order) const noexcept {
  const BlockGeometry& g = m_manager.geometry();
  if (unit >= g.maxArenas * g.unitsPerArena() || (unit & ((1U << order) - 1)) != 0) return std::nullopt;
  const std::uint32_t local = unit & (g.unitsPerArena() - 1);
  return Allocation{unit >> g.topOrder(), order, std::uint64_t{local} << g.minBlockShift, g.minBlock() << order};
}

std::uint32_t LoanCache::unitOf(const Allocation& a) const noexcept {
  const BlockGeometry& g = m_manager.geometry();
  return a.arena * g.unitsPerArena() + static_cast<std::uint32_t>(a.offset >> g.minBlockShift);
}

std::optional<Allocation> LoanCache::take(std::uint32_t order) noexcept {
  auto& stack = m_shared.stacks[order];
  std::uint64_t word = stack.word.load(std::memory_order_acquire);
  for (;;) {
    const std::uint32_t n = countOf(word);
    if (n == 0 || n > layout::kLoanCacheRuns) return std::nullopt;
    const std::uint32_t unit = stack.units[n - 1].load(std::memory_order_relaxed);
    // Same generation, one fewer: nobody refilled or drained since `word` was read, so `unit`
    // is the run on top and now ours alone.
    if (stack.word.compare_exchange_weak(word, word - 1, std::memory_order_acquire, std::memory_order_acquire))
      return allocationOf(unit, order);
  }
}

std::expected<Allocation, Errc> LoanCache::refill(std::uint32_t order, std::uint64_t keepFree) noexcept {
  auto hold = m_manager.hold();
  if (!hold) return std::unexpected(hold.error());
  if (auto ready = take(order)) return *ready;  // another thread refilled while we waited
  const std::uint64_t bytes = m_manager.geometry().minBlock() << order;
  auto first = m_manager.allocate(bytes, keepFree);
  if (!first) return std::unexpected(first.error());
  auto& stack = m_shared.stacks[order];
  const std::uint32_t batch = batchFor(order);
  std::uint32_t kept = 0;
  for (; kept + 1 < batch; ++kept) {
    auto a = m_manager.allocate(bytes, keepFree);
    if (!a) break;  // the block is nearly full: keep what we have
    stack.units[kept].store(unitOf(*a), std::memory_order_relaxed);
  }
  // The count was 0 and only a refill raises it, under the lock we hold: a plain store is enough.
  stack.word.store(nextGeneration(stack.word.load(std::memory_order_relaxed)) | kept, std::memory_order_release);
  return *first;
}

std::expected<std::uint32_t, Errc> LoanCache::drain() noexcept {
  auto hold = m_manager.hold();
  if (!hold) return std::unexpected(hold.error());
  std::uint32_t freed = 0;
  for (std::uint32_t order = 0; order < layout::kLoanCacheOrders; ++order) {
    auto& stack = m_shared.stacks[order];
    std::uint64_t word = stack.word.load(std::memory_order_acquire);
    while (!stack.word.compare_exchange_weak(word, nextGeneration(word), std::memory_order_acq_rel)) {
    }
    const std::uint32_t n = std::min(countOf(word), layout::kLoanCacheRuns);
    for (std::uint32_t i = 0; i < n; ++i) {
      const auto run = allocationOf(stack.units[i].load(std::memory_order_relaxed), order);
      if (!run) return std::unexpected(Errc::OutOfBounds);
      if (auto ok = m_manager.free(run->arena, run->offset); !ok) return std::unexpected(ok.error());
      ++freed;
    }
  }
  return freed;
}

std::uint32_t LoanCache::ready() const noexcept {
  std::uint32_t n = 0;
  for (const auto& stack : m_shared.stacks)
    n += std::min(countOf(stack.word.load(std::memory_order_relaxed)), layout::kLoanCacheRuns);
  return n;
}

}  // namespace ipcsync
