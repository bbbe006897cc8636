// The communications half of Client: sessions, loans, send and receive.
#include <poll.h>
#include <sched.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "ipcsync/ipccore/client.h"
#include "ipcsync/ipccore/process_memory.h"
#include "handover_pool.h"
#include "protocol.h"
#include "cpu_relax.h"
#include "loan_cache.h"
#include "socket_io.h"

namespace ipcsync {
namespace {

using Clock = std::chrono::steady_clock;

// release() returns runs to the manager in batches of this many (or bytes), and waits for the
// lock only beyond the limits.
constexpr std::size_t kReleaseBatch = 32;
constexpr std::uint64_t kReleaseBatchBytes = 256 << 10;
constexpr std::size_t kReleaseLimit = 256;
constexpr std::uint64_t kReleaseLimitBytes = 1 << 20;

void ringDoorbell(int eventFd) {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(eventFd, &one, sizeof one);
}

}  // namespace

Error Client::goneError() const {
  return Error{Errc::EngineGone, "the engine (pid " + std::to_string(m_enginePid) + ") of namespace '" + m_ns +
                                     "' has gone; restart it and reconnect"};
}

std::expected<void, Error> Client::usable() const {
  if (m_fatal) return std::unexpected(*m_fatal);
  return {};
}

void Client::setSessionPolicy(SessionPolicy policy) { m_policy = std::move(policy); }

std::optional<std::string> Client::peerOf(SessionId session) const {
  auto it = m_sessions.find(session);
  if (it == m_sessions.end() || !it->second.open) return std::nullopt;
  return it->second.peer;
}

int Client::pollFd() const noexcept { return m_pollFd.get(); }

std::expected<void, Error> Client::pumpControl(bool force) {
  if (m_fatal) return std::unexpected(*m_fatal);
  const std::uint32_t posted = m_memory->channels().controlPosted.load(std::memory_order_acquire);
  if (!force && posted == m_controlSeen) return {};
  m_controlSeen = posted;
  for (;;) {
    alignas(8) std::byte buffer[512];
    auto got = io::receiveMessage(m_socket.get(), buffer);
    if (!got || (!got->wouldBlock && got->size == 0)) {
      m_fatal = goneError();
      return std::unexpected(*m_fatal);
    }
    if (got->wouldBlock) return {};
    if (auto ok = handleControl(std::span(buffer, got->size), got->fds); !ok) return ok;
  }
}

std::expected<void, Error> Client::handleControl(std::span<const std::byte> message, std::vector<UniqueFd>& fds) {
  protocol::MessageHead head{};
  if (message.size() < sizeof head) return {};
  std::memcpy(&head, message.data(), sizeof head);
  auto as = [&]<typename M>(M& m) {
    if (message.size() != sizeof m) return false;
    std::memcpy(&m, message.data(), sizeof m);
    return true;
  };
  switch (head.type) {
    case protocol::Type::SessionOffer: {
      protocol::SessionOffer offer;
      if (!as(offer)) return {};
      const std::string from(offer.from, ::strnlen(offer.from, sizeof offer.from));
      protocol::SessionAnswer answer;
      answer.session = offer.session;
      answer.accept = (!m_policy || m_policy(from)) ? 1 : 0;
      if (answer.accept) m_sessions[offer.session] = SessionState{from};
      (void)io::sendMessage(m_socket.get(), io::asBytes(answer));
      return {};
    }
    case protocol::Type::SessionResult: {
      protocol::SessionResult r;
      if (!as(r)) return {};
      r.detail[sizeof r.detail - 1] = '\0';
      m_results.emplace(r.token, std::pair{r.session, Error{static_cast<Errc>(r.code), r.detail}});
      return {};
    }
    case protocol::Type::SessionClosed: {
      protocol::SessionEvent e;
      if (!as(e)) return {};
      if (auto it = m_sessions.find(e.session); it != m_sessions.end()) {
        it->second.open = false;
        it->second.closed = static_cast<Errc>(e.code);
      }
      return {};
    }
    case protocol::Type::Kicked: {
      protocol::Refusal k;
      if (!as(k)) return {};
      k.detail[sizeof k.detail - 1] = '\0';
      m_fatal = Error{Errc::Disconnected, k.detail};
      return std::unexpected(*m_fatal);
    }
    case protocol::Type::HandoverDeliver: {
      protocol::Handover h;
      if (!as(h) || fds.size() != 1) return {};
      m_handovers[h.id] = std::move(fds[0]);  // claimed when its Location is popped
      return {};
    }
    case protocol::Type::Pong:
    default: return {};  // a late pong; nothing else is expected
  }
}

void Client::sleepUntil(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() < 0) return;
  epoll_event ev[2];
  // +1 ms: epoll rounds down, and waking a little late beats spinning on a zero timeout.
  const int n = ::epoll_wait(m_pollFd.get(), ev, 2, static_cast<int>(left.count()) + 1);
  for (int i = 0; i < n; ++i) {
    if (ev[i].data.fd == m_toClient.get()) {
      std::uint64_t count;
      [[maybe_unused]] auto r = ::read(m_toClient.get(), &count, sizeof count);
    }
  }
}

