// ProcessMemory: one registered process's control segment, block and buddy manager, as one party
// (the owner or the engine) maps them.
//
// Both segments are anonymous memfd objects: they have no name anywhere, so no other process can
// open them; only the engine, which creates them, and the owner, to whom the engine passes the
// descriptors over the rendezvous socket, hold them. The engine sizes both to their maximum
// (tmpfs allocates pages only when touched) and seals them against growing and shrinking, so
// neither party can ever make the other fault on a truncated mapping. Arenas "grow" by being
// activated and "shrink" by having their pages punched out.
//
// Pinned: the manager holds pointers into the mapping, so copy and move are deleted.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string_view>

#include "ipcsync/ipccore/buddy_manager.h"
#include "ipcsync/ipccore/error.h"
#include "ipcsync/ipccore/mapping.h"
#include "ipcsync/ipccore/unique_fd.h"

namespace ipcsync {

class ProcessMemory {
 public:
  // Engine side: creates, sizes, seals, maps and formats both segments. `label` names the memfds
  // in /proc for debugging. Fails with SystemError naming the step.
  static std::expected<std::unique_ptr<ProcessMemory>, Error> create(const BlockGeometry& geometry,
                                                                     std::string_view label,
                                                                     std::int32_t ownerPid,
                                                                     std::int32_t enginePid,
                                                                     std::uint64_t generation);

  // Owner side: maps descriptors received from the engine (takes ownership) and checks that they
  // are sealed, sized for `geometry` and carry the expected header. BadSegment on any mismatch.
  static std::expected<std::unique_ptr<ProcessMemory>, Error> attach(UniqueFd control, UniqueFd block,
                                                                     const BlockGeometry& geometry,
                                                                     std::uint64_t generation);

  ProcessMemory(const ProcessMemory&) = delete;
  ProcessMemory& operator=(const ProcessMemory&) = delete;
  ~ProcessMemory();

  BuddyManager& manager() noexcept { return *m_manager; }
  const BuddyManager& manager() const noexcept { return *m_manager; }

  // The bytes of `a` inside this block; empty when `a` does not lie inside the block.
  std::span<std::byte> bytes(const Allocation& a) const noexcept;

  int controlFd() const noexcept { return m_controlFd.get(); }
  int blockFd() const noexcept { return m_blockFd.get(); }
  const layout::ControlHeader& header() const noexcept;
  // The rings and notification flags shared with the other party.
  layout::Channels& channels() const noexcept;

 private:
  ProcessMemory() = default;

  UniqueFd m_controlFd;
  UniqueFd m_blockFd;
  Mapping m_control;
  Mapping m_block;
  std::unique_ptr<BuddyManager> m_manager;
  layout::Channels* m_channels = nullptr;  // from the locally computed layout, never the header
};

}  // namespace ipcsync
