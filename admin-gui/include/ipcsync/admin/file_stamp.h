// FileStamp: whether a state file that its writer replaces whole (temp file + rename: plugins.json,
// sync.json) changed since the last look, from its inode, size and modification time, without
// reading it.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>

namespace ipcsync::admin {

class FileStamp {
 public:
  enum class Look { Missing, Unchanged, Changed };
  Look look(const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      m_seen = false;
      return Look::Missing;
    }
    const auto mtime = static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1'000'000'000ULL +
                       static_cast<std::uint64_t>(st.st_mtim.tv_nsec);
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (m_seen && m_inode == st.st_ino && m_size == size && m_mtimeNs == mtime) return Look::Unchanged;
    m_seen = true;
    m_inode = st.st_ino;
    m_size = size;
    m_mtimeNs = mtime;
    return Look::Changed;
  }
  void forget() { m_seen = false; }

 private:
  std::uint64_t m_inode = 0, m_size = 0, m_mtimeNs = 0;
  bool m_seen = false;
};

}  // namespace ipcsync::admin
