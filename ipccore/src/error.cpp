#include "ipcsync/ipccore/error.h"

#include <cstring>

namespace ipcsync {

std::string_view describe(Errc code) noexcept {
  switch (code) {
    case Errc::SystemError: return "system call failed";
    case Errc::InvalidArgument: return "invalid argument";
    case Errc::EngineNotRunning: return "engine not running";
    case Errc::EngineAlreadyRunning: return "engine already running";
    case Errc::EngineBusy: return "engine busy";
    case Errc::EngineGone: return "engine gone";
    case Errc::AccessDenied: return "access denied";
    case Errc::VersionMismatch: return "version mismatch";
    case Errc::NameTaken: return "name already registered";
    case Errc::RegistryFull: return "registry full";
    case Errc::ProtocolError: return "protocol error";
    case Errc::BadSegment: return "bad shared-memory segment";
    case Errc::OutOfMemory: return "out of memory in block";
    case Errc::TooLarge: return "request larger than an arena";
    case Errc::OutOfBounds: return "location out of bounds";
    case Errc::NotAllocated: return "offset not allocated";
    case Errc::DoubleFree: return "double free";
    case Errc::Corrupt: return "manager metadata corrupt";
    case Errc::LockTimeout: return "manager lock timeout";
    case Errc::NoSuchPeer: return "no such peer";
    case Errc::SessionRefused: return "session refused";
    case Errc::SessionClosed: return "session closed";
    case Errc::PeerGone: return "peer gone";
    case Errc::WouldBlock: return "would block";
    case Errc::Timeout: return "timed out";
    case Errc::Disconnected: return "disconnected by the engine";
  }
  return "unknown error";
}

std::string Error::message() const {
  std::string out(describe(code));
  if (!detail.empty()) {
    out += ": ";
    out += detail;
  }
  return out;
}

Error systemError(std::string_view what, int err) {
  std::string detail(what);
  detail += ": ";
  detail += std::strerror(err);
  return Error{Errc::SystemError, std::move(detail)};
}

}  // namespace ipcsync
