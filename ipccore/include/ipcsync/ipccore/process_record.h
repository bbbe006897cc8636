// ProcessRecord: what the registry knows of one registered process.
//
// Records live in the admin segment, one per slot, each behind its own sequence lock. The engine
// alone writes them; observers (the admin console, `ipcsync status`) copy them out whole. The
// struct is standard-layout, fixed-size and pointer-free so it means the same in every process.
#pragma once

#include <cstdint>
#include <string_view>

#include "ipcsync/ipccore/geometry.h"

namespace ipcsync {

inline constexpr std::size_t kNameCapacity = 48;  // bytes, including the terminating NUL
inline constexpr std::uint16_t kArenaInactive = 0xffff;  // in ProcessRecord::arenaUsedPermille

enum class RecordState : std::uint32_t {
  Free = 0,        // slot unused
  Registering = 1, // engine is building the process's block and handles
  Registered = 2,  // process is live; its block may be used
  Reclaiming = 3,  // process ended; engine is releasing what it held
};

std::string_view describe(RecordState state) noexcept;

// A manager's figures, as the admin console draws them. All byte counts are exact.
struct ManagerStats {
  std::uint64_t bytesInUse = 0;       // sum of allocated sub-block sizes (after rounding)
  std::uint64_t bytesFree = 0;        // free bytes in active arenas
  std::uint64_t largestFreeRun = 0;   // largest free sub-block, in bytes (0 if none)
  std::uint64_t allocations = 0;      // successful allocations since registration
  std::uint64_t frees = 0;            // successful frees since registration
  std::uint64_t failures = 0;         // allocations refused for want of memory
  std::uint32_t activeArenas = 0;
  std::uint32_t arenasGrown = 0;      // arenas added since registration
  std::uint32_t arenasReleased = 0;   // arenas returned to the system since registration
  std::uint32_t reserved = 0;
  std::uint64_t freeBlocksPerOrder[kMaxOrders] = {};  // order k = minBlock << k bytes
};
static_assert(sizeof(ManagerStats) % 8 == 0);

// Traffic through the engine, as the engine counts it.
struct TrafficCounters {
  std::uint64_t messagesOut = 0;   // messages this process sent that the engine delivered
  std::uint64_t bytesOut = 0;
  std::uint64_t messagesIn = 0;    // messages delivered into this process's block
  std::uint64_t bytesIn = 0;
  std::uint64_t waitsForRoom = 0;  // times a message for this process waited: its block or ring was full
  std::uint64_t dropped = 0;       // messages from this process whose peer had gone
  std::uint32_t sessions = 0;      // open sessions
  std::uint32_t reserved = 0;
};

struct ProcessRecord {
  std::uint64_t generation = 0;   // grows each time the slot is (re)used; (slot, generation) is unique
  std::int32_t pid = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  RecordState state = RecordState::Free;
  char name[kNameCapacity] = {};
  std::uint64_t registeredAtNs = 0;  // CLOCK_REALTIME
  std::uint64_t lastSeenNs = 0;      // CLOCK_REALTIME, when the engine last saw the process alive
  BlockGeometry geometry{};
  ManagerStats stats{};
  TrafficCounters traffic{};
  // How full each arena of the block is, in thousandths (kArenaInactive: not active), as of the
  // engine's last tick; for the admin console's memory picture. Arenas past geometry.maxArenas
  // stay kArenaInactive.
  std::uint16_t arenaUsedPermille[kMaxArenas] = {};

  std::string_view nameView() const noexcept;
};
static_assert(sizeof(ProcessRecord) % 8 == 0);

}  // namespace ipcsync
