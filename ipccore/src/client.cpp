#include "ipcsync/ipccore/client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <optional>
#include <cstring>
#include <thread>

#include "ipcsync/ipccore/admin_segment.h"
#include "ipcsync/ipccore/process_memory.h"
#include "handover_pool.h"
#include "loan_cache.h"
#include "protocol.h"
#include "socket_io.h"

namespace ipcsync {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

milliseconds left(Clock::time_point deadline) {
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
}

struct Target {
  std::string socketPath;
  std::int32_t enginePid = 0;  // 0 when not known (explicit runtime directory)
  uid_t engineUid = 0;
};

bool trusted(const ConnectOptions& o, uid_t uid) { return o.engineUid ? uid == *o.engineUid : (uid == ::geteuid() || uid == 0); }

std::expected<Target, Error> findEngine(const ConnectOptions& o) {
  if (!o.runtimeDir.empty())
    return Target{(o.runtimeDir / o.ns / "engine.sock").string(), 0, o.engineUid.value_or(::geteuid())};
  auto admin = AdminSegment::open(o.ns);
  if (!admin) return std::unexpected(admin.error());
  if (!trusted(o, (*admin)->ownerUid()))
    return std::unexpected(Error{Errc::AccessDenied, "/dev/shm/" + AdminSegment::shmName(o.ns) + " belongs to uid " +
                                                         std::to_string((*admin)->ownerUid()) +
                                                         ", not to the engine's user; refusing to trust it (set ConnectOptions::engineUid if that user runs the engine)"});
  const EngineIdentity engine = (*admin)->engine();
  if (!(*admin)->engineAlive())
    return std::unexpected(Error{Errc::EngineNotRunning, "the engine of namespace '" + o.ns + "' (pid " +
                                                             std::to_string(engine.pid) +
                                                             ") is not running; its segment is stale. Start ipcsyncd --namespace " +
                                                             o.ns});
  return Target{engine.socketPath, engine.pid, (*admin)->ownerUid()};
}

// The process at the other end of the socket must be the engine the segment names.
std::expected<void, Error> checkPeer(int fd, const Target& t, const ConnectOptions& o) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return std::unexpected(systemError("SO_PEERCRED", errno));
  const bool pidOk = t.enginePid == 0 || cred.pid == t.enginePid;
  if (!pidOk || !trusted(o, cred.uid) || (t.enginePid != 0 && cred.uid != t.engineUid))
    return std::unexpected(Error{Errc::AccessDenied, "the process behind " + t.socketPath + " (pid " + std::to_string(cred.pid) +
                                                         ", uid " + std::to_string(cred.uid) +
                                                         ") is not the engine the namespace names; refusing to register with it"});
  return {};
}

