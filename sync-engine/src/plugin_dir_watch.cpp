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
  // Listed after the watch exists, so nothing dropped in between is missed.
  auto listed = w.list();
  if (!listed) return std::unexpected(listed.error());
  w.m_files = std::move(*listed);
  return w;
}

std::expected<std::set<std::string>, std::string> PluginDirWatch::list() const {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(m_dir, ec)) {
    const std::string name = e.path().filename().string();
    std::error_code typeError;  // a link is followed: what counts is a regular file behind it
    if (isPluginFileName(name) && std::filesystem::is_regular_file(e.path(), typeError)) out.insert(name);
  }
  if (ec) return std::unexpected("cannot list plugins directory " + m_dir.string() + ": " + ec.message());
  return out;
}

void PluginDirWatch::rescan(Changes& out) {
  auto listed = list();
  if (!listed) {
    out.watchLost = true;
    return;
  }
  for (const auto& name : *listed)
    if (!m_files.contains(name)) out.appeared.push_back(name);
  for (const auto& name : m_files)
    if (!listed->contains(name)) out.vanished.push_back(name);
  m_files = std::move(*listed);
}

PluginDirWatch::Changes PluginDirWatch::readEvents() {
  Changes out;
  bool overflowed = false;
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
      if (ev.mask & IN_Q_OVERFLOW) {  // events were dropped: only the directory itself can tell
        overflowed = true;
        continue;
      }
      if (!isPluginFileName(name) || (ev.mask & IN_ISDIR)) continue;
      bool present = (ev.mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) != 0;
      if (ev.mask & IN_CREATE) {
        // A symbolic link counts now (if it leads to a regular file), and so does a hard link
        // (its file was written before); a new regular file only once written and closed.
        struct stat lst {}, st {};
        const auto path = (m_dir / name);
        present = ::lstat(path.c_str(), &lst) == 0 && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
                  (S_ISLNK(lst.st_mode) || st.st_nlink > 1);
        if (!present) continue;
      }
      if (present && m_files.insert(name).second) out.appeared.push_back(name);
      if ((ev.mask & (IN_DELETE | IN_MOVED_FROM)) && m_files.erase(name)) out.vanished.push_back(name);
    }
  }
  if (overflowed && !out.watchLost) {
    out = Changes{};  // what the directory holds now replaces whatever the surviving events said
    out.overflowed = true;
    rescan(out);
  }
  return out;
}

}  // namespace ipcsync