std::expected<SessionId, Error> Client::openSession(std::string_view peer, std::chrono::milliseconds timeout) {
  if (auto ok = pumpControl(); !ok) return std::unexpected(ok.error());
  if (peer.empty() || peer.size() >= kNameCapacity)
    return std::unexpected(Error{Errc::InvalidArgument, "peer name must be 1-47 characters"});
  protocol::OpenSession m;
  m.token = m_nextToken++;
  std::memcpy(m.peer, peer.data(), peer.size());
  if (!io::sendMessage(m_socket.get(), io::asBytes(m))) {
    m_fatal = goneError();
    return std::unexpected(*m_fatal);
  }
  auto session = awaitResult(m.token, Clock::now() + timeout, "'" + std::string(peer) + "' did not answer the session request");
  if (session) m_sessions[*session] = SessionState{std::string(peer)};
  return session;
}

std::expected<SessionId, Error> Client::awaitResult(std::uint32_t token, Clock::time_point deadline,
                                                    const std::string& what) {
  auto& flag = m_memory->channels().ownerSleeping;
  const auto started = Clock::now();
  for (;;) {
    if (auto ok = pumpControl(); !ok) return std::unexpected(ok.error());
    if (auto it = m_results.find(token); it != m_results.end()) {
      auto [session, error] = it->second;
      m_results.erase(it);
      if (error.code != Errc{}) return std::unexpected(error);
      return session;
    }
    if (Clock::now() >= deadline)
      return std::unexpected(Error{Errc::Timeout, what + " within " +
                                                      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                         deadline - started)
                                                                         .count()) +
                                                      " ms"});
    flag.store(1, std::memory_order_seq_cst);
    if (m_memory->channels().controlPosted.load(std::memory_order_seq_cst) == m_controlSeen) sleepUntil(deadline);
    flag.store(0, std::memory_order_relaxed);
  }
}

std::expected<SessionId, Error> Client::openTopic(std::string_view topic, std::uint32_t role, std::uint32_t cacheDepth,
                                                  std::chrono::milliseconds timeout) {
  if (auto ok = pumpControl(); !ok) return std::unexpected(ok.error());
  if (topic.empty() || topic.size() >= kNameCapacity)
    return std::unexpected(Error{Errc::InvalidArgument, "a topic name must be 1-47 characters"});
  protocol::OpenTopic m;
  m.token = m_nextToken++;
  m.role = role;
  m.cacheDepth = cacheDepth;
  std::memcpy(m.topic, topic.data(), topic.size());
  if (!io::sendMessage(m_socket.get(), io::asBytes(m))) {
    m_fatal = goneError();
    return std::unexpected(*m_fatal);
  }
  auto channel = awaitResult(m.token, Clock::now() + timeout, "the engine did not answer for topic '" + std::string(topic) + "'");
  if (channel) m_sessions[*channel] = SessionState{"topic '" + std::string(topic) + "'"};
  return channel;
}

std::expected<SessionId, Error> Client::advertise(std::string_view topic, std::uint32_t cacheDepth,
                                                  std::chrono::milliseconds timeout) {
  return openTopic(topic, protocol::kTopicPublish, cacheDepth, timeout);
}

