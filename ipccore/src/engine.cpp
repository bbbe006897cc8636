#include "ipcsync/ipccore/engine.h"

#include <sched.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <vector>

#include "ipcsync/ipccore/admin_segment.h"
#include "ipcsync/ipccore/process_memory.h"
#include "cpu_relax.h"
#include "engine_impl.h"
#include "loan_cache.h"
#include "protocol.h"
#include "socket_io.h"

namespace ipcsync {

std::uint64_t tag(Tag t, std::uint32_t index) { return (std::uint64_t{static_cast<std::uint32_t>(t)} << 32) | index; }

std::uint64_t realtimeNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

namespace {

std::optional<PeerCredentials> peerCredentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return std::nullopt;
  PeerCredentials out{cred.pid, cred.uid, cred.gid, {}};
  std::vector<gid_t> groups(64);
  socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) != 0) {
    const bool retry = errno == ERANGE;
    if (retry) groups.resize(glen / sizeof(gid_t));
    if (!retry || ::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) != 0) glen = 0;  // no groups known
  }
  groups.resize(glen / sizeof(gid_t));
  out.groups = std::move(groups);
  return out;
}

bool admits(const AccessList& access, const PeerCredentials& peer) {
  if (access.uids.empty() && access.gids.empty()) return peer.uid == ::geteuid();
  if (std::ranges::find(access.uids, peer.uid) != access.uids.end()) return true;
  for (gid_t g : access.gids)
    if (g == peer.gid || std::ranges::find(peer.groups, g) != peer.groups.end()) return true;
  return false;
}

// A name is 1..47 printable ASCII characters, NUL-terminated inside the field.
bool validName(const char (&name)[kNameCapacity]) {
  const std::size_t n = ::strnlen(name, kNameCapacity);
  if (n == 0 || n == kNameCapacity) return false;
  return std::all_of(name, name + n, [](char c) { return c > ' ' && c < 127; });
}

std::string formatBytes(std::uint64_t b) {
  if (b >= (1ULL << 20) && b % (1ULL << 20) == 0) return std::to_string(b >> 20) + " MiB";
  if (b >= 1024 && b % 1024 == 0) return std::to_string(b >> 10) + " KiB";
  return std::to_string(b) + " B";
}

}  // namespace

std::expected<void, Error> Engine::Impl::watch(int fd, Tag t, std::uint32_t index, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag(t, index);
  if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return std::unexpected(systemError("epoll_ctl add", errno));
  return {};
}

