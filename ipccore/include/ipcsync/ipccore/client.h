// Client: a process's registration with the engine of a namespace, and its own block.
//
// connect() performs the rendezvous: it finds the engine's socket through the namespace's admin
// segment (or an explicit runtime directory), introduces itself by name, and receives its control
// segment, block and notification handles as descriptors. From then on the client allocates and
// frees sub-blocks of its own block through its buddy manager without any system call; the
// engine is the only other party that maps that block.
//
// The connection to the engine doubles as a liveness channel both ways: when the client ends,
// however it ends, the engine reclaims everything it held; when the engine ends, engineFd()
// becomes readable and every call that needs the engine fails with EngineGone.
//
// Messages travel on sessions: openSession(peer) asks the engine to introduce us, the peer's
// policy accepts or refuses; then loan → fill → send(session, loan) on one side, receive →
// read → release on the other. The engine copies each message from the sender's block into the
// receiver's; order per session is FIFO; nothing is dropped while both ends live.
//
// Thread safety: allocate, free, bytes, stats, loan and abandon may be called from any thread at
// once. The messaging calls (openSession, closeSession, send, trySend, receive, tryReceive,
// release, ping) use single-producer/single-consumer rings: call them from one thread at a time.
// Pinned: copy and move are deleted.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <sys/types.h>

#include "ipcsync/ipccore/buddy_manager.h"
#include "ipcsync/ipccore/error.h"
#include "ipcsync/ipccore/geometry.h"
#include "ipcsync/ipccore/message.h"
#include "ipcsync/ipccore/process_record.h"
#include "ipcsync/ipccore/unique_fd.h"

namespace ipcsync {

struct ConnectOptions {
  std::string ns = "default";
  std::string name;  // 1..47 printable characters, unique in the namespace
  // How long connect() may wait in all, including for a free registry slot and for a busy
  // engine to answer. Errors after it: RegistryFull, EngineBusy.
  std::chrono::milliseconds timeout{2000};
  // Empty: find the socket through the admin segment. Otherwise <runtimeDir>/<ns>/engine.sock.
  std::filesystem::path runtimeDir;
  // The user the engine must run as. Unset: our own user or root. The admin segment's owner and
  // the socket's peer (SO_PEERCRED) are checked against it, so another local user cannot pose
  // as the engine by creating the namespace's segment first.
  std::optional<uid_t> engineUid;
  // How long allocate/free wait for the manager lock before reporting LockTimeout.
  std::chrono::milliseconds lockTimeout{1000};
  // How long receive/send poll before they sleep on the eventfd. While polling, a message costs
  // no system call; polling yields the CPU between looks.
  std::chrono::microseconds spin{20};
  // Hand-over of large messages (loans of at least the engine's threshold): how many memory
  // objects per size class a helper thread keeps prepared (created, zero-filled, mapped with
  // every page present), so that loan() takes one without a system call and filling it takes no
  // page fault; and how many bytes of them it may keep at most. The same thread unmaps what
  // release() gives back. 0: no helper thread; loan() prepares and release() unmaps on the
  // calling thread. docs/design/handover.md.
  std::uint32_t handoverPool = 2;
  std::uint64_t handoverPoolBytes = std::uint64_t{64} << 20;
  // Soft cap on the bytes of copied messages sent but not yet taken by the engine. While more
  // are in flight and the engine keeps taking them, loan() waits (polling, no system call), so
  // the runs the engine copies from, and the ones it copies into, are reused while still in
  // cache; when the engine makes no progress for a millisecond (its receiver is full, or it is
  // not scheduled) loan() goes ahead, so the cap never fails a loan or adds a deadlock. Loans
  // with a zero timeout and hand-overs ignore it. 0: no cap. docs/design/notification.md.
  std::uint64_t maxBytesInFlight = std::uint64_t{1} << 20;
};

// Decides whether to accept a session that the named process wants to open. Default: accept.
using SessionPolicy = std::function<bool(std::string_view from)>;

class ProcessMemory;
class HandoverPool;

class Client {
 public:
  // Registers with the engine. Errors, each with a message naming namespace, pid or path:
  // EngineNotRunning, EngineBusy, AccessDenied, VersionMismatch, NameTaken, RegistryFull,
  // InvalidArgument (bad name), EngineGone (the engine died during the rendezvous), BadSegment.
  static std::expected<std::unique_ptr<Client>, Error> connect(const ConnectOptions& options);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  // Deregisters (tells the engine, which then releases the block) and closes every descriptor.
  ~Client();

  // A sub-block of the own block of at least `bytes`. OutOfMemory and TooLarge name the sizes;
  // EngineGone if the engine died holding the manager lock.
  std::expected<Allocation, Error> allocate(std::uint64_t bytes);
  // Returns a sub-block. OutOfBounds, NotAllocated, DoubleFree name the location.
  std::expected<void, Error> free(const Allocation& allocation);
  // The bytes of an allocation in the own block; empty if it lies outside the block.
  std::span<std::byte> bytes(const Allocation& allocation) const noexcept;
  // Returns the runs kept ready for loans, then empty arenas beyond the minimum to the system;
  // how many arenas.
  std::expected<std::uint32_t, Error> trim();
  std::expected<ManagerStats, Error> stats() const;

