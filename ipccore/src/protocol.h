// The rendezvous protocol between a client and the engine (private to ipccore).
//
// SOCK_SEQPACKET over a Unix socket: one struct per message, descriptors as SCM_RIGHTS. Every
// message starts with the same 12-byte MessageHead in every version, so any engine can read a
// newer client's Hello far enough to refuse it with a Refusal any client can read.
// See docs/design/rendezvous.md.
#pragma once

#include <cstdint>

#include "ipcsync/ipccore/geometry.h"
#include "ipcsync/ipccore/process_record.h"

namespace ipcsync::protocol {

inline constexpr std::uint32_t kMagic = 0x49505352;  // "IPSR"
inline constexpr std::uint32_t kVersion = 1;

enum class Type : std::uint32_t { Hello = 1, Welcome = 2, Refusal = 3, Ping = 4, Pong = 5, Bye = 6 };

struct MessageHead {
  std::uint32_t magic = kMagic;
  std::uint32_t version = kVersion;
  Type type{};
};

struct Hello {
  MessageHead head{kMagic, kVersion, Type::Hello};
  std::uint32_t flags = 0;
  char name[kNameCapacity] = {};
};

// Sent with four descriptors, in this order: control segment, block, engine-to-client eventfd,
// client-to-engine eventfd.
inline constexpr int kWelcomeFds = 4;
struct Welcome {
  MessageHead head{kMagic, kVersion, Type::Welcome};
  std::uint32_t slot = 0;
  std::uint64_t generation = 0;
  BlockGeometry geometry{};
  std::int32_t enginePid = 0;
  std::uint32_t capacity = 0;
};

struct Refusal {
  MessageHead head{kMagic, kVersion, Type::Refusal};
  std::uint32_t code = 0;  // an Errc
  char detail[256] = {};
};

struct Ping {
  MessageHead head{kMagic, kVersion, Type::Ping};
  std::uint32_t reserved = 0;
  std::uint64_t token = 0;
};

}  // namespace ipcsync::protocol