// One connection attempt. EngineBusy (retryable) when the listen backlog is full.
std::expected<UniqueFd, Error> dial(const Target& t, const std::string& ns) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return std::unexpected(systemError("socket", errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (t.socketPath.size() >= sizeof addr.sun_path)
    return std::unexpected(Error{Errc::InvalidArgument, "socket path too long: " + t.socketPath});
  std::memcpy(addr.sun_path, t.socketPath.c_str(), t.socketPath.size() + 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  const int err = errno;
  if (err == EAGAIN) return std::unexpected(Error{Errc::EngineBusy, "the engine's connection queue is full"});
  if (err == ENOENT || err == ECONNREFUSED)
    return std::unexpected(Error{Errc::EngineNotRunning, "no engine listens on " + t.socketPath + " (namespace '" + ns +
                                                             "'); start one with: ipcsyncd --namespace " + ns});
  if (err == EACCES)
    return std::unexpected(Error{Errc::AccessDenied, "no permission to reach " + t.socketPath +
                                                         " (the runtime directory admits only its owner)"});
  return std::unexpected(systemError("connect " + t.socketPath, err));
}

}  // namespace

std::expected<std::unique_ptr<Client>, Error> Client::connect(const ConnectOptions& o) {
  if (auto ok = AdminSegment::validateNamespace(o.ns); !ok) return std::unexpected(ok.error());
  if (o.name.empty() || o.name.size() >= kNameCapacity ||
      !std::all_of(o.name.begin(), o.name.end(), [](char c) { return c > ' ' && c < 127; }))
    return std::unexpected(Error{Errc::InvalidArgument, "process name '" + o.name +
                                                            "' must be 1-47 printable characters without spaces"});
  const auto deadline = Clock::now() + o.timeout;
  auto target = findEngine(o);
  while (!target && target.error().code == Errc::EngineBusy && left(deadline).count() > 0) {  // still starting
    std::this_thread::sleep_for(std::min(milliseconds(2), left(deadline)));
    target = findEngine(o);
  }
  if (!target) return std::unexpected(target.error());
  const std::string enginePid = target->enginePid ? " (pid " + std::to_string(target->enginePid) + ")" : "";

  protocol::Hello hello;
  std::memcpy(hello.name, o.name.c_str(), o.name.size());
  milliseconds backoff(1);
  std::optional<Error> lastFull;  // the registry was full at the last attempt
  for (;;) {
    // Waits a little before the next attempt; the error itself once the time is up.
    auto retryOrFail = [&](Error e) -> std::optional<Error> {
      std::this_thread::sleep_for(std::min(backoff, left(deadline)));
      backoff = std::min(backoff * 2, milliseconds(50));
      if (left(deadline).count() == 0) return e;
      return std::nullopt;
    };
    auto fd = dial(*target, o.ns);
    if (!fd) {
      if (fd.error().code != Errc::EngineBusy) return std::unexpected(fd.error());
      Error busy{Errc::EngineBusy, "the engine of namespace '" + o.ns + "'" + enginePid +
                                       " accepted no connection within " + std::to_string(o.timeout.count()) + " ms"};
      if (auto e = retryOrFail(std::move(busy))) return std::unexpected(*e);
      continue;
    }
    if (auto ok = checkPeer(fd->get(), *target, o); !ok) return std::unexpected(ok.error());
    if (auto sent = io::sendMessage(fd->get(), io::asBytes(hello)); !sent)
      return std::unexpected(Error{Errc::EngineGone, "the engine went away during the rendezvous (" + sent.error().detail + ")"});
    if (!io::waitReadable(fd->get(), left(deadline))) {
      if (lastFull) return std::unexpected(*lastFull);  // out of time while waiting for a slot
      return std::unexpected(Error{Errc::EngineBusy, "the engine of namespace '" + o.ns + "'" + enginePid +
                                                         " did not answer within " + std::to_string(o.timeout.count()) +
                                                         " ms; it may be stopped or overloaded"});
    }
    alignas(8) std::byte buffer[512];
    auto got = io::receiveMessage(fd->get(), buffer);
    if (!got) return std::unexpected(got.error());
    if (got->size == 0)
      return std::unexpected(Error{Errc::EngineGone, "the engine" + enginePid + " went away during the rendezvous"});
    protocol::MessageHead head{};
    if (got->size < sizeof head) return std::unexpected(Error{Errc::ProtocolError, "short reply from the engine"});
    std::memcpy(&head, buffer, sizeof head);
    if (head.magic != protocol::kMagic)
      return std::unexpected(Error{Errc::ProtocolError, "the socket's peer is not an ipcsync engine"});
    if (head.type == protocol::Type::Refusal && got->size == sizeof(protocol::Refusal)) {
      protocol::Refusal r;
      std::memcpy(&r, buffer, sizeof r);
      r.detail[sizeof r.detail - 1] = '\0';
      Error e{static_cast<Errc>(r.code), r.detail};
      if (e.code != Errc::RegistryFull) return std::unexpected(std::move(e));
      e.detail += "; no slot freed within " + std::to_string(o.timeout.count()) + " ms";
      lastFull = e;
      if (auto fail = retryOrFail(std::move(e))) return std::unexpected(*fail);
      continue;
    }
    if (head.version != protocol::kVersion)
      return std::unexpected(Error{Errc::VersionMismatch, "the engine speaks rendezvous protocol " +
                                                              std::to_string(head.version) + ", this client " +
                                                              std::to_string(protocol::kVersion) +
                                                              "; run matching ipcsync builds"});
    if (head.type != protocol::Type::Welcome || got->size != sizeof(protocol::Welcome) ||
        got->fds.size() != protocol::kWelcomeFds || got->truncated)
      return std::unexpected(Error{Errc::ProtocolError, "malformed Welcome from the engine"});
    protocol::Welcome w;
    std::memcpy(&w, buffer, sizeof w);

    std::unique_ptr<Client> c(new Client());
    auto memory = ProcessMemory::attach(std::move(got->fds[0]), std::move(got->fds[1]), w.geometry, w.generation);
    if (!memory) return std::unexpected(memory.error());
    c->m_memory = std::move(*memory);
    c->m_memory->manager().setLockTimeout(o.lockTimeout);
    c->m_toClient = std::move(got->fds[2]);
    c->m_toEngine = std::move(got->fds[3]);
    c->m_socket = std::move(*fd);
    // From now on a send waits while the engine drains its side (at most 5 s); receives stay
    // non-blocking (MSG_DONTWAIT).
    ::fcntl(c->m_socket.get(), F_SETFL, ::fcntl(c->m_socket.get(), F_GETFL) & ~O_NONBLOCK);
    const timeval sendTimeout{5, 0};
    ::setsockopt(c->m_socket.get(), SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, sizeof sendTimeout);
    c->m_spin = o.spin;
    c->m_maxInFlight = o.maxBytesInFlight;
    c->m_sentBefore = std::make_unique<std::atomic<std::uint64_t>[]>(kRingCapacity);
    c->m_handoverThreshold = w.handoverThreshold;
    c->m_pollFd.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!c->m_pollFd) return std::unexpected(systemError("epoll_create1", errno));
    for (int watched : {c->m_toClient.get(), c->m_socket.get()}) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = watched;
      if (::epoll_ctl(c->m_pollFd.get(), EPOLL_CTL_ADD, watched, &ev) != 0)
        return std::unexpected(systemError("epoll_ctl", errno));
    }
    c->m_name = o.name;
    c->m_ns = o.ns;
    c->m_handoverPool = std::make_unique<HandoverPool>(o.ns + ":" + o.name, o.handoverPool, o.handoverPoolBytes);
    c->m_slot = w.slot;
    c->m_generation = w.generation;
    c->m_enginePid = w.enginePid;
    c->m_geometry = w.geometry;
    return c;
  }
}

