// The layout of a per-process control segment: administrative memory kept apart from the block.
//
// One control segment per registered process holds the buddy manager's metadata for that
// process's block (the manager lock, the free lists and one UnitMeta per minimum-size unit of
// every arena) and the two rings of Locations between the process and the engine. Nothing in it points anywhere; free lists link unit indices. Because the block
// holds no metadata at all, a stray write into the block cannot corrupt the manager.
//
// Both the owner and the engine map it read-write. The engine never trusts what it reads here
// (the owner could have scribbled on it): every index is bounds-checked before use.
#pragma once

#include <atomic>
#include <cstdint>

#include "ipcsync/ipccore/geometry.h"
#include "ipcsync/ipccore/ring.h"

namespace ipcsync::layout {

inline constexpr std::uint32_t kControlMagic = 0x49504343;  // "IPCC"
inline constexpr std::uint32_t kControlLayoutVersion = 3;
inline constexpr std::uint32_t kNil = 0xffffffffU;

enum class UnitState : std::uint8_t { None = 0, FreeHead = 1, UsedHead = 2 };

// One per minimum-size unit. Only the first unit of a run ("head") carries a state; every other
// unit is None. Free heads are linked per order through global unit indices.
struct UnitMeta {
  std::uint32_t next;
  std::uint32_t prev;
  UnitState state;
  std::uint8_t order;
  std::uint16_t reserved;
};
static_assert(sizeof(UnitMeta) == 12);

// The manager's shared state. Every field but `lock` is read and written only while `lock` holds
// the pid of the party that owns it (0 when free).
struct ManagerShared {
  std::atomic<std::int32_t> lock;
  std::uint32_t activeArenas;
  std::uint32_t freeHead[kMaxOrders];
  std::uint64_t freeBlocks[kMaxOrders];
  std::uint64_t bytesInUse;
  std::uint64_t allocations;
  std::uint64_t frees;
  std::uint64_t failures;
  std::uint32_t arenasGrown;
  std::uint32_t arenasReleased;
  std::uint8_t arenaActive[kMaxArenas];
};
static_assert(std::atomic<std::int32_t>::is_always_lock_free);

// Runs the owner allocated ahead for its next small loans, one stack per order of the smallest
// runs (docs/design/loan-cache.md). `word` packs a generation (high 32 bits, bumped by every
// refill and every drain) with the number of ready runs (low 32 bits): a taker that raced a
// refill or a drain fails its compare-exchange instead of taking a run twice. Refills and drains
// run under the manager lock; takers never lock.
inline constexpr std::uint32_t kLoanCacheOrders = 4;
inline constexpr std::uint32_t kLoanCacheRuns = 32;
struct LoanCacheShared {
  struct Stack {
    alignas(64) std::atomic<std::uint64_t> word;
    std::atomic<std::uint32_t> units[kLoanCacheRuns];  // the head unit of each ready run, block-wide index
  } stacks[kLoanCacheOrders];
};

// The communications half: the two rings and the flags that let each side sleep without a
// lost wake-up. A side that is about to sleep sets its flag, re-checks its ring, then waits on
// its eventfd; a side that posts checks the other's flag after publishing, and only then makes
// the system call (docs/design/notification.md).
struct Channels {
  alignas(64) std::atomic<std::uint32_t> engineSleeping;    // engine waits; owner rings after posting
  alignas(64) std::atomic<std::uint32_t> ownerSleeping;     // owner waits for inbound; engine rings
  alignas(64) std::atomic<std::uint32_t> ownerWantsRoom;    // owner waits for outbound room; engine rings
  alignas(64) std::atomic<std::uint32_t> engineWantsRoom;   // engine waits for room in this block; owner rings on release
  alignas(64) std::atomic<std::uint32_t> controlPosted;     // engine bumps it after each socket message to the owner
  LocationRing outbound;  // owner -> engine
  LocationRing inbound;   // engine -> owner
  LoanCacheShared loanCache;
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free && std::atomic<std::uint64_t>::is_always_lock_free);

struct ControlHeader {
  std::uint32_t magic;
  std::uint32_t layoutVersion;
  std::uint64_t size;             // bytes of the whole segment
  std::int32_t ownerPid;
  std::int32_t enginePid;
  std::uint64_t generation;       // the registration this segment belongs to
  BlockGeometry geometry;
  std::uint64_t managerOffset;    // of ManagerShared, from the segment start
  std::uint64_t channelsOffset;   // of Channels
  std::uint64_t unitsOffset;      // of UnitMeta[maxArenas * unitsPerArena]
};

// Byte offsets and total size of a control segment for `geometry`, page-rounded.
struct ControlLayout {
  std::uint64_t managerOffset;
  std::uint64_t channelsOffset;
  std::uint64_t unitsOffset;
  std::uint64_t size;
};
ControlLayout controlLayoutFor(const BlockGeometry& geometry) noexcept;

}  // namespace ipcsync::layout
