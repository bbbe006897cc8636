#include "ipcsync/sync/plugin_dir_watch.h"

#include <sys/inotify.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace ipcsync {

bool isPluginFileName(const std::string& name) { return name.size() > 3 && name.ends_with(".so"); }

std::expected<PluginDirWatch, std::string> PluginDirWatch::open(const std::filesystem::path& dir) {
  PluginDirWatch w;
  w.m_dir = dir;
  w.m_fd.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!w.m_fd) return std::unexpected(std::string("inotify_init1: ") + std::strerror(errno));
  constexpr std::uint32_t kMask =
      IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
  if (::inotify_add_watch(w.m_fd.get(), dir.c_str(), kMask) < 0)
    return std::unexpected("cannot watch plugins directory " + dir.string() + ": " + std::strerror(errno));
  std::error_code ec;  // listed after the watch exists, so nothing dropped in between is missed
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (isPluginFileName(name)) w.m_files.insert(name);
  }
  if (ec) return std::unexpected("cannot list plugins directory " + dir.string() + ": " + ec.message());
  return w;
}

PluginDirWatch::Changes PluginDirWatch::readEvents() {
  Changes out;
  alignas(inotify_event) char buf[8192];
  for (;;) {
    const ssize_t n = ::read(m_fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (const char* p = buf; p < buf + n;) {
      inotify_event ev;
      std::memcpy(&ev, p, sizeof ev);
      const std::string name = ev.len ? std::string(p + sizeof ev) : std::string();
      p += sizeof ev + ev.len;
      if (ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
        out.watchLost = true;
        continue;
      }
      if (!isPluginFileName(name)) continue;
      bool present = (ev.mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) != 0;
      if (ev.mask & IN_CREATE) {  // a link counts now; a regular file once written and closed
        struct stat st {};
        present = ::lstat((m_dir / name).c_str(), &st) == 0 && !S_ISREG(st.st_mode);
        if (!present) continue;
      }
      if (present && m_files.insert(name).second) out.appeared.push_back(name);
      if ((ev.mask & (IN_DELETE | IN_MOVED_FROM)) && m_files.erase(name)) out.vanished.push_back(name);
    }
  }
  return out;
}

}  // namespace ipcsync