Client::~Client() {
  if (!m_socket) return;
  protocol::MessageHead bye{protocol::kMagic, protocol::kVersion, protocol::Type::Bye};
  (void)io::sendMessage(m_socket.get(), io::asBytes(bye));
  // Unmap before closing the socket, so the engine never releases a block we still map.
  m_memory.reset();
}

bool Client::engineAlive() const noexcept {
  pollfd p{m_socket.get(), POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 0 || !(p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

int Client::engineFd() const noexcept { return m_socket.get(); }

Error Client::managerError(Errc code, std::string detail) const {
  if (code == Errc::LockTimeout && !engineAlive())
    return Error{Errc::EngineGone, "the engine (pid " + std::to_string(m_enginePid) + ") of namespace '" + m_ns +
                                       "' went away while holding the manager lock of '" + m_name + "'"};
  return Error{code, std::move(detail)};
}

std::expected<Allocation, Error> Client::allocate(std::uint64_t bytes) { return allocate(bytes, 0); }

std::uint64_t Client::inboundReserve() const noexcept {
  return std::min(std::max(m_geometry.arenaSize(), m_geometry.maxBytes() / 8), m_geometry.maxBytes() / 2);
}

std::expected<Allocation, Error> Client::allocate(std::uint64_t bytes, std::uint64_t keepFree) {
  auto a = m_memory->manager().allocate(bytes, keepFree);
  if (a) return *a;
  std::string detail;
  switch (a.error()) {
    case Errc::TooLarge:
      detail = std::to_string(bytes) + " B is larger than one arena (" + std::to_string(m_geometry.arenaSize()) +
               " B); send it in pieces or raise the arena size";
      break;
    case Errc::OutOfMemory: {
      const auto s = m_memory->manager().stats();
      detail = "block of '" + m_name + "' has no free run of " + std::to_string(bytes) + " B (" +
               (s ? std::to_string(s->bytesInUse) : std::string("?")) + " of " + std::to_string(m_geometry.maxBytes()) +
               " B in use, all " + std::to_string(m_geometry.maxArenas) +
               " arenas active" +
               (keepFree ? "; a loan leaves " + std::to_string(keepFree) + " B free for incoming messages" : std::string()) +
               "); free sub-blocks or raise the maximum arenas";
      break;
    }
    case Errc::InvalidArgument: detail = "cannot allocate 0 bytes"; break;
    default: detail = "allocating " + std::to_string(bytes) + " B in the block of '" + m_name + "'"; break;
  }
  return std::unexpected(managerError(a.error(), std::move(detail)));
}

std::expected<void, Error> Client::free(const Allocation& allocation) {
  auto r = m_memory->manager().free(allocation.arena, allocation.offset);
  if (r) return {};
  return std::unexpected(managerError(r.error(), "sub-block at arena " + std::to_string(allocation.arena) +
                                                     ", offset " + std::to_string(allocation.offset) +
                                                     " of the block of '" + m_name + "'"));
}

std::span<std::byte> Client::bytes(const Allocation& allocation) const noexcept { return m_memory->bytes(allocation); }

std::expected<std::uint32_t, Error> Client::trim() {
  // Runs kept ready for loans would keep their arenas from being empty.
  if (auto drained = LoanCache(m_memory->channels().loanCache, m_memory->manager()).drain(); !drained)
    return std::unexpected(managerError(drained.error(), "returning the runs kept ready for loans in the block of '" + m_name + "'"));
  auto r = m_memory->manager().trim();
  if (r) return *r;
  return std::unexpected(managerError(r.error(), "trimming the block of '" + m_name + "'"));
}

std::expected<ManagerStats, Error> Client::stats() const {
  auto r = m_memory->manager().stats();
  if (r) return *r;
  return std::unexpected(managerError(r.error(), "reading the manager of '" + m_name + "'"));
}

std::expected<void, Error> Client::ping(std::chrono::milliseconds timeout) {
  static std::atomic<std::uint64_t> tokens{0};
  if (m_fatal) return std::unexpected(*m_fatal);
  protocol::Ping ping;
  ping.token = ++tokens;
  if (!io::sendMessage(m_socket.get(), io::asBytes(ping))) {
    m_fatal = goneError();
    return std::unexpected(*m_fatal);
  }
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (!io::waitReadable(m_socket.get(), left(deadline)))
      return std::unexpected(Error{Errc::EngineBusy, "the engine (pid " + std::to_string(m_enginePid) +
                                                         ") did not answer a ping within " +
                                                         std::to_string(timeout.count()) + " ms"});
    alignas(8) std::byte buffer[512];
    auto got = io::receiveMessage(m_socket.get(), buffer);
    if (!got || (!got->wouldBlock && got->size == 0)) {
      m_fatal = goneError();
      return std::unexpected(*m_fatal);
    }
    if (got->wouldBlock) continue;
    protocol::Ping pong;
    if (got->size == sizeof pong) {
      std::memcpy(&pong, buffer, sizeof pong);
      if (pong.head.type == protocol::Type::Pong && pong.token == ping.token) return {};
    }
    // Anything else the engine posted meanwhile (session offers, closes) is handled as usual.
    if (auto ok = handleControl(std::span(buffer, got->size), got->fds); !ok) return ok;
  }
}

}  // namespace ipcsync
