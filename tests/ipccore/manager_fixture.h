// A buddy manager over anonymous, zeroed memory: the control segment without the memfd.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <memory>

#include "ipcsync/ipccore/buddy_manager.h"
#include "ipcsync/ipccore/control_layout.h"

namespace ipcsync::test {

class ManagerMemory {
 public:
  explicit ManagerMemory(const BlockGeometry& g) : m_geometry(g), m_layout(layout::controlLayoutFor(g)) {
    m_base = static_cast<std::byte*>(::mmap(nullptr, m_layout.size, PROT_READ | PROT_WRITE,
                                            MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    BuddyManager::format(shared(), units(), g);
  }
  ~ManagerMemory() { ::munmap(m_base, m_layout.size); }
  ManagerMemory(const ManagerMemory&) = delete;
  ManagerMemory& operator=(const ManagerMemory&) = delete;

  const BlockGeometry& geometry() const { return m_geometry; }
  layout::ManagerShared* shared() { return reinterpret_cast<layout::ManagerShared*>(m_base + m_layout.managerOffset); }
  layout::UnitMeta* units() { return reinterpret_cast<layout::UnitMeta*>(m_base + m_layout.unitsOffset); }
  layout::Channels& channels() { return *reinterpret_cast<layout::Channels*>(m_base + m_layout.channelsOffset); }
  // A view as party `pid` (the owner and the engine use different pids).
  std::unique_ptr<BuddyManager> view(std::int32_t pid = 1) {
    return std::make_unique<BuddyManager>(shared(), units(), m_geometry, -1, pid);
  }

 private:
  BlockGeometry m_geometry;
  layout::ControlLayout m_layout;
  std::byte* m_base = nullptr;
};

}  // namespace ipcsync::test