std::expected<void, Error> Engine::Impl::start() {
  if (auto ok = AdminSegment::validateNamespace(m_config.ns); !ok) return std::unexpected(ok.error());
  if (auto ok = validate(m_config.geometry); !ok) return std::unexpected(ok.error());
  if (m_config.capacity == 0 || m_config.capacity > 4096)
    return std::unexpected(Error{Errc::InvalidArgument, "registry capacity must be 1..4096 (got " +
                                                            std::to_string(m_config.capacity) + ")"});
  if (m_config.runtimeDir.empty()) m_config.runtimeDir = defaultRuntimeDir();
  // Each registration holds six descriptors (socket, control, block, two eventfds, pidfd).
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &files);
  const rlim_t needed = rlim_t{m_config.capacity} * 6 + 64;
  if (files.rlim_cur != RLIM_INFINITY && files.rlim_cur < needed)
    return std::unexpected(Error{Errc::InvalidArgument, "a registry of " + std::to_string(m_config.capacity) + " needs about " +
                                                            std::to_string(needed) + " file descriptors, but the limit is " +
                                                            std::to_string(files.rlim_cur) +
                                                            "; raise 'ulimit -n' or lower engine.capacity"});
  const bool othersAdmitted = !m_config.access.gids.empty() ||
                              std::ranges::any_of(m_config.access.uids, [](uid_t u) { return u != ::geteuid(); });
  auto dir = NamespaceDir::lock(m_config.runtimeDir, m_config.ns, othersAdmitted ? 0711 : 0700);
  if (!dir) {
    if (dir.error().code == Errc::EngineAlreadyRunning) {
      if (auto seg = AdminSegment::open(m_config.ns); seg)
        return std::unexpected(Error{Errc::EngineAlreadyRunning,
                                     "namespace '" + m_config.ns + "' is served by a running engine (pid " +
                                         std::to_string((*seg)->engine().pid) +
                                         "); stop it first or choose another namespace"});
    }
    return std::unexpected(dir.error());
  }
  m_dir.emplace(std::move(*dir));
  m_socketPath = m_dir->socketPath();
  if (m_socketPath.native().size() >= layout::kSocketPathCapacity)
    return std::unexpected(Error{Errc::InvalidArgument, "socket path " + m_socketPath.string() +
                                                            " is longer than 107 bytes; choose a shorter --runtime-dir"});

  const auto self = static_cast<std::int32_t>(::getpid());
  std::int32_t stalePid = 0;
  auto admin = AdminSegment::create(m_config.ns, m_config.capacity,
                                    EngineIdentity{self, processStartTicks(self), m_socketPath.string()}, &stalePid);
  if (!admin) return std::unexpected(admin.error());
  m_admin = std::move(*admin);
  if (stalePid) log(LogLevel::Warn, "replaced the admin segment left behind by engine pid " + std::to_string(stalePid) + ", which is not running");

  // The engine's own block, for the messages topics ask it to keep for late subscribers.
  auto own = ProcessMemory::create(m_config.geometry, "engine-cache." + m_config.ns, self, self, 0);
  if (!own) return std::unexpected(own.error());
  m_ownBlock = std::move(*own);

  m_slots.resize(m_config.capacity);
  m_generations.assign(m_config.capacity, 0);

  m_listen.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!m_listen) return std::unexpected(systemError("socket", errno));
  ::unlink(m_socketPath.c_str());  // a dead engine's leftover; we hold the directory lock
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, m_socketPath.c_str(), sizeof addr.sun_path - 1);
  if (::bind(m_listen.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return std::unexpected(systemError("bind " + m_socketPath.string(), errno));
  if (::chmod(m_socketPath.c_str(), othersAdmitted ? 0666 : 0600) != 0)
    return std::unexpected(systemError("chmod " + m_socketPath.string(), errno));
  if (::listen(m_listen.get(), 256) != 0) return std::unexpected(systemError("listen", errno));

  m_epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
  m_stopFd.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  m_timerFd.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!m_epoll || !m_stopFd || !m_timerFd) return std::unexpected(systemError("epoll/eventfd/timerfd", errno));
  const auto period = std::chrono::duration_cast<std::chrono::nanoseconds>(m_config.publishInterval).count();
  itimerspec spec{};
  spec.it_interval.tv_sec = spec.it_value.tv_sec = period / 1'000'000'000;
  spec.it_interval.tv_nsec = spec.it_value.tv_nsec = period % 1'000'000'000;
  if (::timerfd_settime(m_timerFd.get(), 0, &spec, nullptr) != 0) return std::unexpected(systemError("timerfd_settime", errno));
  for (auto [fd, t] : {std::pair{m_listen.get(), Tag::Listen}, {m_stopFd.get(), Tag::Stop}, {m_timerFd.get(), Tag::Timer}})
    if (auto ok = watch(fd, t, 0); !ok) return ok;
  m_admin->beat(realtimeNs());
  m_admin->publish();  // only now can clients find us: the socket listens
  log(LogLevel::Info, "engine for namespace '" + m_config.ns + "' listening on " + m_socketPath.string() +
                          " (registry of " + std::to_string(m_config.capacity) + ", blocks of " +
                          formatBytes(m_config.geometry.arenaSize()) + " x " + std::to_string(m_config.geometry.maxArenas) +
                          " arenas)");
  return {};
}

namespace {

// One sender streaming small messages, round after round, each round finding only a few: the
// engine is faster than the sender, and polling again at once would cost a round (ring indices,
// the sender's manager lock, a doorbell check) for every message or two, each one a cache line
// fetched from the sender's core. Waiting a few microseconds lets a batch build up first. Only for
// one sender's small messages: in a ping-pong consecutive rounds take messages from different
// senders, and a round of large messages is worth its cost.
constexpr auto kGatherFor = std::chrono::microseconds(4);
constexpr std::uint64_t kGatherBelow = 64;  // messages in a round: kBatch in engine_forwarding.cpp
constexpr std::uint64_t kGatherBelowBytes = 16 * 1024;

class Gathering {
 public:
  bool shouldWait(std::uint64_t messages, std::uint64_t bytes, std::uint32_t sender) noexcept {
    m_streak = messages == 0 ? 0 : sender == m_sender ? m_streak + 1 : 1;
    m_sender = sender;
    return m_streak >= 2 && messages < kGatherBelow && bytes < kGatherBelowBytes;
  }

