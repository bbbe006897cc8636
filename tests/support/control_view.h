// Test support: a second mapping of one of this process's own control segments, found through
// /proc/self/fd, so a test can act as a misbehaving client (scribble on its rings, hold its lock).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "ipcsync/ipccore/control_layout.h"
#include "ipcsync/ipccore/mapping.h"

namespace ipcsync::test {

class ControlView {
 public:
  // The control segment of the registration `name` in namespace `ns` held by this process.
  static std::optional<ControlView> find(const std::string& ns, const std::string& name, const BlockGeometry& g) {
    const std::string wanted = "ipcsync-control:" + ns + ":" + name + " ";
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
      std::error_code ec;
      const auto target = std::filesystem::read_symlink(entry.path(), ec).string();
      if (target.find(wanted) == std::string::npos) continue;
      const auto lay = layout::controlLayoutFor(g);
      auto m = Mapping::map(std::stoi(entry.path().filename().string()), lay.size, Mapping::Access::ReadWrite, "control");
      if (!m) return std::nullopt;
      ControlView v;
      v.m_layout = lay;
      v.m_mapping = std::move(*m);
      return v;
    }
    return std::nullopt;
  }
  layout::ManagerShared& manager() { return *reinterpret_cast<layout::ManagerShared*>(m_mapping.data() + m_layout.managerOffset); }
  layout::Channels& channels() { return *reinterpret_cast<layout::Channels*>(m_mapping.data() + m_layout.channelsOffset); }

 private:
  layout::ControlLayout m_layout{};
  Mapping m_mapping;
};

}  // namespace ipcsync::test
