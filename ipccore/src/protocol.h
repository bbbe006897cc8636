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
inline constexpr std::uint32_t kVersion = 3;  // 2: hand-over of large messages; 3: topic caches

enum class Type : std::uint32_t {
  Hello = 1, Welcome = 2, Refusal = 3, Ping = 4, Pong = 5, Bye = 6,
  // Sessions (after registration). Engine-to-client messages also bump Channels::controlPosted,
  // so a client looks at its socket only when there is something to read.
  OpenSession = 10,    // client -> engine: open a session to a named peer
  SessionOffer = 11,   // engine -> peer: somebody wants a session with you
  SessionAnswer = 12,  // peer -> engine: accept or refuse
  SessionResult = 13,  // engine -> opener: opened, or why not
  CloseSession = 14,   // client -> engine
  SessionClosed = 15,  // engine -> client: the session ended (peer closed it or went away)
  Kicked = 16,         // engine -> client: disconnected for breaking the protocol (a Refusal body)
  // Hand-over of large messages: a sealed memfd travels beside the ring, with one descriptor.
  // It is sent before the Location that names it, so whoever pops the Location finds it.
  Handover = 17,         // client -> engine
  HandoverDeliver = 18,  // engine -> client
  // Topics: publish once, every subscriber receives. Answered with a SessionResult whose
  // session is the topic's channel; left with CloseSession on that channel.
  OpenTopic = 19,  // client -> engine
};

inline constexpr std::uint32_t kTopicPublish = 1;
inline constexpr std::uint32_t kTopicSubscribe = 2;

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
  std::uint64_t handoverThreshold = 0;  // loans of at least this many bytes are handed over
};

struct Refusal {
  MessageHead head{kMagic, kVersion, Type::Refusal};
  std::uint32_t code = 0;  // an Errc
  char detail[256] = {};
};

struct OpenSession {
  MessageHead head{kMagic, kVersion, Type::OpenSession};
  std::uint32_t token = 0;  // echoed in the SessionResult
  char peer[kNameCapacity] = {};
};

struct OpenTopic {
  MessageHead head{kMagic, kVersion, Type::OpenTopic};
  std::uint32_t token = 0;
  std::uint32_t role = 0;  // kTopicPublish or kTopicSubscribe
  char topic[kNameCapacity] = {};
  std::uint32_t cacheDepth = 0;  // publishers: keep the last N messages for late subscribers
  std::uint32_t reserved = 0;
};

struct SessionOffer {
  MessageHead head{kMagic, kVersion, Type::SessionOffer};
  std::uint32_t session = 0;
  char from[kNameCapacity] = {};
};

struct SessionAnswer {
  MessageHead head{kMagic, kVersion, Type::SessionAnswer};
  std::uint32_t session = 0;
  std::uint32_t accept = 0;
};

struct SessionResult {
  MessageHead head{kMagic, kVersion, Type::SessionResult};
  std::uint32_t token = 0;
  std::uint32_t session = 0;  // valid when code == 0
  std::uint32_t code = 0;     // 0, or an Errc
  char detail[160] = {};
};

struct SessionEvent {  // CloseSession and SessionClosed
  MessageHead head{kMagic, kVersion, Type::CloseSession};
  std::uint32_t session = 0;
  std::uint32_t code = 0;  // SessionClosed: the Errc that says why (SessionClosed or PeerGone)
};

struct Handover {  // Handover and HandoverDeliver, with the memfd as SCM_RIGHTS
  MessageHead head{kMagic, kVersion, Type::Handover};
  std::uint32_t id = 0;  // the Location's `arena`
  std::uint64_t length = 0;
};

struct Ping {
  MessageHead head{kMagic, kVersion, Type::Ping};
  std::uint32_t reserved = 0;
  std::uint64_t token = 0;
};

}  // namespace ipcsync::protocol