  // --- Communications -----------------------------------------------------------------------

  // Opens a session to the registered process `peer`, waiting for its answer. NoSuchPeer,
  // SessionRefused, PeerGone, Timeout, EngineGone.
  std::expected<SessionId, Error> openSession(std::string_view peer,
                                              std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
  // Ends a session (the peer learns it: SessionClosed; messages already sent still arrive), or
  // leaves a topic.
  std::expected<void, Error> closeSession(SessionId session);
  // Topics: advertise(topic) to publish on it with send(); subscribe(topic) to receive every
  // message published on it from then on (the engine copies each once per subscriber). Both
  // return the topic's channel, which received messages carry as their session(). A publisher may
  // ask the engine to keep the topic's last `cacheDepth` messages (at most 1024) in the engine's
  // own block: a subscriber that arrives later, or comes back after a restart, gets them at once.
  std::expected<SessionId, Error> advertise(std::string_view topic, std::uint32_t cacheDepth = 0,
                                            std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
  std::expected<SessionId, Error> subscribe(std::string_view topic,
                                            std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
  // Who decides on sessions that others open to us. Called from within receive/tryReceive/send.
  void setSessionPolicy(SessionPolicy policy);
  // The peer of an open session, or nothing once it closed.
  std::optional<std::string> peerOf(SessionId session) const;

  // A sub-block of at least `bytes` of the own block to fill and send. Loans leave the larger of
  // one arena and an eighth of the block (at most half) free for incoming messages, so that two
  // clients streaming to each other never fill both blocks with outbound messages. When the
  // block is that full of messages the engine has not copied out yet, waits up to `timeout` for
  // the engine to free some. OutOfMemory (with the sizes) after that, TooLarge above one arena,
  // InvalidArgument for 0. While earlier messages still wait for the engine, loans of up to
  // 512 B come from runs allocated ahead in batches of 2 KiB (the loan cache; they count as in
  // use until loaned, and the engine gives them back once the client stops allocating).
  std::expected<Loan, Error> loan(std::uint64_t bytes, std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // Gives back a loan that will not be sent.
  void abandon(Loan&& loan);
  // Hands the loan to the engine for delivery on `session`, waiting up to `timeout` while the
  // outbound ring is full. On success the loan is consumed; on error it stays with the caller.
  // SessionClosed or PeerGone (the session ended), Timeout, EngineGone, Disconnected.
  std::expected<void, Error> send(SessionId session, Loan& loan,
                                  std::chrono::milliseconds timeout = std::chrono::milliseconds(5000),
                                  std::uint32_t correlation = 0);
  // As send, but WouldBlock instead of waiting.
  std::expected<void, Error> trySend(SessionId session, Loan& loan, std::uint32_t correlation = 0);
  // The next message, waiting up to `timeout`. Timeout, EngineGone, Disconnected.
  std::expected<Message, Error> receive(std::chrono::milliseconds timeout);

  // Request/reply on a session: sends the loan with a fresh correlation id and waits up to
  // `timeout` for the message the peer sends back with reply(). Messages that arrive meanwhile
  // are kept, in order, for the next receive() or tryReceive().
  std::expected<Message, Error> request(SessionId session, Loan& loan,
                                        std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  // Answers `to` (a message received with a correlation id) on the session it came from.
  std::expected<void, Error> reply(const Message& to, Loan& loan,
                                   std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  // The next message if one waits, else an empty (invalid) Message. Never blocks. After an empty
  // result, pollFd() becomes readable when something arrives.
  std::expected<Message, Error> tryReceive();
  // Returns a received message's memory to the own block.
  void release(Message&& message);
  // Readable when messages or engine events wait (an epoll descriptor: add it to any event loop,
  // QSocketNotifier included), then call tryReceive() until it comes back empty.
  int pollFd() const noexcept;

  // A round trip to the engine. EngineGone if it has gone, EngineBusy if it did not answer in time.
  std::expected<void, Error> ping(std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
  // False once the engine has closed its end. Never blocks.
  bool engineAlive() const noexcept;
  // Readable (POLLIN/POLLHUP) when the engine sends something or goes away: add it to an event loop.
  int engineFd() const noexcept;

  const std::string& name() const noexcept { return m_name; }
  const std::string& ns() const noexcept { return m_ns; }
  std::uint32_t slot() const noexcept { return m_slot; }
  std::uint64_t generation() const noexcept { return m_generation; }
  std::int32_t enginePid() const noexcept { return m_enginePid; }
  const BlockGeometry& geometry() const noexcept { return m_geometry; }

 private:
  std::expected<Allocation, Error> allocate(std::uint64_t bytes, std::uint64_t keepFree);
  std::uint64_t inboundReserve() const noexcept;
  Client() = default;
  Error managerError(Errc code, std::string detail) const;
  struct SessionState {
    std::string peer;
    std::uint64_t nextSequence = 1;
    Errc closed{};  // SessionClosed or PeerGone once ended
    bool open = true;
  };
  // Reads what the engine posted on the socket (session offers, results, closes, kicks) if its
  // counter says there is something. Returns the first fatal error (EngineGone, Disconnected).
  std::expected<void, Error> pumpControl(bool force = false);
  std::expected<void, Error> handleControl(std::span<const std::byte> message, std::vector<UniqueFd>& fds);
  std::expected<Loan, Error> handoverLoan(std::uint64_t bytes);
  // Bytes of copied messages in our outbound ring, not yet taken by the engine (reads the
  // engine's head); and an upper bound on them that reads only our own lines. Approximate while
  // another thread sends (the cap is soft); safe from any thread.
  std::uint64_t bytesInFlight() const noexcept;
  std::uint64_t inFlightBound() const noexcept;
  // Waits while `bytes` more would exceed maxBytesInFlight and the engine keeps taking messages.
  void waitForFlight(std::uint64_t bytes, std::chrono::milliseconds timeout);
  // Returns the runs release() put aside, under one lock; with `wait` false only if the engine
  // does not hold the lock at the moment. True when none is left.
  bool flushReleases(bool wait) noexcept;
  // The next message if one waits (held ones first), else an empty Message; never arms the doorbell.
  std::expected<Message, Error> takeMessage();
  // Waits for the engine's answer to request `token`: the channel, or the error it reported.
  std::expected<SessionId, Error> awaitResult(std::uint32_t token, std::chrono::steady_clock::time_point deadline,
                                              const std::string& what);
  std::expected<SessionId, Error> openTopic(std::string_view topic, std::uint32_t role, std::uint32_t cacheDepth,
                                            std::chrono::milliseconds timeout);
  std::expected<void, Error> sendHandover(SessionState& session, SessionId id, Loan& loan, std::uint32_t correlation);
  std::expected<Message, Error> openHandover(const Location& l);
  // Sleeps until the eventfd or the socket is readable, or the deadline. The caller has armed
  // the flag that makes the engine ring, and re-checked its condition after arming.
  void sleepUntil(std::chrono::steady_clock::time_point deadline);
  std::expected<void, Error> usable() const;
  Error goneError() const;

  std::string m_name;
  std::string m_ns;
  std::uint32_t m_slot = 0;
  std::uint64_t m_generation = 0;
  std::int32_t m_enginePid = 0;
  BlockGeometry m_geometry{};
  UniqueFd m_socket;
  UniqueFd m_toClient;  // engine -> client notifications (used by the communications phase)
  UniqueFd m_toEngine;  // client -> engine notifications
  UniqueFd m_pollFd;    // epoll over m_toClient and m_socket
  std::unique_ptr<ProcessMemory> m_memory;
  std::chrono::microseconds m_spin{20};
  std::uint32_t m_controlSeen = 0;
  std::uint64_t m_outboundHeadSeen = 0;  // the engine's head of our outbound ring, as last read
  std::uint64_t m_inboundTailSeen = 0;   // the engine's tail of our inbound ring, as last read
  std::uint32_t m_nextToken = 1;
  SessionPolicy m_policy;
  std::unordered_map<SessionId, SessionState> m_sessions;
  std::map<std::uint32_t, std::pair<SessionId, Error>> m_results;  // by token: session, or error code
  std::optional<Error> m_fatal;  // set once the engine went away or disconnected us
  std::uint64_t m_handoverThreshold = 0;
  std::uint32_t m_nextHandover = 1;
  std::unordered_map<std::uint32_t, UniqueFd> m_handovers;  // delivered memfds by id, until popped
  std::unique_ptr<HandoverPool> m_handoverPool;  // prepared objects to send, mappings to unmap
  std::deque<Message> m_held;          // received while a request() waited for its reply
  // In flight: the bytes sent so far, and for each ring position the total before its message.
  // Written by the sending thread only; atomic because loan() may run on any thread.
  std::uint64_t m_maxInFlight = 0;
  std::atomic<std::uint64_t> m_sentBytes{0};
  std::unique_ptr<std::atomic<std::uint64_t>[]> m_sentBefore;  // kRingCapacity entries
  // Released messages whose runs are not returned to the manager yet (returned in batches).
  struct PendingRelease {
    std::uint32_t arena;
    std::uint64_t offset;
  };
  std::vector<PendingRelease> m_releases;  // messaging thread only, as release()
  std::uint64_t m_releaseBytes = 0;
  std::uint32_t m_nextCorrelation = 1;
};

}  // namespace ipcsync