 private:
  std::uint32_t m_streak = 0;  // rounds in a row that moved messages of one sender
  std::uint32_t m_sender = ~0u;
};

}  // namespace

// The loop polls the rings while messages flow, keeps polling for `spin` after the last one
// (yielding the CPU between rounds: sender, engine and receiver may share two cores), then sleeps
// in epoll until a socket, the timer or a client's doorbell wakes it. Before sleeping it raises
// every client's engineSleeping flag and forwards once more, so a message posted in between is
// never left waiting.
std::expected<void, Error> Engine::Impl::run() {
  using Clock = std::chrono::steady_clock;
  auto lastWork = Clock::now();
  Gathering gathering;
  for (std::uint64_t round = 1;; ++round) {
    const std::uint64_t before = m_forwarded, beforeBytes = m_forwardedBytes;
    if (forwardAll()) {
      lastWork = Clock::now();
      if (gathering.shouldWait(m_forwarded - before, m_forwardedBytes - beforeBytes, m_lastSender)) {
        const auto until = lastWork + kGatherFor;
        while (Clock::now() < until) cpuRelax();
      }
      if (round % 64 == 0 && dispatchEvents(0) == Dispatch::Stop) return {};
      continue;
    }
    if (Clock::now() - lastWork < m_config.spin) {
      if (round % 16 == 0 && dispatchEvents(0) == Dispatch::Stop) return {};
      sched_yield();
      continue;
    }
    // One more round with the flags raised: whatever was posted before a client could see them
    // moves now; whatever is posted after rings the doorbell. Messages that stay pending wait
    // for room in their receiver, whose release rings the doorbell too.
    setSleeping(true);
    if (forwardAll()) {
      setSleeping(false);
      lastWork = Clock::now();
      continue;
    }
    // Runs we could not free yet (the owner held its lock) must not wait for an event that may
    // never come: the owner may be waiting for exactly those runs. Look again in a millisecond.
    const bool deferred = std::ranges::any_of(m_slots, [](const auto& r) { return r && !r->deferredFrees.empty(); });
    const Dispatch d = dispatchEvents(deferred ? 1 : -1);
    setSleeping(false);
    if (d == Dispatch::Stop) return {};
    lastWork = Clock::now();
  }
}

Engine::Impl::Dispatch Engine::Impl::dispatchEvents(int timeoutMs) {
  epoll_event events[64];
  const int n = ::epoll_wait(m_epoll.get(), events, 64, timeoutMs);
  if (n < 0) {
    if (errno != EINTR) log(LogLevel::Error, systemError("epoll_wait", errno).message());
    return Dispatch::Continue;
  }
  for (int i = 0; i < n; ++i) {
    const auto t = static_cast<Tag>(events[i].data.u64 >> 32);
    const auto index = static_cast<std::uint32_t>(events[i].data.u64);
    switch (t) {
      case Tag::Listen: acceptAll(); break;
      case Tag::Stop: return Dispatch::Stop;
      case Tag::Timer: tick(); break;
      case Tag::Pending: onHello(static_cast<int>(index)); break;
      case Tag::Client:
        if ((events[i].events & EPOLLOUT) && index < m_slots.size() && m_slots[index]) flushOutbox(index);
        if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) onClient(index);
        break;
      case Tag::Pidfd: {
        const std::uint32_t slot = index & 0xfff;
        if (slot < m_slots.size() && m_slots[slot] &&
            (m_slots[slot]->record.generation & 0xfffff) == (index >> 12))
          finish(slot, "process exited");
        break;
      }
      case Tag::Doorbell:
        if (index < m_slots.size() && m_slots[index]) {
          std::uint64_t count;
          [[maybe_unused]] auto r = ::read(m_slots[index]->toEngine.get(), &count, sizeof count);
        }
        break;
    }
  }
  return Dispatch::Continue;
}

