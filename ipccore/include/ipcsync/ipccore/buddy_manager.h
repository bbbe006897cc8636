// BuddyManager: the memory manager of one process's block.
//
// A binary buddy allocator ([0038]-[0039] of the source design). Requests round up to a power of
// two of at least the minimum block; freeing a run merges it with its buddy, found by flipping
// one bit of its unit index, for as long as the buddy is free. Allocate and free are O(log n) in
// the arena size. The block grows by activating arenas up to the geometry's maximum and shrinks,
// on trim(), by returning empty arenas to the system (the engine trims blocks that went idle).
//
// A BuddyManager is a process-local view: its metadata lives in a control segment that two
// parties map (the block's owner and the engine), guarded by a lock word that holds the pid of
// the party inside. The geometry comes from the view's constructor, never from shared memory, and
// every index read from shared memory is checked, so a corrupt segment yields Errc::Corrupt and
// never a wild access. Addresses are (arena, offset-in-arena) pairs; the view never sees a
// pointer into the block.
//
// Thread safety: any number of views in any number of threads and processes may use one manager
// at once; the lock serialises them. Lock waits are bounded (LockTimeout) so a dead or stuck peer
// can never hang a caller.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <span>
#include <thread>

#include "ipcsync/ipccore/control_layout.h"
#include "ipcsync/ipccore/error.h"
#include "ipcsync/ipccore/geometry.h"
#include "ipcsync/ipccore/process_record.h"

namespace ipcsync {

// A sub-block handed out by the manager.
struct Allocation {
  std::uint32_t arena = 0;
  std::uint32_t order = 0;     // size is minBlock << order
  std::uint64_t offset = 0;    // from the start of the arena
  std::uint64_t size = 0;      // rounded size, >= the requested size
  friend bool operator==(const Allocation&, const Allocation&) = default;
};

class BuddyManager {
 public:
  // `shared` and `units` point into a mapped control segment laid out for `geometry`; both must
  // outlive the view. `blockFd` (borrowed, may be -1) is the block's memory object: released
  // arenas are punched out of it so their pages go back to the system. `self` is the pid written
  // into the lock word.
  BuddyManager(layout::ManagerShared* shared, layout::UnitMeta* units, BlockGeometry geometry,
               int blockFd, std::int32_t self) noexcept;
  BuddyManager(const BuddyManager&) = delete;
  BuddyManager& operator=(const BuddyManager&) = delete;

  // Initialises fresh (zeroed) metadata and activates `minArenas` arenas. Engine side, once,
  // before any other party can see the segment.
  static void format(layout::ManagerShared* shared, layout::UnitMeta* units,
                     const BlockGeometry& geometry) noexcept;

  // Longest a caller waits for the lock before LockTimeout.
  void setLockTimeout(std::chrono::microseconds timeout) noexcept { m_lockTimeout = timeout; }

  // A sub-block of at least `bytes` (>= 1). Errors: InvalidArgument (0 bytes), TooLarge (more
  // than one arena), OutOfMemory (no run free and no arena left to add, or fewer than `keepFree`
  // bytes of the block's maximum would stay unallocated), LockTimeout, Corrupt.
  std::expected<Allocation, Errc> allocate(std::uint64_t bytes, std::uint64_t keepFree = 0) noexcept;

  // Returns the sub-block starting at (arena, offset). Errors: OutOfBounds, NotAllocated (not the
  // start of an allocated run: a foreign offset), DoubleFree, LockTimeout, Corrupt. On error the
  // manager is unchanged, except after Corrupt (its metadata was already inconsistent).
  std::expected<void, Errc> free(std::uint32_t arena, std::uint64_t offset) noexcept;

  // The allocated run that starts at (arena, offset), if it holds at least `length` bytes. For
  // the engine, before it copies out of a run a client names. Errors as free(), plus OutOfBounds
  // when the run is shorter than `length`. Changes nothing.
  std::expected<Allocation, Errc> checkAllocated(std::uint32_t arena, std::uint64_t offset,
                                                 std::uint64_t length) const noexcept;

  // Holds the lock across a run of calls on this view (the engine's batches): until the Hold
  // ends, allocate, free and checkAllocated through this view, on this thread, skip their own lock
  // round trip, so a batch of N messages costs one lock transfer between processes instead of N.
  // Other threads using the view wait for the lock as usual. One Hold per thread at a time; end it
  // on the thread that took it, before the segment can be unmapped. LockTimeout as the calls.
  class Hold {
   public:
    Hold(Hold&& other) noexcept : m_manager(other.m_manager) { other.m_manager = nullptr; }
    Hold& operator=(Hold&&) = delete;
    ~Hold() {
      if (m_manager) m_manager->endHold();
    }

   private:
    friend class BuddyManager;
    explicit Hold(const BuddyManager* manager) noexcept : m_manager(manager) {}
    const BuddyManager* m_manager;
  };
  std::expected<Hold, Errc> hold() const noexcept;
  // As hold(), but never waits: WouldBlock while the other party holds the lock (a client
  // releasing received messages puts them aside instead of waiting for the engine's batch).
  std::expected<Hold, Errc> tryHold() const noexcept;

  // Releases every empty arena beyond `minArenas`; returns how many were released.
  std::expected<std::uint32_t, Errc> trim() noexcept;

  // A consistent copy of the manager's figures.
  std::expected<ManagerStats, Errc> stats() const noexcept;

  // How full each arena is, in thousandths, into `permille` (kArenaInactive for arenas that are not
  // active). Walks the free lists under the lock, at most `maxRuns` runs: false (and `permille`
  // untouched) if there were more, or if the lists are inconsistent.
  std::expected<bool, Errc> arenaUse(std::span<std::uint16_t, kMaxArenas> permille,
                                     std::uint32_t maxRuns = 16384) const noexcept;

  // Byte offset of (arena, offset) from the start of the block.
  std::uint64_t blockOffset(std::uint32_t arena, std::uint64_t offset) const noexcept {
    return (std::uint64_t{arena} << m_geometry.arenaShift) + offset;
  }
  const BlockGeometry& geometry() const noexcept { return m_geometry; }

 private:
  std::expected<void, Errc> lock() const noexcept;
  void unlock() const noexcept;
  void endHold() const noexcept;
  bool heldHere() const noexcept;
  std::expected<std::uint32_t, Errc> popFree(std::uint32_t order) noexcept;
  std::expected<void, Errc> removeFree(std::uint32_t unit, std::uint32_t order) noexcept;
  void pushFree(std::uint32_t unit, std::uint32_t order) noexcept;
  std::expected<void, Errc> growArena() noexcept;
  std::expected<void, Errc> releaseArena(std::uint32_t arena) noexcept;
  bool validUnit(std::uint32_t unit) const noexcept { return unit < m_totalUnits; }
  // A unit that can head a free run of `order`: in range, aligned to the run, in an active arena.
  bool validHead(std::uint32_t unit, std::uint32_t order) const noexcept;
  ManagerStats statsLocked() const noexcept;

  layout::ManagerShared* m_shared;
  layout::UnitMeta* m_units;
  BlockGeometry m_geometry;
  std::uint32_t m_totalUnits;
  int m_blockFd;
  std::int32_t m_self;
  std::chrono::microseconds m_lockTimeout{std::chrono::seconds(1)};
  // The thread whose Hold owns the lock (id() when none). Only that thread skips the lock word:
  // other threads sharing the view (a client's loan() runs on any thread) still wait for it.
  mutable std::atomic<std::thread::id> m_holder{};
};

}  // namespace ipcsync
