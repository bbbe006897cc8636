// The engine's runtime directory for one namespace, held under an exclusive flock (private).
//
// <base>/<ns>/ holds the rendezvous socket. The engine takes flock(LOCK_EX) on the directory
// itself: the kernel drops the lock when the engine dies, however it dies, so the lock, not a pid
// file, tells a live engine from a dead one. On a clean stop the engine removes the directory
// while still holding the lock.
#pragma once

#include <expected>
#include <filesystem>
#include <string>

#include "ipcsync/ipccore/error.h"
#include "ipcsync/ipccore/unique_fd.h"

namespace ipcsync {

class NamespaceDir {
 public:
  // Creates (or adopts) <base>/<ns> with `mode` and locks it. EngineAlreadyRunning when another
  // process holds the lock; SystemError or InvalidArgument naming the path otherwise.
  static std::expected<NamespaceDir, Error> lock(const std::filesystem::path& base, const std::string& ns, mode_t mode);

  NamespaceDir(NamespaceDir&&) noexcept = default;
  NamespaceDir& operator=(NamespaceDir&&) noexcept = default;
  ~NamespaceDir();

  const std::filesystem::path& path() const noexcept { return m_path; }
  std::filesystem::path socketPath() const { return m_path / "engine.sock"; }

 private:
  NamespaceDir() = default;
  std::filesystem::path m_path;
  UniqueFd m_fd;
};

}  // namespace ipcsync
