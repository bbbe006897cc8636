// The engine's private state and its parts (private to ipccore): registration and the event loop
// (engine.cpp), sessions (engine_sessions.cpp) and forwarding (engine_forwarding.cpp).
#pragma once

#include <sys/epoll.h>
#include <sys/types.h>
#include <unistd.h>

#include <bitset>
#include <chrono>
#include <deque>
#include <span>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "ipcsync/ipccore/admin_segment.h"
#include "ipcsync/ipccore/engine.h"
#include "ipcsync/ipccore/process_memory.h"
#include "namespace_dir.h"
#include "protocol.h"

namespace ipcsync {

// epoll tags: the kind in the high 32 bits, an index (fd or slot) in the low.
enum class Tag : std::uint32_t { Listen = 1, Stop, Timer, Pending, Client, Doorbell, Pidfd };
std::uint64_t tag(Tag t, std::uint32_t index);
std::uint64_t realtimeNs();

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

struct Registered {
  UniqueFd socket;
  std::unique_ptr<ProcessMemory> memory;
  UniqueFd toClient;  // eventfd the engine signals when it posts to the client
  UniqueFd toEngine;  // eventfd the client signals when it posts to the engine
  UniqueFd pidfd;     // readable when the registered process ends (may be invalid on old kernels)
  ProcessRecord record;
  // Runs of this client's block the engine has copied out but could not free yet because the
  // owner held its manager lock; freed at the next round.
  std::vector<Location> deferredFrees;
  std::uint64_t allocationsAtLastTick = 0;  // to see when the block went idle
  std::uint64_t inboundHeadSeen = 0;        // the client's head of its inbound ring, as last read
  std::uint64_t inboundStaged = 0;          // copies staged in its inbound ring, not yet published
  // Topic fan-out of the message at the head of the outbound ring: subscribers already served.
  std::set<std::uint64_t> fanoutDone;
  // Sealed memory objects the client handed over, by the id its Locations will name, with the
  // length checked against the object; at most kRingCapacity outstanding.
  struct HandedOver {
    UniqueFd fd;
    std::uint64_t length = 0;
  };
  std::unordered_map<std::uint32_t, HandedOver> handovers;
  // The process has gone (or said goodbye) but its outbound ring still holds messages: they are
  // delivered first, until `closingDeadline`, and then the slot is reclaimed.
  bool closing = false;
  // Control messages that did not fit the socket buffer, sent in order when it drains (EPOLLOUT);
  // beyond kOutboxLimit the client is taken as not reading and disconnected at the next tick.
  std::deque<std::vector<std::byte>> outbox;
  bool notReading = false;
  std::chrono::steady_clock::time_point closingDeadline{};
  std::string closingReason;
};

struct Pending {
  UniqueFd socket;
  std::chrono::steady_clock::time_point deadline;
};

// A session between two registered processes: `ends[0]` opened it, `ends[1]` accepted.
struct SessionEntry {
  std::uint32_t slot[2];
  std::uint64_t generation[2];
  bool open = false;        // false while the offer waits for an answer
  std::uint32_t token = 0;  // the opener's token, echoed in the result
};

// A process in a topic, and the key that names it across slot reuse.
struct TopicMember {
  std::uint32_t slot;
  std::uint64_t generation;
  // A subscriber whose block or ring filled while the cache was replayed to it: the serial of the
  // next cached message it gets. Live messages wait behind the replay (the cache comes first).
  std::uint64_t replayNext = 0;  // 0: nothing pending
};
inline std::uint64_t memberKey(std::uint32_t slot, std::uint64_t generation) { return (generation << 16) | slot; }

struct CachedMessage {
  std::uint64_t serial;  // per topic, increasing: where a paused replay resumes
  Allocation run;        // in the engine's own block
  Location location;     // as the publisher posted it (channel, sequence, length)
  std::uint64_t storedAtNs;
};

struct TopicEntry {
  std::string name;
  std::uint32_t cacheDepth = 0;           // the last N messages are kept for late subscribers
  std::deque<CachedMessage> cache;
  std::uint64_t nextSerial = 1;
  std::uint64_t cacheHits = 0;            // cached messages handed to subscribers
  std::uint32_t cacheSlot = 0xffffffffU;  // its row in the admin segment's cache table
  std::set<std::uint64_t> publishers;                // memberKey
  std::map<std::uint64_t, TopicMember> subscribers;  // by memberKey
};

class Engine::Impl {
 public:
  Impl(EngineConfig config, LogSink log) : m_config(std::move(config)), m_log(std::move(log)) {}

  std::expected<void, Error> start();
  std::expected<void, Error> run();
  void requestStop() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(m_stopFd.get(), &one, sizeof one);
  }
  void log(LogLevel level, const std::string& text) const {
    if (m_log) m_log(level, text);
  }

  EngineConfig m_config;
  LogSink m_log;
  std::optional<NamespaceDir> m_dir;
  std::filesystem::path m_socketPath;
  std::unique_ptr<AdminSegment> m_admin;
  UniqueFd m_listen, m_epoll, m_stopFd, m_timerFd;
  std::map<int, Pending> m_pending;
  std::vector<std::optional<Registered>> m_slots;
  std::vector<std::uint64_t> m_generations;
  std::uint32_t m_registered = 0;
  std::unordered_map<std::uint32_t, SessionEntry> m_sessions;
  std::uint32_t m_nextSession = 1;
  std::uint32_t m_nextHandover = 1;
  std::unordered_map<std::uint32_t, TopicEntry> m_topics;  // by channel id (shared with sessions)
  std::unordered_map<std::string, std::uint32_t> m_topicByName;
  std::unique_ptr<ProcessMemory> m_ownBlock;  // the engine's block: cached topic messages
  std::bitset<layout::kCacheRows> m_cacheRowsShown;  // rows of the admin cache table in use
  bool m_listenPaused = false;  // out of descriptors: not accepting until the next tick

