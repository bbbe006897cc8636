#include "namespace_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "ipcsync/ipccore/engine_config.h"

namespace ipcsync {
namespace {

// mkdir -m mode, or check that an existing entry is a directory of ours that nobody else can
// write to. Only a directory we made (or the per-namespace one, which is ours alone) gets its
// mode set: a base directory passed in, such as $HOME, keeps its own.
std::expected<void, Error> ensureOwnDir(const std::filesystem::path& dir, mode_t mode, bool adoptMode) {
  bool created = ::mkdir(dir.c_str(), mode) == 0;
  if (!created && errno != EEXIST)
    return std::unexpected(systemError("create runtime directory " + dir.string(), errno));
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return std::unexpected(systemError("stat " + dir.string(), errno));
  if (!S_ISDIR(st.st_mode))
    return std::unexpected(Error{Errc::InvalidArgument, dir.string() + " exists and is not a directory; remove it or pass --runtime-dir"});
  if (st.st_uid != ::geteuid())
    return std::unexpected(Error{Errc::InvalidArgument, "runtime directory " + dir.string() + " belongs to uid " +
                                                            std::to_string(st.st_uid) + ", not to us (uid " +
                                                            std::to_string(::geteuid()) + "); pass --runtime-dir"});
  if ((created || adoptMode) && (st.st_mode & 07777) != mode && ::chmod(dir.c_str(), mode) != 0)
    return std::unexpected(systemError("chmod " + dir.string(), errno));
  if (!created && !adoptMode && (st.st_mode & 022))
    return std::unexpected(Error{Errc::InvalidArgument, "runtime directory " + dir.string() +
                                                            " is writable by others; use a private directory"});
  return {};
}

}  // namespace

std::filesystem::path defaultRuntimeDir() {
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) return std::filesystem::path(xdg) / "ipcsync";
  return "/tmp/ipcsync-" + std::to_string(::geteuid());
}

std::expected<NamespaceDir, Error> NamespaceDir::lock(const std::filesystem::path& base, const std::string& ns,
                                                      mode_t mode) {
  if (auto ok = ensureOwnDir(base, mode, false); !ok) return std::unexpected(ok.error());
  NamespaceDir out;
  out.m_path = base / ns;
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (auto ok = ensureOwnDir(out.m_path, mode, true); !ok) return std::unexpected(ok.error());
    UniqueFd fd(::open(out.m_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return std::unexpected(systemError("open " + out.m_path.string(), errno));
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK)
        return std::unexpected(Error{Errc::EngineAlreadyRunning, "another engine holds " + out.m_path.string()});
      return std::unexpected(systemError("flock " + out.m_path.string(), errno));
    }
    // The previous holder may have removed the directory between our open and our lock.
    struct stat held {}, now {};
    if (::fstat(fd.get(), &held) == 0 && ::lstat(out.m_path.c_str(), &now) == 0 && held.st_ino == now.st_ino &&
        held.st_dev == now.st_dev) {
      out.m_fd = std::move(fd);
      return out;
    }
  }
  return std::unexpected(Error{Errc::SystemError, "runtime directory " + out.m_path.string() + " keeps changing under us"});
}

NamespaceDir::~NamespaceDir() {
  if (!m_fd) return;
  ::unlink(socketPath().c_str());
  ::rmdir(m_path.c_str());  // fails harmlessly if someone put other files there
}

}  // namespace ipcsync
