// Loan and Message: the two halves of the communications phase, as a client sees them.
//
// A Loan is a sub-block of the sender's own block, handed out by Client::loan for the sender to
// fill and then give to Client::send, which moves it to the engine. A loan of at least the
// engine's hand-over threshold is instead a memory object of its own, which send() unmaps, seals
// against writing and hands over: the receiver maps the very same pages, read-only. A Message is a received
// payload in the receiver's own block; it stays valid until Client::release. Both are move-only
// handles; neither frees anything by itself (a Loan that is never sent should be given back with
// Client::abandon, a Message with Client::release).
#pragma once

#include <cstdint>
#include <span>
#include <utility>

#include "ipcsync/ipccore/buddy_manager.h"
#include "ipcsync/ipccore/location.h"

namespace ipcsync {

using SessionId = std::uint32_t;

class Loan {
 public:
  Loan() = default;
  Loan(Loan&& o) noexcept
      : m_run(o.m_run), m_bytes(std::exchange(o.m_bytes, {})), m_memfd(std::exchange(o.m_memfd, -1)), m_mapped(o.m_mapped) {}
  Loan& operator=(Loan&& o) noexcept {
    m_run = o.m_run;
    m_bytes = std::exchange(o.m_bytes, {});
    m_memfd = std::exchange(o.m_memfd, -1);
    m_mapped = o.m_mapped;
    return *this;
  }
  Loan(const Loan&) = delete;
  Loan& operator=(const Loan&) = delete;

  // Exactly the requested bytes, writable until the loan is sent.
  std::span<std::byte> bytes() const noexcept { return m_bytes; }
  bool valid() const noexcept { return !m_bytes.empty(); }
  // True when this loan will be handed over rather than copied.
  bool handover() const noexcept { return m_memfd >= 0; }

 private:
  friend class Client;
  Loan(const Allocation& run, std::span<std::byte> bytes) : m_run(run), m_bytes(bytes) {}
  Loan(int memfd, std::span<std::byte> bytes, std::uint64_t mapped) : m_bytes(bytes), m_memfd(memfd), m_mapped(mapped) {}
  Allocation m_run{};
  std::span<std::byte> m_bytes;
  int m_memfd = -1;           // hand-over loans: the memory object, owned; m_bytes is the start of its mapping
  std::uint64_t m_mapped = 0;  // hand-over loans: the size of the object and of its mapping (>= m_bytes)
};

class Message {
 public:
  Message() = default;
  Message(Message&& o) noexcept : m_location(o.m_location), m_bytes(std::exchange(o.m_bytes, {})) {}
  Message& operator=(Message&& o) noexcept {
    m_location = o.m_location;
    m_bytes = std::exchange(o.m_bytes, {});
    return *this;
  }
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

  std::span<const std::byte> bytes() const noexcept { return m_bytes; }
  SessionId session() const noexcept { return m_location.channel; }
  std::uint64_t sequence() const noexcept { return m_location.sequence; }    // 1, 2, ... per session and sender
  std::uint32_t correlation() const noexcept { return m_location.correlation; }
  bool valid() const noexcept { return !m_bytes.empty(); }

 private:
  friend class Client;
  Message(const Location& l, std::span<const std::byte> bytes) : m_location(l), m_bytes(bytes) {}
  Location m_location{};
  std::span<const std::byte> m_bytes;
};

}  // namespace ipcsync