std::expected<SessionId, Error> Client::subscribe(std::string_view topic, std::chrono::milliseconds timeout) {
  return openTopic(topic, protocol::kTopicSubscribe, 0, timeout);
}

std::expected<void, Error> Client::closeSession(SessionId session) {
  if (auto ok = pumpControl(); !ok) return std::unexpected(ok.error());
  auto it = m_sessions.find(session);
  if (it == m_sessions.end()) return std::unexpected(Error{Errc::SessionClosed, "no session " + std::to_string(session)});
  m_sessions.erase(it);
  protocol::SessionEvent m;
  m.head.type = protocol::Type::CloseSession;
  m.session = session;
  if (!io::sendMessage(m_socket.get(), io::asBytes(m))) {
    m_fatal = goneError();
    return std::unexpected(*m_fatal);
  }
  return {};
}

std::expected<Loan, Error> Client::handoverLoan(std::uint64_t bytes) {
  if (bytes > (std::uint64_t{1} << 34))
    return std::unexpected(Error{Errc::TooLarge, std::to_string(bytes) + " B is more than the 16 GiB a hand-over may carry"});
  auto object = m_handoverPool->take(bytes);  // ready, or prepared now (handover_pool.h)
  if (!object) return std::unexpected(object.error());
  return Loan(object->fd.release(), std::span(object->data, bytes), object->size);
}

std::uint64_t Client::inFlightBound() const noexcept {
  // What the last kRingCapacity messages carried: the ring holds no more than them.
  const std::uint64_t t = m_memory->channels().outbound.tail.load(std::memory_order_acquire);
  const std::uint64_t sent = m_sentBytes.load(std::memory_order_relaxed);
  if (t < kRingCapacity) return sent;
  const std::uint64_t before = m_sentBefore[t & (kRingCapacity - 1)].load(std::memory_order_relaxed);
  return before <= sent ? sent - before : sent;
}

std::uint64_t Client::bytesInFlight() const noexcept {
  const LocationRing& out = m_memory->channels().outbound;
  const std::uint64_t h = out.head.load(std::memory_order_acquire);
  const std::uint64_t t = out.tail.load(std::memory_order_acquire);
  if (h >= t) return 0;
  const std::uint64_t sent = m_sentBytes.load(std::memory_order_relaxed);
  const std::uint64_t before = m_sentBefore[h & (kRingCapacity - 1)].load(std::memory_order_relaxed);
  return before <= sent ? sent - before : 0;
}

void Client::waitForFlight(std::uint64_t bytes, std::chrono::milliseconds timeout) {
  // The bound first: it reads no line the engine writes, and small messages never reach the cap.
  if (inFlightBound() + bytes <= m_maxInFlight) return;
  std::uint64_t inFlight = bytesInFlight();
  if (inFlight == 0 || inFlight + bytes <= m_maxInFlight) return;
  constexpr auto kPatience = std::chrono::milliseconds(1);  // no progress for this long: go ahead
  const LocationRing& out = m_memory->channels().outbound;
  std::uint64_t lastHead = out.head.load(std::memory_order_acquire);
  auto progressAt = Clock::now();
  const auto deadline = progressAt + timeout;
  for (std::uint32_t round = 1;; ++round) {
    if (round % 8 == 0) sched_yield();
    else cpuRelax();
    inFlight = bytesInFlight();
    if (inFlight == 0 || inFlight + bytes <= m_maxInFlight) return;
    if (round % 16 != 0) continue;
    const auto now = Clock::now();
    if (const std::uint64_t h = out.head.load(std::memory_order_acquire); h != lastHead) {
      lastHead = h;
      progressAt = now;
    } else if (now - progressAt >= kPatience) {
      return;  // the engine takes nothing (its receiver is full, or it is not scheduled)
    }
    if (now >= deadline) return;
  }
}

