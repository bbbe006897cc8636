// BlockGeometry: the shape of one process's block and of its buddy manager.
//
// A block is a row of equal arenas. Each arena is one top-order buddy run of 2^arenaShift bytes,
// split down to runs of 2^minBlockShift bytes; a request is rounded up to a power of two of at
// least the minimum block. The block starts with `minArenas` arenas and grows one arena at a time
// up to `maxArenas`. The engine chooses the geometry; the owner learns it at registration.
#pragma once

#include <cstdint>
#include <expected>

#include "ipcsync/ipccore/error.h"

namespace ipcsync {

inline constexpr std::uint32_t kMaxOrders = 32;     // orders per arena, counted from min block
inline constexpr std::uint32_t kMaxArenas = 256;    // hard cap of arenas per block
inline constexpr std::uint32_t kMinBlockShiftLow = 6;   // 64 B
inline constexpr std::uint32_t kArenaShiftHigh = 30;    // 1 GiB
inline constexpr std::uint32_t kMaxUnitsPerArenaShift = 20;

struct BlockGeometry {
  std::uint32_t minBlockShift = 6;   // 64 B
  std::uint32_t arenaShift = 20;     // 1 MiB
  std::uint32_t minArenas = 1;
  std::uint32_t maxArenas = 64;

  std::uint64_t minBlock() const noexcept { return std::uint64_t{1} << minBlockShift; }
  std::uint64_t arenaSize() const noexcept { return std::uint64_t{1} << arenaShift; }
  std::uint32_t topOrder() const noexcept { return arenaShift - minBlockShift; }
  std::uint32_t unitsPerArena() const noexcept { return 1U << topOrder(); }
  std::uint64_t maxBytes() const noexcept { return arenaSize() * maxArenas; }

  friend bool operator==(const BlockGeometry&, const BlockGeometry&) = default;
};
static_assert(sizeof(BlockGeometry) == 16);

// Checks every bound above; InvalidArgument names the field and its allowed range.
std::expected<void, Error> validate(const BlockGeometry& geometry);

// The smallest power-of-two exponent s with 2^s >= bytes (bytes >= 1).
std::uint32_t ceilLog2(std::uint64_t bytes) noexcept;

}  // namespace ipcsync