void Engine::Impl::setSleeping(bool sleeping) {
  for (auto& s : m_slots)
    if (s) s->memory->channels().engineSleeping.store(sleeping ? 1 : 0, std::memory_order_seq_cst);
}

void Engine::Impl::ring(int eventFd) {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(eventFd, &one, sizeof one);
}

bool Engine::Impl::post(std::uint32_t slot, std::span<const std::byte> message, std::span<const int> fds,
                        bool mustArrive) {
  Registered& r = *m_slots[slot];
  constexpr std::size_t kOutboxLimit = 65536;
  if (!r.outbox.empty()) {  // keep the order: behind what already waits
    if (!mustArrive) return false;
    if (r.outbox.size() >= kOutboxLimit) r.notReading = true;
    else r.outbox.emplace_back(message.begin(), message.end());
    return true;
  }
  if (auto sent = io::sendMessage(r.socket.get(), message, fds); !sent) {
    if (sent.error().code != Errc::WouldBlock || !mustArrive) return false;
    r.outbox.emplace_back(message.begin(), message.end());
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLOUT;  // tell us when it drains
    ev.data.u64 = tag(Tag::Client, slot);
    if (!r.closing) ::epoll_ctl(m_epoll.get(), EPOLL_CTL_MOD, r.socket.get(), &ev);
    return true;
  }
  r.memory->channels().controlPosted.fetch_add(1, std::memory_order_seq_cst);
  if (r.memory->channels().ownerSleeping.load(std::memory_order_seq_cst)) ring(r.toClient.get());
  return true;
}

void Engine::Impl::acceptAll() {
  for (;;) {
    UniqueFd fd(::accept4(m_listen.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: stop listening until the next tick instead of spinning on a
        // socket that stays readable; the waiting clients time out or get in later.
        log(LogLevel::Warn, systemError("accept (pausing new registrations until the next tick)", errno).message());
        ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, m_listen.get(), nullptr);
        m_listenPaused = true;
      } else if (errno != EAGAIN) {
        log(LogLevel::Warn, systemError("accept", errno).message());
      }
      return;
    }
    const int raw = fd.get();
    const int buffer = 1 << 20;  // room for many control messages to a client that is busy, not gone
    ::setsockopt(raw, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    if (auto ok = watch(raw, Tag::Pending, static_cast<std::uint32_t>(raw), EPOLLIN | EPOLLRDHUP); !ok) {
      log(LogLevel::Warn, ok.error().message());
      continue;
    }
    m_pending[raw] = Pending{std::move(fd), std::chrono::steady_clock::now() + m_config.helloTimeout};
  }
}

void Engine::Impl::refuse(int fd, Errc code, const std::string& detail) {
  protocol::Refusal r;
  r.code = static_cast<std::uint32_t>(code);
  std::strncpy(r.detail, detail.c_str(), sizeof r.detail - 1);
  (void)io::sendMessage(fd, io::asBytes(r));
}