std::expected<Loan, Error> Client::loan(std::uint64_t bytes, std::chrono::milliseconds timeout) {
  if (bytes > 0 && m_handoverThreshold > 0 && bytes >= m_handoverThreshold) return handoverLoan(bytes);
  // A loan leaves part of the block to incoming copies: two clients streaming to each other can
  // then never fill both blocks with their own outbound messages and wait on each other forever.
  const std::uint64_t keepFree = inboundReserve();
  // The common case first, without reading the clock: under the in-flight cap, and a free run.
  if (m_maxInFlight > 0 && timeout.count() > 0) waitForFlight(bytes, timeout);
  // Small runs come from the loan cache: ready ones without the lock; a batch of new ones while
  // earlier messages still wait for the engine (we are streaming, and the engine holds our lock
  // for its batches). A sender that sends now and then allocates one run at a time.
  LoanCache cache(m_memory->channels().loanCache, m_memory->manager());
  if (const auto order = cache.orderFor(bytes)) {
    if (auto ready = cache.take(*order)) return Loan(*ready, m_memory->bytes(*ready).first(bytes));
    const LocationRing& out = m_memory->channels().outbound;
    if (out.tail.load(std::memory_order_relaxed) != out.head.load(std::memory_order_acquire))
      if (auto fresh = cache.refill(*order, keepFree)) return Loan(*fresh, m_memory->bytes(*fresh).first(bytes));
  }
  if (auto a = allocate(bytes, keepFree)) return Loan(*a, m_memory->bytes(*a).first(bytes));
  else if (a.error().code != Errc::OutOfMemory || timeout.count() <= 0) return std::unexpected(a.error());
  const auto deadline = Clock::now() + timeout;
  const auto spinUntil = Clock::now() + m_spin;
  layout::Channels& ch = m_memory->channels();
  for (std::uint32_t round = 0;; ++round) {
    auto a = allocate(bytes, keepFree);
    if (a) return Loan(*a, m_memory->bytes(*a).first(bytes));
    const auto now = Clock::now();
    if (a.error().code != Errc::OutOfMemory || now >= deadline) return std::unexpected(a.error());
    if (now < spinUntil) {
      if (round % 8 == 7) sched_yield();
      else cpuRelax();
      continue;
    }
    // The engine rings us when it frees runs of our block (ownerWantsRoom).
    ch.ownerWantsRoom.store(1, std::memory_order_seq_cst);
    if (auto again = allocate(bytes, keepFree)) {
      ch.ownerWantsRoom.store(0, std::memory_order_relaxed);
      return Loan(*again, m_memory->bytes(*again).first(bytes));
    }
    sleepUntil(std::min(deadline, now + std::chrono::milliseconds(10)));
    ch.ownerWantsRoom.store(0, std::memory_order_relaxed);
  }
}

void Client::abandon(Loan&& loan) {
  if (!loan.valid()) return;
  if (loan.handover()) {  // never reused: it may hold bytes meant for someone else
    m_handoverPool->retire(loan.m_bytes.data(), loan.m_mapped, UniqueFd(std::exchange(loan.m_memfd, -1)));
  } else {
    (void)free(loan.m_run);
  }
  loan.m_bytes = {};
}

// The sender gives up the pages (unmaps), seals them against any write, passes the descriptor
// to the engine, then posts the Location that names it: whoever pops the Location finds the
// descriptor already there.
std::expected<void, Error> Client::sendHandover(SessionState& session, SessionId id, Loan& loan,
                                                std::uint32_t correlation) {
  layout::Channels& ch = m_memory->channels();
  if (ch.outbound.tail.load(std::memory_order_relaxed) - ch.outbound.head.load(std::memory_order_acquire) >= kRingCapacity)
    return std::unexpected(Error{Errc::WouldBlock, "the outbound ring is full"});
  const std::uint64_t length = loan.m_bytes.size();
  // Sealing against writes needs every writable mapping gone, so this unmapping cannot wait for
  // the helper thread: it is the one cost of a pooled hand-over that grows with the size.
  ::munmap(loan.m_bytes.data(), loan.m_mapped);
  loan.m_bytes = {};
  UniqueFd fd(std::exchange(loan.m_memfd, -1));
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
    return std::unexpected(systemError("seal a hand-over", errno));
  protocol::Handover h;
  h.id = m_nextHandover++;
  h.length = length;
  const int fds[1] = {fd.get()};
  if (!io::sendMessage(m_socket.get(), io::asBytes(h), fds)) {
    m_fatal = goneError();
    return std::unexpected(*m_fatal);
  }
  m_sentBefore[ch.outbound.tail.load(std::memory_order_relaxed) & (kRingCapacity - 1)].store(
      m_sentBytes.load(std::memory_order_relaxed), std::memory_order_relaxed);  // counts 0 B in flight
  ch.outbound.push(Location{h.id, LocationKind::Handover, 0, length, session.nextSequence++, id, correlation});
  if (ch.engineSleeping.load(std::memory_order_seq_cst)) ringDoorbell(m_toEngine.get());
  return {};
}

