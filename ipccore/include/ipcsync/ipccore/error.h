// Errors of the IPC core.
//
// Every operation a user can make fail returns std::expected<T, Error>. `Errc` says what kind of
// failure it was (tests and callers branch on it); `Error::detail` says where and what, in words a
// person can act on (a namespace, a pid, a path, a size). Allocation paths that must not allocate
// return the bare `Errc` instead. No function in ipccore throws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ipcsync {

enum class Errc : std::uint8_t {
  // System and environment.
  SystemError,        // a system call failed; detail names it and errno's text
  InvalidArgument,    // a parameter is out of its documented range
  // Rendezvous.
  EngineNotRunning,   // no engine serves the namespace
  EngineAlreadyRunning,  // a live engine already serves the namespace
  EngineBusy,         // the engine did not answer in time
  EngineGone,         // the engine went away while we were registered
  AccessDenied,       // the engine's access list does not admit our uid/gid
  VersionMismatch,    // the engine speaks another protocol or layout version
  NameTaken,          // another registered process uses the requested name
  RegistryFull,       // every registry slot is in use (after waiting)
  ProtocolError,      // a peer sent a malformed message
  // Shared memory.
  BadSegment,         // a segment's {magic, layoutVersion, size} header does not match
  // Memory manager.
  OutOfMemory,        // the block has no free run of the requested size, even after growing
  TooLarge,           // the request is larger than one arena: it can never succeed
  OutOfBounds,        // an (arena, offset) outside the block
  NotAllocated,       // an offset that is not the start of an allocated sub-block (foreign)
  DoubleFree,         // a sub-block that is already free
  Corrupt,            // the manager's shared metadata is inconsistent
  LockTimeout,        // the manager lock stayed held past the deadline by a live party
  // Communications.
  NoSuchPeer,         // no registered process has that name
  SessionRefused,     // the peer refused the session
  SessionClosed,      // the session was closed (by us or the peer)
  PeerGone,           // the peer ended; what it had not received is gone with it
  WouldBlock,         // trySend: the outbound ring is full right now
  Timeout,            // nothing happened within the caller's timeout
  Disconnected,       // the engine disconnected us for breaking the protocol; detail says how
};

// A short, stable name for `code` ("out of memory"); never empty.
std::string_view describe(Errc code) noexcept;

struct Error {
  Errc code;
  std::string detail;  // where and what; may be empty when `describe(code)` says it all

  // "<describe(code)>: <detail>", suitable for a log line or stderr.
  std::string message() const;
};

// Builds an Error whose detail is "<what>: <strerror(err)>".
Error systemError(std::string_view what, int err);

}  // namespace ipcsync