void Engine::Impl::onHello(int fd) {
  auto it = m_pending.find(fd);
  if (it == m_pending.end()) return;
  alignas(8) std::byte buffer[512];
  auto got = io::receiveMessage(fd, buffer);
  if (got && got->wouldBlock) return;
  UniqueFd socket = std::move(it->second.socket);
  m_pending.erase(it);
  ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
  if (!got || got->size == 0) return;  // it went away before saying hello
  protocol::MessageHead head{};
  if (got->size < sizeof head) return refuse(fd, Errc::ProtocolError, "message too short for a rendezvous header");
  std::memcpy(&head, buffer, sizeof head);
  if (head.magic != protocol::kMagic) return refuse(fd, Errc::ProtocolError, "not an ipcsync rendezvous message (bad magic)");
  if (head.version != protocol::kVersion)
    return refuse(fd, Errc::VersionMismatch,
                  "engine speaks rendezvous protocol " + std::to_string(protocol::kVersion) + ", client " +
                      std::to_string(head.version) + "; run matching ipcsync builds");
  protocol::Hello hello;
  if (head.type != protocol::Type::Hello || got->size != sizeof hello || got->truncated || !got->fds.empty())
    return refuse(fd, Errc::ProtocolError, "expected a Hello message first");
  std::memcpy(&hello, buffer, sizeof hello);

  const auto peer = peerCredentials(fd);
  if (!peer) return refuse(fd, Errc::SystemError, "cannot read peer credentials");
  if (!admits(m_config.access, *peer)) {
    log(LogLevel::Warn, "refused pid " + std::to_string(peer->pid) + " (uid " + std::to_string(peer->uid) + ", gid " +
                            std::to_string(peer->gid) + "): not on the access list");
    return refuse(fd, Errc::AccessDenied,
                  "uid " + std::to_string(peer->uid) + " / gid " + std::to_string(peer->gid) +
                      " is not on the access list of namespace '" + m_config.ns + "' (see 'access' in its config)");
  }
  if (!validName(hello.name))
    return refuse(fd, Errc::InvalidArgument, "a process name must be 1-47 printable characters without spaces");
  const std::string_view name(hello.name, ::strnlen(hello.name, kNameCapacity));
  std::optional<std::uint32_t> freeSlot;
  for (std::uint32_t s = 0; s < m_slots.size(); ++s) {
    if (!m_slots[s]) {
      if (!freeSlot) freeSlot = s;
    } else if (!m_slots[s]->closing && m_slots[s]->record.nameView() == name) {
      return refuse(fd, Errc::NameTaken,
                    "'" + std::string(name) + "' is registered by pid " + std::to_string(m_slots[s]->record.pid) +
                        "; choose another name or stop that process");
    }
  }
  if (!freeSlot)
    return refuse(fd, Errc::RegistryFull, "all " + std::to_string(m_slots.size()) + " registry slots of namespace '" +
                                              m_config.ns + "' are in use");
  if (auto ok = registerProcess(socket, *peer, hello, *freeSlot); !ok) {
    log(LogLevel::Error, "registration of '" + std::string(name) + "' failed: " + ok.error().message());
    refuse(fd, ok.error().code, ok.error().message());
  }
}

std::expected<void, Error> Engine::Impl::registerProcess(UniqueFd& socket, const PeerCredentials& peer,
                                                         const protocol::Hello& hello, std::uint32_t slot) {
  const std::uint64_t generation = ++m_generations[slot];
  ProcessRecord rec;
  rec.generation = generation;
  rec.pid = peer.pid;
  rec.uid = peer.uid;
  rec.gid = peer.gid;
  std::memcpy(rec.name, hello.name, kNameCapacity);
  rec.state = RecordState::Registering;
  rec.geometry = m_config.geometry;
  rec.registeredAtNs = rec.lastSeenNs = realtimeNs();
  std::ranges::fill(rec.arenaUsedPermille, kArenaInactive);  // no block yet: no arena to show
  m_admin->store(slot, rec);  // observers see the slot taken while the block is built

  auto undo = [&](Error e) {
    m_admin->store(slot, ProcessRecord{.generation = generation});
    return std::unexpected(std::move(e));
  };
  const std::string label = m_config.ns + ":" + std::string(rec.nameView());
  auto memory = ProcessMemory::create(m_config.geometry, label, peer.pid, static_cast<std::int32_t>(::getpid()), generation);
  if (!memory) return undo(memory.error());
  // Short: the engine never waits on one client for long; what it cannot do now it retries.
  (*memory)->manager().setLockTimeout(std::chrono::microseconds(20));
  UniqueFd toClient(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  UniqueFd toEngine(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!toClient || !toEngine) return undo(systemError("eventfd", errno));
  if (auto stats = (*memory)->manager().stats(); stats) rec.stats = *stats;
  (void)(*memory)->manager().arenaUse(rec.arenaUsedPermille);
  rec.state = RecordState::Registered;
  m_admin->store(slot, rec);

  protocol::Welcome welcome;
  welcome.slot = slot;
  welcome.generation = generation;
  welcome.geometry = m_config.geometry;
  welcome.enginePid = static_cast<std::int32_t>(::getpid());
  welcome.capacity = m_config.capacity;
  welcome.handoverThreshold =
      m_config.handoverThreshold ? m_config.handoverThreshold : m_config.geometry.arenaSize() + 1;
  const int fds[protocol::kWelcomeFds] = {(*memory)->controlFd(), (*memory)->blockFd(), toClient.get(), toEngine.get()};
  if (auto sent = io::sendMessage(socket.get(), io::asBytes(welcome), fds); !sent) return undo(sent.error());
  if (auto ok = watch(socket.get(), Tag::Client, slot, EPOLLIN | EPOLLRDHUP); !ok) return undo(ok.error());
  if (auto ok = watch(toEngine.get(), Tag::Doorbell, slot); !ok) {
    ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, socket.get(), nullptr);
    return undo(ok.error());
  }
  // The socket closes when the last process holding it ends; a pidfd tells us when the process
  // that registered ends, even if it forked a child that keeps the socket open.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, peer.pid, 0)));
  // Its tag carries the generation too: an exit event still queued when the slot is reused must
  // not reclaim the newcomer.
  if (pidfd && !watch(pidfd.get(), Tag::Pidfd, slot | static_cast<std::uint32_t>(generation << 12))) pidfd.reset();
  // From here on the slot owns the socket; closing it (reclaim) also leaves the epoll set.

  m_slots[slot] = Registered{std::move(socket), std::move(*memory), std::move(toClient), std::move(toEngine),
                             std::move(pidfd), rec, {}};
  ++m_registered;
  log(LogLevel::Info, "registered '" + std::string(rec.nameView()) + "' (pid " + std::to_string(rec.pid) + ", uid " +
                          std::to_string(rec.uid) + ") in slot " + std::to_string(slot));
  return {};
}

