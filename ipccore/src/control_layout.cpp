#include "ipcsync/ipccore/control_layout.h"

namespace ipcsync::layout {
namespace {
constexpr std::uint64_t roundUp(std::uint64_t n, std::uint64_t to) { return (n + to - 1) / to * to; }
constexpr std::uint64_t kPage = 4096;
}  // namespace

ControlLayout controlLayoutFor(const BlockGeometry& g) noexcept {
  ControlLayout out{};
  out.managerOffset = roundUp(sizeof(ControlHeader), 64);
  out.channelsOffset = roundUp(out.managerOffset + sizeof(ManagerShared), 64);
  out.unitsOffset = roundUp(out.channelsOffset + sizeof(Channels), 64);
  const std::uint64_t units = std::uint64_t{g.maxArenas} * g.unitsPerArena();
  out.size = roundUp(out.unitsOffset + units * sizeof(UnitMeta), kPage);
  return out;
}

}  // namespace ipcsync::layout