 private:
  enum class Dispatch { Continue, Stop };

  // engine.cpp: registration, the event loop, reclaiming.
  std::expected<void, Error> watch(int fd, Tag t, std::uint32_t index, std::uint32_t events = EPOLLIN);
  Dispatch dispatchEvents(int timeoutMs);
  void acceptAll();
  void onHello(int fd);
  void refuse(int fd, Errc code, const std::string& detail);
  std::expected<void, Error> registerProcess(UniqueFd& socket, const PeerCredentials& peer,
                                             const protocol::Hello& hello, std::uint32_t slot);
  void onClient(std::uint32_t slot);
  void flushOutbox(std::uint32_t slot);
  void reclaim(std::uint32_t slot, const std::string& reason);
  // The process ended: deliver what it already sent, then reclaim.
  void finish(std::uint32_t slot, const std::string& reason);
  void tick();
  void setSleeping(bool sleeping);
  // Sends one control message to the client in `slot` and bumps its controlPosted counter.
  // Sends a control message to the client, or queues it while its socket buffer is full.
  // Hand-overs pass mustArrive = false: instead of queueing (they carry a descriptor) they stay in
  // the sender's ring and are retried; false is returned then.
  bool post(std::uint32_t slot, std::span<const std::byte> message, std::span<const int> fds = {},
            bool mustArrive = true);
  void onHandover(std::uint32_t slot, const protocol::Handover& m, std::vector<UniqueFd>& fds);
  void ring(int eventFd);

  // engine_sessions.cpp
  void onOpenSession(std::uint32_t slot, const protocol::OpenSession& m);
  void onSessionAnswer(std::uint32_t slot, const protocol::SessionAnswer& m);
  void onCloseSession(std::uint32_t slot, const protocol::SessionEvent& m);
  void closeSessionsOf(std::uint32_t slot);
  std::optional<std::uint32_t> findByName(std::string_view name) const;
  bool live(std::uint32_t slot, std::uint64_t generation) const;

  // engine_topics.cpp
  void onOpenTopic(std::uint32_t slot, const protocol::OpenTopic& m);
  // Removes the slot from one topic (channel) or, with nullopt, from all; true if it was in it.
  bool leaveTopics(std::uint32_t slot, std::optional<std::uint32_t> channel);
  std::uint32_t newChannel();

  // engine_forwarding.cpp
  bool forwardAll();
  // Moves up to a batch of messages out of the slot's outbound ring. Returns true if any moved.
  bool forwardFrom(std::uint32_t slot);
  enum class Step { Moved, Blocked, Kicked };
  // Who gets `loc`: the other end of its session, or the topic's subscribers not yet served,
  // into m_receivers. False (after kicking the sender) when the sender may not post there.
  bool receiversOf(std::uint32_t slot, const Location& loc);
  std::vector<std::uint32_t> m_receivers;  // reused: no allocation per message
  // Manager locks held across one forwardFrom batch (BuddyManager::Hold): the sender's, and the
  // receiver's while consecutive messages go to one receiver. Dropped at the end of the batch and
  // before any slot is reclaimed (a Hold must not outlive its mapping).
  struct BatchLocks {
    std::optional<BuddyManager::Hold> source, target;
    std::uint32_t targetSlot = ~0u;
    void drop() {
      target.reset();
      source.reset();
      targetSlot = ~0u;
    }
  } m_locks;
  // Passes a handed-over memory object on to the receivers of `loc`'s channel.
  Step handOver(std::uint32_t slot, const Location& loc);
  // Copies the run of `src` that `loc` names into the receiver in `dstSlot` and stages its
  // Location in the receiver's inbound ring; publishStaged() makes it visible.
  Step copyInto(std::uint32_t dstSlot, std::span<const std::byte> data, const Location& loc);
  // Publishes what copyInto staged, one store per receiver, and rings each sleeping receiver once.
  // Called at the end of every batch and before anything else pushes to an inbound ring.
  void publishStaged();
  std::vector<std::uint32_t> m_stagedSlots;  // receivers with staged copies
  // Counts a message taken from the sender's ring, for the sender's record and the loop's pacing.
  void noteForwarded(std::uint32_t slot, std::uint64_t bytes);
  // Messages (and their bytes) taken from senders' rings, ever, and the slot that sent the last.
  std::uint64_t m_forwarded = 0, m_forwardedBytes = 0;
  std::uint32_t m_lastSender = ~0u;
  // Topic caches (engine_topics.cpp): keep a copy in the engine's own block; replay to a newcomer.
  void cacheMessage(TopicEntry& topic, std::span<const std::byte> data, const Location& loc);
  // Hands the subscriber the cached messages from member.replayNext on; false if its block or
  // ring filled first (member.replayNext then says where to resume).
  bool replayCache(TopicEntry& topic, TopicMember& member);
  // Resumes paused replays; called every round of the forwarding loop while any is pending.
  bool resumeReplays();
  std::uint32_t m_pausedReplays = 0;
  void publishCaches();
  // Disconnects a client that broke the protocol, telling it why.
  void kick(std::uint32_t slot, Errc code, const std::string& detail);

  friend class Engine;
};

}  // namespace ipcsync