void Engine::Impl::onClient(std::uint32_t slot) {
  // Drain everything the client sent; each handler may reclaim the slot.
  while (slot < m_slots.size() && m_slots[slot]) {
    Registered& r = *m_slots[slot];
    alignas(8) std::byte buffer[512];
    auto got = io::receiveMessage(r.socket.get(), buffer);
    if (!got) return finish(slot, got.error().message());
    if (got->wouldBlock) return;
    if (got->size == 0) return finish(slot, "connection closed (process exited or was killed)");
    protocol::MessageHead head{};
    if (got->size < sizeof head) return kick(slot, Errc::ProtocolError, "sent a message shorter than its header");
    std::memcpy(&head, buffer, sizeof head);
    if (head.magic != protocol::kMagic || head.version != protocol::kVersion)
      return kick(slot, Errc::ProtocolError, "sent a message with a bad header");
    if (head.type != protocol::Type::Handover && !got->fds.empty())
      return kick(slot, Errc::ProtocolError, "sent descriptors with a message that carries none");
    auto as = [&]<typename M>(M& m) {
      if (got->size != sizeof m || got->truncated) return false;
      std::memcpy(&m, buffer, sizeof m);
      return true;
    };
    switch (head.type) {
      case protocol::Type::Ping: {
        protocol::Ping ping;
        if (!as(ping)) return kick(slot, Errc::ProtocolError, "sent a malformed ping");
        ping.head.type = protocol::Type::Pong;
        r.record.lastSeenNs = realtimeNs();
        if (!post(slot, io::asBytes(ping))) return reclaim(slot, "went away during a ping");
        break;
      }
      case protocol::Type::OpenSession: {
        protocol::OpenSession m;
        if (!as(m)) return kick(slot, Errc::ProtocolError, "sent a malformed OpenSession");
        onOpenSession(slot, m);
        break;
      }
      case protocol::Type::SessionAnswer: {
        protocol::SessionAnswer m;
        if (!as(m)) return kick(slot, Errc::ProtocolError, "sent a malformed SessionAnswer");
        onSessionAnswer(slot, m);
        break;
      }
      case protocol::Type::OpenTopic: {
        protocol::OpenTopic m;
        if (!as(m)) return kick(slot, Errc::ProtocolError, "sent a malformed OpenTopic");
        onOpenTopic(slot, m);
        break;
      }
      case protocol::Type::CloseSession: {
        protocol::SessionEvent m;
        if (!as(m)) return kick(slot, Errc::ProtocolError, "sent a malformed CloseSession");
        onCloseSession(slot, m);
        break;
      }
      case protocol::Type::Handover: {
        protocol::Handover m;
        if (!as(m)) return kick(slot, Errc::ProtocolError, "sent a malformed Handover");
        onHandover(slot, m, got->fds);
        break;
      }
      case protocol::Type::Bye: return finish(slot, "deregistered");
      default:
        return kick(slot, Errc::ProtocolError,
                    "sent an unexpected message type " + std::to_string(static_cast<std::uint32_t>(head.type)));
    }
  }
}

