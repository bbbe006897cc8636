#include "ipcsync/ipccore/geometry.h"

#include <bit>
#include <string>

namespace ipcsync {

std::uint32_t ceilLog2(std::uint64_t bytes) noexcept {
  return bytes <= 1 ? 0U : static_cast<std::uint32_t>(std::bit_width(bytes - 1));
}

std::expected<void, Error> validate(const BlockGeometry& g) {
  auto bad = [](std::string what) { return std::unexpected(Error{Errc::InvalidArgument, std::move(what)}); };
  if (g.minBlockShift < kMinBlockShiftLow || g.minBlockShift > 20)
    return bad("minimum block must be a power of two from 64 B to 1 MiB (got 2^" +
               std::to_string(g.minBlockShift) + ")");
  if (g.arenaShift < g.minBlockShift || g.arenaShift > kArenaShiftHigh)
    return bad("arena size must be a power of two from the minimum block up to 1 GiB (got 2^" +
               std::to_string(g.arenaShift) + ")");
  if (g.arenaShift - g.minBlockShift > kMaxUnitsPerArenaShift)
    return bad("an arena may hold at most 2^20 minimum blocks (arena 2^" + std::to_string(g.arenaShift) +
               " / minimum block 2^" + std::to_string(g.minBlockShift) + "); raise the minimum block");
  if (g.maxArenas < 1 || g.maxArenas > kMaxArenas)
    return bad("max arenas must be 1.." + std::to_string(kMaxArenas) + " (got " + std::to_string(g.maxArenas) + ")");
  if (g.minArenas < 1 || g.minArenas > g.maxArenas)
    return bad("min arenas must be 1..max arenas (got " + std::to_string(g.minArenas) + " of " +
               std::to_string(g.maxArenas) + ")");
  return {};
}

}  // namespace ipcsync
