// Unix-socket helpers for the rendezvous protocol (private to ipccore): one message per call,
// descriptors passed as SCM_RIGHTS and received close-on-exec.
#pragma once

#include <chrono>
#include <cstddef>
#include <expected>
#include <span>
#include <vector>

#include "ipcsync/ipccore/error.h"
#include "ipcsync/ipccore/unique_fd.h"

namespace ipcsync::io {

// Sends `bytes` and `fds` (borrowed) as one message. WouldBlock when a non-blocking socket's
// buffer is full; a peer that went away surfaces as SystemError(EPIPE/ECONNRESET); MSG_NOSIGNAL
// keeps SIGPIPE away.
std::expected<void, Error> sendMessage(int socket, std::span<const std::byte> bytes, std::span<const int> fds = {});

struct Received {
  std::size_t size = 0;      // 0 means the peer closed the connection
  std::vector<UniqueFd> fds;
  bool truncated = false;    // the message or its descriptors did not fit
  bool wouldBlock = false;   // nothing to read yet (size is 0 then, but the peer is there)
};
// Receives one message into `buffer` without blocking.
std::expected<Received, Error> receiveMessage(int socket, std::span<std::byte> buffer);

// Waits until `fd` is readable or hung up; false on timeout. Retries on EINTR.
bool waitReadable(int fd, std::chrono::milliseconds timeout);

template <typename T>
std::span<const std::byte> asBytes(const T& value) {
  return {reinterpret_cast<const std::byte*>(&value), sizeof(T)};
}

}  // namespace ipcsync::io