void Engine::Impl::onHandover(std::uint32_t slot, const protocol::Handover& m, std::vector<UniqueFd>& fds) {
  // The receiver must be able to trust that nobody changes the bytes under it: the object must
  // be sealed against writes and resizing, and hold the length it claims.
  constexpr int kSeals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW;
  struct stat st {};
  const int seals = fds.size() == 1 ? ::fcntl(fds[0].get(), F_GET_SEALS) : -1;
  if (fds.size() != 1 || seals < 0 || (seals & kSeals) != kSeals || ::fstat(fds[0].get(), &st) != 0 ||
      static_cast<std::uint64_t>(st.st_size) < m.length || m.length == 0)
    return kick(slot, Errc::ProtocolError, "handed over something that is not a sealed memory object of the length it claims");
  auto& held = m_slots[slot]->handovers;
  if (held.size() >= kRingCapacity || held.contains(m.id))
    return kick(slot, Errc::ProtocolError, "handed over more objects than it posted (or reused hand-over id " +
                                               std::to_string(m.id) + ")");
  held.emplace(m.id, Registered::HandedOver{std::move(fds[0]), m.length});
}

void Engine::Impl::flushOutbox(std::uint32_t slot) {
  Registered& r = *m_slots[slot];
  while (!r.outbox.empty()) {
    auto sent = io::sendMessage(r.socket.get(), r.outbox.front());
    if (!sent) {
      if (sent.error().code != Errc::WouldBlock) r.outbox.clear();  // it is going away
      if (!r.outbox.empty()) return;                                // still full: wait for EPOLLOUT
      break;
    }
    r.outbox.pop_front();
    r.memory->channels().controlPosted.fetch_add(1, std::memory_order_seq_cst);
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u64 = tag(Tag::Client, slot);
  if (!r.closing) ::epoll_ctl(m_epoll.get(), EPOLL_CTL_MOD, r.socket.get(), &ev);
  if (r.memory->channels().ownerSleeping.load(std::memory_order_seq_cst)) ring(r.toClient.get());
}

void Engine::Impl::finish(std::uint32_t slot, const std::string& reason) {
  Registered& r = *m_slots[slot];
  if (r.closing) return;
  const auto pending = r.memory->channels().outbound.pending();
  if (!pending || *pending == 0) return reclaim(slot, reason);
  // Messages that send() accepted are delivered even though their sender is gone.
  r.closing = true;
  r.closingDeadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  r.closingReason = reason;
  for (int fd : {r.socket.get(), r.toEngine.get(), r.pidfd.get()})
    if (fd >= 0) ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
  r.record.state = RecordState::Reclaiming;
  m_admin->store(slot, r.record);
  log(LogLevel::Info, "'" + std::string(r.record.nameView()) + "' (pid " + std::to_string(r.record.pid) + ") " + reason +
                          "; delivering the " + std::to_string(*pending) + " message(s) it had sent");
}

void Engine::Impl::reclaim(std::uint32_t slot, const std::string& reason) {
  m_locks.drop();  // a held lock must not outlive the mapping it lives in
  Registered& r = *m_slots[slot];
  r.record.state = RecordState::Reclaiming;
  m_admin->store(slot, r.record);
  closeSessionsOf(slot);
  ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, r.toEngine.get(), nullptr);
  if (r.pidfd) ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, r.pidfd.get(), nullptr);
  const std::string who = "'" + std::string(r.record.nameView()) + "' (pid " + std::to_string(r.record.pid) + ")";
  // The owner is gone, so the lock is free unless it died inside; then the last figures serve.
  const auto last = r.memory->manager().stats();
  const std::uint64_t held = last ? last->bytesInUse : r.record.stats.bytesInUse;
  // Dropping the state unmaps the block and control segment and closes every descriptor (and so
  // the socket, which leaves the epoll set). No lock is needed: the owner is gone, and memfds
  // die with their last descriptor.
  m_slots[slot].reset();
  --m_registered;
  m_admin->store(slot, ProcessRecord{.generation = m_generations[slot]});
  log(LogLevel::Info, "released " + who + ": " + reason + " (" + formatBytes(held) + " were in use)");
}