std::expected<Message, Error> Client::openHandover(const Location& l) {
  auto it = m_handovers.find(l.arena);
  if (it == m_handovers.end()) {
    if (auto ok = pumpControl(true); !ok) return std::unexpected(ok.error());
    it = m_handovers.find(l.arena);
    if (it == m_handovers.end())
      return std::unexpected(Error{Errc::ProtocolError, "the engine posted hand-over " + std::to_string(l.arena) +
                                                            " without its memory object"});
  }
  UniqueFd fd = std::move(it->second);
  m_handovers.erase(it);
  struct stat st {};
  if (l.length == 0 || ::fstat(fd.get(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) < l.length)
    return std::unexpected(Error{Errc::ProtocolError, "hand-over " + std::to_string(l.arena) + " is shorter than its " +
                                                          std::to_string(l.length) + " B"});
  void* p = ::mmap(nullptr, l.length, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return std::unexpected(systemError("mmap a received hand-over", errno));
  return Message(l, std::span(static_cast<const std::byte*>(p), l.length));
}

std::expected<void, Error> Client::trySend(SessionId session, Loan& loan, std::uint32_t correlation) {
  if (auto ok = pumpControl(); !ok) return std::unexpected(ok.error());
  if (!loan.valid()) return std::unexpected(Error{Errc::InvalidArgument, "this loan was already sent or abandoned"});
  auto it = m_sessions.find(session);
  if (it == m_sessions.end())
    return std::unexpected(Error{Errc::SessionClosed, "no open session " + std::to_string(session)});
  if (!it->second.open)
    return std::unexpected(Error{it->second.closed, it->second.closed == Errc::PeerGone
                                                        ? "'" + it->second.peer + "' has gone"
                                                        : "'" + it->second.peer + "' closed the session"});
  if (loan.handover()) return sendHandover(it->second, session, loan, correlation);
  layout::Channels& ch = m_memory->channels();
  const Location l{loan.m_run.arena, LocationKind::Copy, loan.m_run.offset, loan.m_bytes.size(),
                   it->second.nextSequence, session, correlation};
  const std::uint64_t position = ch.outbound.tail.load(std::memory_order_relaxed);
  if (!ch.outbound.push(l, m_outboundHeadSeen)) return std::unexpected(Error{Errc::WouldBlock, "the outbound ring is full"});
  const std::uint64_t sent = m_sentBytes.load(std::memory_order_relaxed);  // we are its only writer
  m_sentBefore[position & (kRingCapacity - 1)].store(sent, std::memory_order_relaxed);
  m_sentBytes.store(sent + l.length, std::memory_order_relaxed);
  ++it->second.nextSequence;
  loan.m_bytes = {};
  if (ch.engineSleeping.load(std::memory_order_seq_cst)) ringDoorbell(m_toEngine.get());
  return {};
}

std::expected<void, Error> Client::send(SessionId session, Loan& loan, std::chrono::milliseconds timeout,
                                        std::uint32_t correlation) {
  if (auto r = trySend(session, loan, correlation); r || r.error().code != Errc::WouldBlock) return r;  // no clock read
  const auto deadline = Clock::now() + timeout;
  const auto spinUntil = Clock::now() + m_spin;
  layout::Channels& ch = m_memory->channels();
  for (std::uint32_t round = 0;; ++round) {
    auto r = trySend(session, loan, correlation);
    if (r || r.error().code != Errc::WouldBlock) return r;
    const auto now = Clock::now();
    if (now >= deadline)
      return std::unexpected(Error{Errc::Timeout, "the outbound ring stayed full for " + std::to_string(timeout.count()) +
                                                      " ms: the receiver is not keeping up"});
    if (now < spinUntil) {
      if (round % 8 == 7) sched_yield();
      else cpuRelax();
      continue;
    }
    ch.ownerWantsRoom.store(1, std::memory_order_seq_cst);
    if (ch.outbound.tail.load(std::memory_order_relaxed) - ch.outbound.head.load(std::memory_order_seq_cst) >= kRingCapacity)
      sleepUntil(std::min(deadline, Clock::now() + std::chrono::milliseconds(10)));  // bounded: look again
    ch.ownerWantsRoom.store(0, std::memory_order_relaxed);
  }
}

std::expected<Message, Error> Client::takeMessage() {
  if (!m_held.empty()) {
    Message m = std::move(m_held.front());
    m_held.pop_front();
    return m;
  }
  if (auto ok = pumpControl(); !ok) return std::unexpected(ok.error());
  layout::Channels& ch = m_memory->channels();
  LocationRing& in = ch.inbound;
  if (in.empty(m_inboundTailSeen)) {
    (void)flushReleases(false);  // nothing to take: a moment to return what release() put aside
    return Message{};
  }
  ch.ownerSleeping.store(0, std::memory_order_relaxed);  // busy again: no doorbell needed
  const Location l = in.front();
  in.pop();  // seq_cst: pairs with the engine raising engineWantsRoom for a full ring
  if (ch.engineWantsRoom.load(std::memory_order_seq_cst) && ch.engineWantsRoom.exchange(0, std::memory_order_seq_cst))
    ringDoorbell(m_toEngine.get());
  if (l.kind == LocationKind::Handover) return openHandover(l);
  const Allocation run{l.arena, 0, l.offset, l.length};
  return Message(l, m_memory->bytes(run));
}

std::expected<Message, Error> Client::tryReceive() {
  auto m = takeMessage();
  if (!m || m->valid()) return m;
  // Going idle: clear a doorbell already rung and read the socket dry (a control message can be
  // readable before the engine bumps controlPosted), so that pollFd() is not readable for
  // nothing; arm the doorbell for an event loop waiting on pollFd(); then look once more.
  (void)flushReleases(true);  // going idle: nothing may stay put aside
  std::uint64_t count;
  [[maybe_unused]] auto r = ::read(m_toClient.get(), &count, sizeof count);
  if (auto ok = pumpControl(true); !ok) return std::unexpected(ok.error());
  m_memory->channels().ownerSleeping.store(1, std::memory_order_seq_cst);
  return takeMessage();
}

// Polls without arming the doorbell while it spins (the engine then posts without a system
// call), and arms it only to sleep.
std::expected<Message, Error> Client::receive(std::chrono::milliseconds timeout) {
  if (auto m = takeMessage(); !m || m->valid()) return m;  // a message waits: no clock read
  const auto deadline = Clock::now() + timeout;
  const auto spinUntil = Clock::now() + m_spin;
  layout::Channels& ch = m_memory->channels();
  for (std::uint32_t round = 0;; ++round) {
    auto m = takeMessage();
    if (!m || m->valid()) return m;
    if (round % 16 != 15) {  // the clock costs more than a look at the ring: read it now and then
      // Yield from the first empty look on: a peer that shares this CPU (three parties, two
      // CPUs) runs while the engine forwards, instead of after it. 1.9 -> 1.7 us one way at
      // 64 B; every look yielding gained less (PERFORMANCE.md, "Where the peers run").
      if (round % 2 == 0) sched_yield();
      else cpuRelax();
      continue;
    }
    const auto now = Clock::now();
    if (now >= deadline) return std::unexpected(Error{Errc::Timeout, "no message within " + std::to_string(timeout.count()) + " ms"});
    if (now < spinUntil) {
      sched_yield();
      continue;
    }
    (void)flushReleases(true);  // before sleeping: the engine may be waiting for exactly these runs
    ch.ownerSleeping.store(1, std::memory_order_seq_cst);
    if (ch.inbound.empty() && ch.controlPosted.load(std::memory_order_seq_cst) == m_controlSeen) sleepUntil(deadline);
    if (auto ok = pumpControl(true); !ok) return std::unexpected(ok.error());
  }
}

std::expected<Message, Error> Client::request(SessionId session, Loan& loan, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::uint32_t correlation = m_nextCorrelation++ | 0x80000000U;  // never 0
  if (auto sent = send(session, loan, timeout, correlation); !sent) return std::unexpected(sent.error());
  // Take messages in arrival order; keep the ones that are not our reply for later. The held
  // queue is set aside so that receive() reads the ring, not what we already hold.
  std::deque<Message> earlier = std::move(m_held);
  m_held.clear();
  auto restore = [&] {
    while (!m_held.empty()) {
      earlier.push_back(std::move(m_held.front()));
      m_held.pop_front();
    }
    m_held = std::move(earlier);
  };
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto m = receive(std::max(left, std::chrono::milliseconds(0)));
    if (!m) {
      restore();
      if (m.error().code == Errc::Timeout)
        return std::unexpected(Error{Errc::Timeout, "no reply on session " + std::to_string(session) + " within " +
                                                        std::to_string(timeout.count()) + " ms"});
      return std::unexpected(m.error());
    }
    if (m->session() == session && m->correlation() == correlation) {
      restore();
      return m;
    }
    earlier.push_back(std::move(*m));
  }
}

std::expected<void, Error> Client::reply(const Message& to, Loan& loan, std::chrono::milliseconds timeout) {
  if (to.correlation() == 0)
    return std::unexpected(Error{Errc::InvalidArgument, "the message was not a request (it has no correlation id)"});
  return send(to.session(), loan, timeout, to.correlation());
}

void Client::release(Message&& message) {
  if (!message.valid()) return;
  if (message.m_location.kind == LocationKind::Handover) {  // our mapping was all we held
    // The last reference: unmapping frees the pages, which costs more than reading them did.
    m_handoverPool->retire(message.m_bytes.data(), message.m_bytes.size());
    message.m_bytes = {};
    return;
  }
  // Put aside and returned in batches: one manager lock round trip for many messages, and no
  // wait while the engine holds the lock for its own batch (docs/design/notification.md).
  m_releases.push_back(PendingRelease{message.m_location.arena, message.m_location.offset});
  m_releaseBytes += message.m_bytes.size();
  message.m_bytes = {};
  layout::Channels& ch = m_memory->channels();
  // Returned at once (waiting for the lock) when the engine waits for room, or when nothing more
  // waits in the ring (the caller may go idle, or release its last message and never call us
  // again while the engine waits for exactly these runs); else put aside, and returned in a
  // batch when the lock is free, or at once beyond the limits.
  const bool engineWaits = ch.engineWantsRoom.load(std::memory_order_seq_cst) != 0;
  if (engineWaits || ch.inbound.empty(m_inboundTailSeen) || m_releases.size() >= kReleaseLimit ||
      m_releaseBytes >= kReleaseLimitBytes)
    (void)flushReleases(true);
  else if (m_releases.size() >= kReleaseBatch || m_releaseBytes >= kReleaseBatchBytes)
    (void)flushReleases(false);
  // Freed (under the manager lock, which the engine takes to look for room) before the flag is
  // read: the engine either finds the room or has raised the flag (notification.md).
  if (ch.engineWantsRoom.load(std::memory_order_seq_cst) && ch.engineWantsRoom.exchange(0, std::memory_order_seq_cst))
    ringDoorbell(m_toEngine.get());
}

bool Client::flushReleases(bool wait) noexcept {
  if (m_releases.empty()) return true;
  BuddyManager& manager = m_memory->manager();
  auto hold = wait ? manager.hold() : manager.tryHold();
  if (!hold) return false;  // the engine holds it (or, waiting, it died holding it): later
  for (const PendingRelease& r : m_releases) (void)manager.free(r.arena, r.offset);
  m_releases.clear();
  m_releaseBytes = 0;
  return true;
}

}  // namespace ipcsync
