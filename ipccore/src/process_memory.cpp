#include "ipcsync/ipccore/process_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <string>

namespace ipcsync {
namespace {

constexpr unsigned kSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

std::expected<UniqueFd, Error> makeSealedMemfd(const std::string& name, std::uint64_t size) {
  UniqueFd fd(::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return std::unexpected(systemError("memfd_create " + name, errno));
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
    return std::unexpected(systemError("ftruncate " + name + " to " + std::to_string(size) + " B", errno));
  if (::fcntl(fd.get(), F_ADD_SEALS, kSeals) != 0)
    return std::unexpected(systemError("seal " + name, errno));
  return fd;
}

std::expected<void, Error> checkSealedSize(int fd, std::uint64_t size, const char* what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::unexpected(systemError(std::string("fstat ") + what, errno));
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (static_cast<unsigned>(seals) & kSeals) != kSeals || static_cast<std::uint64_t>(st.st_size) != size)
    return std::unexpected(Error{Errc::BadSegment, std::string(what) + " is not a sealed memory object of " +
                                                       std::to_string(size) + " B"});
  return {};
}

}  // namespace

ProcessMemory::~ProcessMemory() = default;

const layout::ControlHeader& ProcessMemory::header() const noexcept {
  return *reinterpret_cast<const layout::ControlHeader*>(m_control.data());
}

layout::Channels& ProcessMemory::channels() const noexcept { return *m_channels; }

std::expected<std::unique_ptr<ProcessMemory>, Error> ProcessMemory::create(
    const BlockGeometry& geometry, std::string_view label, std::int32_t ownerPid, std::int32_t enginePid,
    std::uint64_t generation) {
  if (auto ok = validate(geometry); !ok) return std::unexpected(ok.error());
  const layout::ControlLayout lay = layout::controlLayoutFor(geometry);
  std::unique_ptr<ProcessMemory> pm(new ProcessMemory());

  auto control = makeSealedMemfd("ipcsync-control:" + std::string(label), lay.size);
  if (!control) return std::unexpected(control.error());
  auto block = makeSealedMemfd("ipcsync-block:" + std::string(label), geometry.maxBytes());
  if (!block) return std::unexpected(block.error());
  auto cmap = Mapping::map(control->get(), lay.size, Mapping::Access::ReadWrite, "control segment");
  if (!cmap) return std::unexpected(cmap.error());
  auto bmap = Mapping::map(block->get(), geometry.maxBytes(), Mapping::Access::ReadWrite, "block");
  if (!bmap) return std::unexpected(bmap.error());

  std::byte* base = cmap->data();
  auto* hdr = new (base) layout::ControlHeader{};
  hdr->layoutVersion = layout::kControlLayoutVersion;
  hdr->size = lay.size;
  hdr->ownerPid = ownerPid;
  hdr->enginePid = enginePid;
  hdr->generation = generation;
  hdr->geometry = geometry;
  hdr->managerOffset = lay.managerOffset;
  hdr->channelsOffset = lay.channelsOffset;
  hdr->unitsOffset = lay.unitsOffset;
  new (base + lay.channelsOffset) layout::Channels{};
  auto* shared = new (base + lay.managerOffset) layout::ManagerShared{};
  auto* units = reinterpret_cast<layout::UnitMeta*>(base + lay.unitsOffset);  // zero pages: all None
  BuddyManager::format(shared, units, geometry);
  hdr->magic = layout::kControlMagic;

  pm->m_manager = std::make_unique<BuddyManager>(shared, units, geometry, block->get(), enginePid);
  pm->m_channels = reinterpret_cast<layout::Channels*>(base + lay.channelsOffset);
  pm->m_controlFd = std::move(*control);
  pm->m_blockFd = std::move(*block);
  pm->m_control = std::move(*cmap);
  pm->m_block = std::move(*bmap);
  return pm;
}

std::expected<std::unique_ptr<ProcessMemory>, Error> ProcessMemory::attach(UniqueFd control, UniqueFd block,
                                                                           const BlockGeometry& geometry,
                                                                           std::uint64_t generation) {
  if (auto ok = validate(geometry); !ok) return std::unexpected(Error{Errc::BadSegment, ok.error().detail});
  const layout::ControlLayout lay = layout::controlLayoutFor(geometry);
  if (auto ok = checkSealedSize(control.get(), lay.size, "control segment"); !ok) return std::unexpected(ok.error());
  if (auto ok = checkSealedSize(block.get(), geometry.maxBytes(), "block"); !ok) return std::unexpected(ok.error());
  auto cmap = Mapping::map(control.get(), lay.size, Mapping::Access::ReadWrite, "control segment");
  if (!cmap) return std::unexpected(cmap.error());
  auto bmap = Mapping::map(block.get(), geometry.maxBytes(), Mapping::Access::ReadWrite, "block");
  if (!bmap) return std::unexpected(bmap.error());

  const auto* hdr = reinterpret_cast<const layout::ControlHeader*>(cmap->data());
  if (hdr->magic != layout::kControlMagic || hdr->layoutVersion != layout::kControlLayoutVersion ||
      hdr->size != lay.size || hdr->generation != generation || !(hdr->geometry == geometry) ||
      hdr->managerOffset != lay.managerOffset || hdr->channelsOffset != lay.channelsOffset ||
      hdr->unitsOffset != lay.unitsOffset)
    return std::unexpected(Error{Errc::BadSegment, "control segment header does not match the registration (layout " +
                                                       std::to_string(hdr->layoutVersion) + ", expected " +
                                                       std::to_string(layout::kControlLayoutVersion) + ")"});
  std::unique_ptr<ProcessMemory> pm(new ProcessMemory());
  std::byte* base = cmap->data();
  pm->m_manager = std::make_unique<BuddyManager>(
      reinterpret_cast<layout::ManagerShared*>(base + lay.managerOffset),
      reinterpret_cast<layout::UnitMeta*>(base + lay.unitsOffset), geometry, block.get(),
      static_cast<std::int32_t>(::getpid()));
  pm->m_channels = reinterpret_cast<layout::Channels*>(base + lay.channelsOffset);
  pm->m_controlFd = std::move(control);
  pm->m_blockFd = std::move(block);
  pm->m_control = std::move(*cmap);
  pm->m_block = std::move(*bmap);
  return pm;
}

std::span<std::byte> ProcessMemory::bytes(const Allocation& a) const noexcept {
  const BlockGeometry& g = m_manager->geometry();
  if (a.arena >= g.maxArenas || a.offset > g.arenaSize() || a.size > g.arenaSize() - a.offset) return {};
  return {m_block.data() + m_manager->blockOffset(a.arena, a.offset), a.size};
}

}  // namespace ipcsync