void Engine::Impl::tick() {
  std::uint64_t expirations = 0;
  [[maybe_unused]] auto n = ::read(m_timerFd.get(), &expirations, sizeof expirations);
  if (m_listenPaused && watch(m_listen.get(), Tag::Listen, 0)) m_listenPaused = false;
  const std::uint64_t now = realtimeNs();
  m_admin->beat(now);
  publishCaches();
  for (std::uint32_t slot = 0; slot < m_slots.size(); ++slot) {
    if (!m_slots[slot]) continue;
    Registered& r = *m_slots[slot];
    if (r.notReading && !r.closing) {
      kick(slot, Errc::ProtocolError, "stopped reading its engine socket (a control message did not fit its buffer)");
      continue;
    }
    if (r.closing) continue;
    if (auto stats = r.memory->manager().stats()) {  // else the owner holds the lock; next tick
      // A block that allocated nothing for a whole tick gives back the runs kept ready for its
      // loans, then its empty arenas.
      const bool idle = stats->allocations == r.allocationsAtLastTick;
      if (LoanCache cache(r.memory->channels().loanCache, r.memory->manager()); idle && cache.ready() > 0) {
        auto drained = cache.drain();
        if (!drained && drained.error() != Errc::LockTimeout) {
          kick(slot, Errc::ProtocolError, std::string("its loan cache named a run that is not allocated (") +
                                              std::string(describe(drained.error())) + ")");
          continue;
        }
        stats = r.memory->manager().stats();
      }
      if (stats && idle && stats->activeArenas > r.record.geometry.minArenas &&
          stats->freeBlocksPerOrder[r.record.geometry.topOrder()] > 0) {
        if (auto released = r.memory->manager().trim(); released && *released > 0) stats = r.memory->manager().stats();
      }
      if (stats) {
        r.allocationsAtLastTick = stats->allocations;
        r.record.stats = *stats;
        (void)r.memory->manager().arenaUse(r.record.arenaUsedPermille);  // else the last picture stays
      }
    }
    r.record.lastSeenNs = now;
    m_admin->store(slot, r.record);
  }
  const auto steadyNow = std::chrono::steady_clock::now();
  for (auto it = m_pending.begin(); it != m_pending.end();) {
    if (it->second.deadline <= steadyNow) {
      log(LogLevel::Warn, "dropped a connection that sent no Hello within " +
                              std::to_string(m_config.helloTimeout.count()) + " ms");
      it = m_pending.erase(it);  // closing removes it from epoll
    } else {
      ++it;
    }
  }
}

Engine::Engine(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

Engine::~Engine() {
  if (!m_impl) return;
  const bool started = m_impl->m_admin != nullptr && m_impl->m_listen.valid();
  for (std::uint32_t slot = 0; slot < m_impl->m_slots.size(); ++slot)
    if (m_impl->m_slots[slot]) m_impl->m_slots[slot].reset();
  m_impl->m_pending.clear();
  m_impl->m_listen.reset();
  m_impl->m_admin.reset();  // unlinks /dev/shm/ipcsync.<ns>
  m_impl->m_dir.reset();    // unlinks the socket, removes the directory, drops the lock
  if (started) m_impl->log(LogLevel::Info, "engine for namespace '" + m_impl->m_config.ns + "' stopped");
}

std::expected<std::unique_ptr<Engine>, Error> Engine::create(EngineConfig config, LogSink log) {
  auto impl = std::make_unique<Impl>(std::move(config), std::move(log));
  // Construct the Engine first so that a failed start() still cleans up what it made.
  std::unique_ptr<Engine> engine(new Engine(std::move(impl)));
  if (auto ok = engine->m_impl->start(); !ok) return std::unexpected(ok.error());
  return engine;
}

std::expected<void, Error> Engine::run() { return m_impl->run(); }
void Engine::requestStop() noexcept { m_impl->requestStop(); }
const std::filesystem::path& Engine::socketPath() const noexcept { return m_impl->m_socketPath; }
std::uint32_t Engine::registeredCount() const noexcept { return m_impl->m_registered; }

}  // namespace ipcsync
