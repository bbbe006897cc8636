#include "ipcsync/ipccore/buddy_manager.h"

#include <fcntl.h>
#include <sched.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <thread>

#include "cpu_relax.h"

namespace ipcsync {
namespace {

using layout::kNil;
using layout::UnitMeta;
using layout::UnitState;
using Clock = std::chrono::steady_clock;

// Spins this many times (with a CPU pause) before yielding the core: critical sections are a
// few hundred nanoseconds, and the two parties may share one core.
constexpr int kSpinsBeforeYield = 64;

}  // namespace

BuddyManager::BuddyManager(layout::ManagerShared* shared, layout::UnitMeta* units,
                           BlockGeometry geometry, int blockFd, std::int32_t self) noexcept
    : m_shared(shared),
      m_units(units),
      m_geometry(geometry),
      m_totalUnits(geometry.maxArenas * geometry.unitsPerArena()),
      m_blockFd(blockFd),
      m_self(self) {}

void BuddyManager::format(layout::ManagerShared* shared, layout::UnitMeta* units,
                          const BlockGeometry& geometry) noexcept {
  shared->lock.store(0, std::memory_order_relaxed);
  shared->activeArenas = 0;
  for (std::uint32_t k = 0; k < kMaxOrders; ++k) {
    shared->freeHead[k] = kNil;
    shared->freeBlocks[k] = 0;
  }
  shared->bytesInUse = shared->allocations = shared->frees = shared->failures = 0;
  shared->arenasGrown = shared->arenasReleased = 0;
  std::memset(shared->arenaActive, 0, sizeof shared->arenaActive);
  BuddyManager view(shared, units, geometry, -1, 0);
  for (std::uint32_t i = 0; i < geometry.minArenas; ++i) (void)view.growArena();
  shared->arenasGrown = 0;  // the initial arenas are not growth
}

bool BuddyManager::heldHere() const noexcept {
  // On every lock() and unlock(): no holder is the common case, and the caller's id is cached.
  const std::thread::id holder = m_holder.load(std::memory_order_relaxed);
  if (holder == std::thread::id{}) return false;
  thread_local const std::thread::id self = std::this_thread::get_id();
  return holder == self;
}

std::expected<void, Errc> BuddyManager::lock() const noexcept {
  if (heldHere()) return {};
  int spins = 0;
  Clock::time_point deadline{};
  for (;;) {
    std::int32_t expected = 0;
    if (m_shared->lock.load(std::memory_order_relaxed) == 0 &&
        m_shared->lock.compare_exchange_weak(expected, m_self, std::memory_order_acquire,
                                             std::memory_order_relaxed))
      return {};
    if (++spins < kSpinsBeforeYield) {
      cpuRelax();
      continue;
    }
    const auto now = Clock::now();
    if (deadline == Clock::time_point{}) deadline = now + m_lockTimeout;
    else if (now >= deadline) return std::unexpected(Errc::LockTimeout);
    sched_yield();
  }
}

void BuddyManager::unlock() const noexcept {
  if (!heldHere()) m_shared->lock.store(0, std::memory_order_release);
}

std::expected<BuddyManager::Hold, Errc> BuddyManager::hold() const noexcept {
  if (heldHere()) return std::unexpected(Errc::InvalidArgument);  // one Hold per thread at a time
  if (auto locked = lock(); !locked) return std::unexpected(locked.error());
  m_holder.store(std::this_thread::get_id(), std::memory_order_relaxed);
  return Hold(this);
}

std::expected<BuddyManager::Hold, Errc> BuddyManager::tryHold() const noexcept {
  if (heldHere()) return std::unexpected(Errc::InvalidArgument);
  std::int32_t expected = 0;
  if (m_shared->lock.load(std::memory_order_relaxed) != 0 ||
      !m_shared->lock.compare_exchange_strong(expected, m_self, std::memory_order_acquire, std::memory_order_relaxed))
    return std::unexpected(Errc::WouldBlock);
  m_holder.store(std::this_thread::get_id(), std::memory_order_relaxed);
  return Hold(this);
}

void BuddyManager::endHold() const noexcept {
  m_holder.store(std::thread::id{}, std::memory_order_relaxed);
  unlock();
}

bool BuddyManager::validHead(std::uint32_t unit, std::uint32_t order) const noexcept {
  if (unit >= m_totalUnits || order > m_geometry.topOrder()) return false;
  if (unit & ((1U << order) - 1)) return false;
  return m_shared->arenaActive[unit >> m_geometry.topOrder()] != 0;
}

void BuddyManager::pushFree(std::uint32_t unit, std::uint32_t order) noexcept {
  const std::uint32_t head = m_shared->freeHead[order];
  m_units[unit] = UnitMeta{head, kNil, UnitState::FreeHead, static_cast<std::uint8_t>(order), 0};
  if (validUnit(head)) m_units[head].prev = unit;
  m_shared->freeHead[order] = unit;
  ++m_shared->freeBlocks[order];
}

std::expected<void, Errc> BuddyManager::removeFree(std::uint32_t unit, std::uint32_t order) noexcept {
  if (!validHead(unit, order)) return std::unexpected(Errc::Corrupt);
  const UnitMeta meta = m_units[unit];
  if (meta.state != UnitState::FreeHead || meta.order != order || m_shared->freeBlocks[order] == 0)
    return std::unexpected(Errc::Corrupt);
  if (meta.prev == kNil) {
    if (m_shared->freeHead[order] != unit) return std::unexpected(Errc::Corrupt);
    m_shared->freeHead[order] = meta.next;
  } else {
    if (!validUnit(meta.prev)) return std::unexpected(Errc::Corrupt);
    m_units[meta.prev].next = meta.next;
  }
  if (meta.next != kNil) {
    if (!validUnit(meta.next)) return std::unexpected(Errc::Corrupt);
    m_units[meta.next].prev = meta.prev;
  }
  m_units[unit].state = UnitState::None;
  --m_shared->freeBlocks[order];
  return {};
}

std::expected<std::uint32_t, Errc> BuddyManager::popFree(std::uint32_t order) noexcept {
  const std::uint32_t unit = m_shared->freeHead[order];
  if (!validHead(unit, order)) return std::unexpected(Errc::Corrupt);
  if (auto removed = removeFree(unit, order); !removed) return std::unexpected(removed.error());
  return unit;
}

std::expected<void, Errc> BuddyManager::growArena() noexcept {
  if (m_shared->activeArenas >= m_geometry.maxArenas) return std::unexpected(Errc::OutOfMemory);
  for (std::uint32_t arena = 0; arena < m_geometry.maxArenas; ++arena) {
    if (m_shared->arenaActive[arena]) continue;
    const UnitMeta& head = m_units[arena * m_geometry.unitsPerArena()];
    if (head.state != UnitState::None) return std::unexpected(Errc::Corrupt);  // an inactive arena holds no runs
    m_shared->arenaActive[arena] = 1;
    ++m_shared->activeArenas;
    ++m_shared->arenasGrown;
    pushFree(arena * m_geometry.unitsPerArena(), m_geometry.topOrder());
    return {};
  }
  return std::unexpected(Errc::Corrupt);  // the count said an arena was free, the map did not
}

std::expected<void, Errc> BuddyManager::releaseArena(std::uint32_t arena) noexcept {
  const std::uint32_t head = arena * m_geometry.unitsPerArena();
  if (auto removed = removeFree(head, m_geometry.topOrder()); !removed) return removed;
  m_shared->arenaActive[arena] = 0;
  --m_shared->activeArenas;
  ++m_shared->arenasReleased;
  if (m_blockFd >= 0) {
    // Give the pages back. Done under the lock: once unlocked, the arena may be reactivated and
    // written by the other party, and a late punch would wipe its data.
    (void)::fallocate(m_blockFd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      static_cast<off_t>(blockOffset(arena, 0)),
                      static_cast<off_t>(m_geometry.arenaSize()));
  }
  return {};
}

std::expected<Allocation, Errc> BuddyManager::allocate(std::uint64_t bytes, std::uint64_t keepFree) noexcept {
  if (bytes == 0) return std::unexpected(Errc::InvalidArgument);
  if (bytes > m_geometry.arenaSize()) return std::unexpected(Errc::TooLarge);
  const std::uint32_t shift = std::max(ceilLog2(bytes), m_geometry.minBlockShift);
  const std::uint32_t order = shift - m_geometry.minBlockShift;
  if (auto locked = lock(); !locked) return std::unexpected(locked.error());
  if (keepFree > 0 && m_shared->bytesInUse + (m_geometry.minBlock() << order) + keepFree > m_geometry.maxBytes()) {
    unlock();
    return std::unexpected(Errc::OutOfMemory);
  }

  std::uint32_t found = order;
  while (found <= m_geometry.topOrder() && m_shared->freeHead[found] == kNil) ++found;
  if (found > m_geometry.topOrder()) {
    if (auto grown = growArena(); !grown) {
      ++m_shared->failures;
      unlock();
      return std::unexpected(grown.error());
    }
    found = m_geometry.topOrder();
  }
  auto popped = popFree(found);
  if (!popped) {
    unlock();
    return std::unexpected(popped.error());
  }
  const std::uint32_t unit = *popped;
  while (found > order) {  // split, keeping the lower half and freeing the upper buddy
    --found;
    pushFree(unit + (1U << found), found);
  }
  m_units[unit] = UnitMeta{kNil, kNil, UnitState::UsedHead, static_cast<std::uint8_t>(order), 0};
  const std::uint64_t size = m_geometry.minBlock() << order;
  m_shared->bytesInUse += size;
  ++m_shared->allocations;
  unlock();

  const std::uint32_t arena = unit >> m_geometry.topOrder();
  const std::uint32_t local = unit & (m_geometry.unitsPerArena() - 1);
  return Allocation{arena, order, std::uint64_t{local} << m_geometry.minBlockShift, size};
}

std::expected<void, Errc> BuddyManager::free(std::uint32_t arena, std::uint64_t offset) noexcept {
  if (arena >= m_geometry.maxArenas || offset >= m_geometry.arenaSize())
    return std::unexpected(Errc::OutOfBounds);
  if (offset & (m_geometry.minBlock() - 1)) return std::unexpected(Errc::NotAllocated);
  const std::uint32_t base = arena * m_geometry.unitsPerArena();
  std::uint32_t local = static_cast<std::uint32_t>(offset >> m_geometry.minBlockShift);

  if (auto locked = lock(); !locked) return std::unexpected(locked.error());
  auto fail = [this](Errc e) {
    unlock();
    return std::unexpected(e);
  };
  if (!m_shared->arenaActive[arena]) return fail(Errc::OutOfBounds);
  const UnitMeta meta = m_units[base + local];
  if (meta.state == UnitState::FreeHead) return fail(Errc::DoubleFree);
  if (meta.state != UnitState::UsedHead) return fail(Errc::NotAllocated);
  std::uint32_t order = meta.order;
  if (order > m_geometry.topOrder() || (local & ((1U << order) - 1))) return fail(Errc::Corrupt);

  m_shared->bytesInUse -= m_geometry.minBlock() << order;
  ++m_shared->frees;
  m_units[base + local].state = UnitState::None;
  while (order < m_geometry.topOrder()) {  // coalesce while the buddy is a free run of our order
    const std::uint32_t buddy = local ^ (1U << order);
    const UnitMeta& bm = m_units[base + buddy];
    if (bm.state != UnitState::FreeHead || bm.order != order) break;
    if (auto removed = removeFree(base + buddy, order); !removed) return fail(removed.error());
    local &= ~(1U << order);
    ++order;
  }
  pushFree(base + local, order);
  // Empty arenas stay until trim(): giving pages back on every free would make a busy block
  // fault them in again at once (the engine trims blocks that have gone idle).
  unlock();
  return {};
}

std::expected<Allocation, Errc> BuddyManager::checkAllocated(std::uint32_t arena, std::uint64_t offset,
                                                             std::uint64_t length) const noexcept {
  if (arena >= m_geometry.maxArenas || offset >= m_geometry.arenaSize() || length > m_geometry.arenaSize() - offset)
    return std::unexpected(Errc::OutOfBounds);
  if (offset & (m_geometry.minBlock() - 1)) return std::unexpected(Errc::NotAllocated);
  const std::uint32_t local = static_cast<std::uint32_t>(offset >> m_geometry.minBlockShift);
  if (auto locked = lock(); !locked) return std::unexpected(locked.error());
  const bool active = m_shared->arenaActive[arena] != 0;
  const UnitMeta meta = m_units[arena * m_geometry.unitsPerArena() + local];
  unlock();
  if (!active) return std::unexpected(Errc::OutOfBounds);
  if (meta.state == UnitState::FreeHead) return std::unexpected(Errc::DoubleFree);
  if (meta.state != UnitState::UsedHead || meta.order > m_geometry.topOrder()) return std::unexpected(Errc::NotAllocated);
  const std::uint64_t size = m_geometry.minBlock() << meta.order;
  if (length > size) return std::unexpected(Errc::OutOfBounds);
  return Allocation{arena, meta.order, offset, size};
}

std::expected<std::uint32_t, Errc> BuddyManager::trim() noexcept {
  if (auto locked = lock(); !locked) return std::unexpected(locked.error());
  std::uint32_t released = 0;
  const std::uint32_t top = m_geometry.topOrder();
  for (std::uint32_t arena = m_geometry.maxArenas; arena-- > 0;) {
    if (m_shared->activeArenas <= m_geometry.minArenas) break;
    if (!m_shared->arenaActive[arena]) continue;
    const UnitMeta& head = m_units[arena * m_geometry.unitsPerArena()];
    if (head.state != UnitState::FreeHead || head.order != top) continue;
    if (auto r = releaseArena(arena); !r) {
      unlock();
      return std::unexpected(r.error());
    }
    ++released;
  }
  unlock();
  return released;
}

ManagerStats BuddyManager::statsLocked() const noexcept {
  ManagerStats s;
  s.bytesInUse = m_shared->bytesInUse;
  s.allocations = m_shared->allocations;
  s.frees = m_shared->frees;
  s.failures = m_shared->failures;
  s.activeArenas = m_shared->activeArenas;
  s.arenasGrown = m_shared->arenasGrown;
  s.arenasReleased = m_shared->arenasReleased;
  for (std::uint32_t k = 0; k < kMaxOrders; ++k) {
    s.freeBlocksPerOrder[k] = m_shared->freeBlocks[k];
    const std::uint64_t runBytes = m_geometry.minBlock() << std::min(k, m_geometry.topOrder());
    if (k <= m_geometry.topOrder()) {
      s.bytesFree += s.freeBlocksPerOrder[k] * runBytes;
      if (s.freeBlocksPerOrder[k]) s.largestFreeRun = runBytes;
    }
  }
  return s;
}

std::expected<ManagerStats, Errc> BuddyManager::stats() const noexcept {
  if (auto locked = lock(); !locked) return std::unexpected(locked.error());
  ManagerStats s = statsLocked();
  unlock();
  return s;
}

std::expected<bool, Errc> BuddyManager::arenaUse(std::span<std::uint16_t, kMaxArenas> permille,
                                                 std::uint32_t maxRuns) const noexcept {
  std::uint64_t freeBytes[kMaxArenas] = {};
  if (auto locked = lock(); !locked) return std::unexpected(locked.error());
  bool complete = true;
  std::uint32_t walked = 0;
  for (std::uint32_t k = 0; k <= m_geometry.topOrder() && complete; ++k) {
    std::uint32_t unit = m_shared->freeHead[k];
    for (std::uint64_t n = 0; n < m_shared->freeBlocks[k]; ++n) {
      if (++walked > maxRuns || !validHead(unit, k)) {
        complete = false;
        break;
      }
      freeBytes[unit >> m_geometry.topOrder()] += m_geometry.minBlock() << k;
      unit = m_units[unit].next;
    }
  }
  bool active[kMaxArenas] = {};
  for (std::uint32_t a = 0; a < m_geometry.maxArenas; ++a) active[a] = m_shared->arenaActive[a] != 0;
  unlock();
  if (!complete) return false;
  const std::uint64_t arena = m_geometry.arenaSize();
  for (std::uint32_t a = 0; a < kMaxArenas; ++a) {
    if (!active[a]) {
      permille[a] = kArenaInactive;
      continue;
    }
    const std::uint64_t used = arena - std::min(freeBytes[a], arena);
    permille[a] = static_cast<std::uint16_t>((used * 1000 + arena - 1) / arena);  // any use shows
  }
  return true;
}

}  // namespace ipcsync
