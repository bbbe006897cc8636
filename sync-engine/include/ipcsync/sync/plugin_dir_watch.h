// PluginDirWatch: the plugin libraries (*.so) present in the plugins directory, kept current
// with inotify.
//
// A regular file counts once it has been written and closed (a copy in progress is not yet a
// plugin) or moved in; a symbolic link to a regular file and a hard link count when created; a
// directory named *.so never counts. Removing or moving a file out drops it. When the kernel's
// event queue overflows, the directory is listed again and the difference reported. The set
// holds file names, not paths. Move-only; not thread-safe.
#pragma once

#include <expected>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "ipcsync/ipccore/unique_fd.h"

namespace ipcsync {

class PluginDirWatch {
 public:
  struct Changes {
    std::vector<std::string> appeared;  // file names, in event order
    std::vector<std::string> vanished;
    bool watchLost = false;             // the directory itself was removed or moved away
    bool overflowed = false;            // events were lost; the lists come from listing the directory
  };

  // Watches `dir` and lists the *.so already in it. Fails with a message naming the directory.
  static std::expected<PluginDirWatch, std::string> open(const std::filesystem::path& dir);

  PluginDirWatch(PluginDirWatch&&) noexcept = default;
  PluginDirWatch& operator=(PluginDirWatch&&) noexcept = default;

  int fd() const noexcept { return m_fd.get(); }  // readable when events are pending
  const std::filesystem::path& dir() const noexcept { return m_dir; }
  const std::set<std::string>& files() const noexcept { return m_files; }

  // Reads every pending event without blocking and updates files().
  Changes readEvents();

 private:
  PluginDirWatch() = default;
  std::expected<std::set<std::string>, std::string> list() const;  // the plugin files in m_dir now
  void rescan(Changes& out);                                         // m_files := list(), differences into out
  std::filesystem::path m_dir;
  UniqueFd m_fd;
  std::set<std::string> m_files;
};

// True for a name ending in ".so".
bool isPluginFileName(const std::string& name);

}  // namespace ipcsync
