#include "host_server.h"

#include <poll.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "ipcsync/plugin_host/description_json.h"

namespace ipcsync::plugin_host {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// How long snapshot pieces and conflicts may wait for room (the sync engine is waiting for the
// answer they precede, so it is reading), and each round of a reply's wait (answer()).
constexpr auto kBlockingSendTimeout = 5000ms;

// Wake-ups in a row after which a wake descriptor that stays readable is ignored until the next
// periodic poll (see run()).
constexpr int kMaxWakePollsInARow = 3;

std::string text(const char* s) { return s ? s : ""; }

wire::Envelope toWire(const ipcsync_envelope& e, const std::string& instance) {
  wire::Envelope w;
  // The instance is the origin: a plugin does not know the name it runs under, and two
  // instances of one plugin (crm, crm2) must never be confused in the journal.
  w.origin = !instance.empty() ? instance : text(e.origin);
  w.sequence = e.sequence;
  if (e.route) w.route = e.route;
  w.commitTimeUs = e.commit_time_us;
  for (std::size_t i = 0; i < e.provenance_count; ++i) w.provenance.push_back(text(e.provenance[i]));
  if (w.provenance.empty()) w.provenance.push_back(w.origin);
  w.pieceIndex = e.piece_index;
  w.pieceCount = e.piece_count;
  w.data = std::span<const std::byte>(static_cast<const std::byte*>(e.data), e.size);
  return w;
}

}  // namespace

HostServer::HostServer(Client& client, const LoadedPlugin& plugin, std::string syncPeer,
                       std::chrono::milliseconds pollInterval)
    : m_client(client), m_plugin(plugin), m_syncPeer(std::move(syncPeer)), m_pollInterval(pollInterval) {
  m_client.setSessionPolicy([peer = m_syncPeer](std::string_view from) { return from == peer; });
}

template <class T>
int HostServer::sendFrame(wire::Kind kind, const T& body, bool wait, std::string& error) {
  if (!m_session || !m_client.peerOf(*m_session)) {
    error = "no sync engine session is open (the sync engine '" + m_syncPeer +
            "' has gone); emit again later";
    return IPCSYNC_EBUSY;
  }
  const std::size_t size = wire::encodedSize(kind, body);
  auto loan = m_client.loan(size, wait ? kBlockingSendTimeout : 0ms);
  if (!loan) {
    if (loan.error().code == Errc::OutOfMemory) {
      error = "back-pressure: the host's block has no room for " + std::to_string(size) +
              " more bytes until the sync engine reads; try again on a later poll";
      return IPCSYNC_EBUSY;
    }
    error = "cannot send " + std::string(wire::name(kind)) + " of " + std::to_string(size) +
            " bytes: " + loan.error().message();
    return loan.error().code == Errc::TooLarge ? IPCSYNC_EINVAL : IPCSYNC_EIO;
  }
  wire::encodeInto(loan->bytes(), kind, body);
  auto sent = wait ? m_client.send(*m_session, *loan, kBlockingSendTimeout) : m_client.trySend(*m_session, *loan);
  if (!sent) {
    m_client.abandon(std::move(*loan));
    if (sent.error().code == Errc::WouldBlock || sent.error().code == Errc::Timeout) {
      error = "back-pressure: the sync engine has not read what was sent before; try again on a later poll";
      return IPCSYNC_EBUSY;
    }
    error = "cannot send " + std::string(wire::name(kind)) + " to the sync engine: " + sent.error().message();
    return IPCSYNC_EBUSY;
  }
  return IPCSYNC_OK;
}

int HostServer::emit(const ipcsync_envelope& changeSet, std::string& error) {
  return sendFrame(wire::Kind::Emit, toWire(changeSet, m_instance ? m_instance->name() : ""), false, error);
}

int HostServer::emitSnapshot(const ipcsync_envelope& piece, std::string& error) {
  return sendFrame(wire::Kind::SnapshotPiece, toWire(piece, m_instance ? m_instance->name() : ""), true, error);
}

int HostServer::reportConflict(const ipcsync_conflict& c, std::string& error) {
  wire::Conflict w;
  w.route = text(c.route);
  w.origin = text(c.origin);
  w.sequence = c.sequence;
  w.table = text(c.table);
  w.kind = text(c.kind);
  w.keyJson = text(c.key_json);
  if (c.source_json) w.sourceJson = c.source_json;
  if (c.target_json) w.targetJson = c.target_json;
  w.change = std::span<const std::byte>(static_cast<const std::byte*>(c.change), c.change_size);
  return sendFrame(wire::Kind::Conflict, w, true, error);
}

template <class T>
void HostServer::answer(const Message& to, wire::Kind kind, const T& body) {
  if (to.correlation() == 0) {
    // Not a request: the answer goes out as a plain message so the sender still learns of it.
    std::string error;
    if (sendFrame(kind, body, true, error) != IPCSYNC_OK) spdlog::warn("cannot answer the sync engine: {}", error);
    return;
  }
  // The sync engine waits for this answer (an Apply's would otherwise stay outstanding, its route
  // stalled until the session ends), so room for it is waited for as long as the session lasts:
  // the sync engine may be busy for longer than the send timeout (a long snapshot elsewhere). In
  // short rounds, so that a stop request, the engine going or the session ending ends the wait.
  constexpr auto kRound = 250ms;
  const auto transient = [](Errc code) {
    return code == Errc::Timeout || code == Errc::WouldBlock || code == Errc::OutOfMemory || code == Errc::LockTimeout;
  };
  const auto since = Clock::now();
  auto warned = since;
  for (;;) {
    auto loan = m_client.loan(wire::encodedSize(kind, body), kRound);
    std::optional<Error> failed;
    if (!loan) {
      failed = loan.error();
    } else {
      wire::encodeInto(loan->bytes(), kind, body);
      auto sent = m_client.reply(to, *loan, kRound);
      if (sent) return;
      m_client.abandon(std::move(*loan));
      failed = sent.error();
    }
    std::string why;
    if (!transient(failed->code)) why = failed->message();
    else if (m_stopRequested && *m_stopRequested) why = "stopping while it waited for room (" + failed->message() + ")";
    else if (!m_client.engineAlive()) why = "the engine went away while it waited for room";
    else if (!m_client.peerOf(to.session())) why = "the session ended while it waited for room";
    if (!why.empty()) {
      spdlog::error("cannot reply {} to the sync engine: {}", wire::name(kind), why);
      return;
    }
    if (const auto now = Clock::now(); now - warned >= kBlockingSendTimeout) {
      warned = now;
      spdlog::warn("the sync engine has not taken the answer to its request ({}) for {} s: {}; still waiting (it "
                   "resumes when the sync engine reads again, or ends with its session)",
                   wire::name(kind), std::chrono::duration_cast<std::chrono::seconds>(now - since).count(),
                   failed->message());
    }
  }
}

void HostServer::fail(const Message& to, int status, const std::string& message) {
  answer(to, wire::Kind::Failure, wire::Failure{static_cast<std::uint32_t>(status), message});
}

HostServer::Next HostServer::handle(const Message& request) {
  const auto peer = m_client.peerOf(request.session());
  if (!peer || *peer != m_syncPeer) {
    spdlog::warn("ignoring a message on session {} from '{}', which is not the sync engine '{}'", request.session(),
                 peer.value_or("?"), m_syncPeer);
    return Next::Continue;
  }
  if (m_session != request.session()) {
    if (m_session && m_instance && m_instance->started()) {
      // A new sync engine while started: what the plugin emitted to the old one may not be
      // journaled. Restart (the supervisor does) so the new one starts us from its journal.
      fail(request, IPCSYNC_EBUSY, "this host was started by an earlier sync engine session; it restarts now");
      spdlog::error("the sync engine opened a new session {} while session {} had started this instance; stopping "
                    "so that the supervisor restarts this host and the new sync engine resumes it",
                    request.session(), *m_session);
      return Next::SessionLost;
    }
    m_session = request.session();
  }
  auto kind = wire::peekKind(request.bytes());
  if (!kind) {
    fail(request, IPCSYNC_EINVAL, "malformed frame: " + kind.error());
    return Next::Continue;
  }
  try {
    return serve(request, *kind);
  } catch (const std::exception& e) {
    fail(request, IPCSYNC_EINTERNAL, std::string("the host failed serving ") + std::string(wire::name(*kind)) + ": " + e.what());
  }
  return Next::Continue;
}

HostServer::Next HostServer::serve(const Message& request, wire::Kind kind) {
  PluginInstance& plugin = *m_instance;
  const auto bad = [&](const std::string& why) {
    fail(request, IPCSYNC_EINVAL, "malformed frame: " + why);
    return Next::Continue;
  };
  const auto failed = [&](const PluginFailure& f) {
    fail(request, f.status, f.message);
    return Next::Continue;
  };
  const auto needStarted = [&] {
    if (plugin.started()) return true;
    fail(request, IPCSYNC_EINVAL,
         std::string(wire::name(kind)) + " before Start: send Start(journaled_through) to plugin host '" +
             m_client.name() + "' first");
    return false;
  };
  switch (kind) {
    case wire::Kind::Describe:
      answer(request, wire::Kind::Description, wire::Description{describeAsJson(m_plugin)});
      return Next::Continue;
    case wire::Kind::Start: {
      auto args = wire::decode<wire::Start>(request.bytes());
      if (!args) return bad(args.error());
      if (plugin.started()) {
        fail(request, IPCSYNC_EINVAL, "Start: the instance is already started");
        return Next::Continue;
      }
      if (auto started = plugin.start(args->journaledThrough); !started) {
        fail(request, started.error().status, "start() failed: " + started.error().message);
        spdlog::error("start() of instance '{}' failed with status {}: {}", plugin.name(), started.error().status,
                      started.error().message);
        return plugin_host::transient(started.error().status) ? Next::StartFailedForNow : Next::StartFailed;
      }
      spdlog::info("instance '{}' started after sequence {}", plugin.name(), args->journaledThrough);
      answer(request, wire::Kind::Ok, wire::Empty{});
      return Next::Continue;
    }
    case wire::Kind::Apply: {
      auto w = wire::decode<wire::Envelope>(request.bytes());
      if (!w) return bad(w.error());
      if (!needStarted()) return Next::Continue;
      if (!w->route) {
        fail(request, IPCSYNC_EINVAL, "Apply without a route: the route names where the change-set goes");
        return Next::Continue;
      }
      if (w->pieceCount == 0 || w->pieceIndex >= w->pieceCount) {
        fail(request, IPCSYNC_EINVAL, "Apply: piece " + std::to_string(w->pieceIndex) + " of " +
                                          std::to_string(w->pieceCount) + " is impossible");
        return Next::Continue;
      }
      if (w->conflictPolicy > IPCSYNC_CONFLICT_PARK) {
        fail(request, IPCSYNC_EINVAL, "Apply: conflict policy " + std::to_string(w->conflictPolicy) + " is unknown");
        return Next::Continue;
      }
      std::vector<const char*> provenance;
      for (const auto& p : w->provenance) provenance.push_back(p.c_str());
      ipcsync_envelope e{};
      e.struct_size = sizeof e;
      e.origin = w->origin.c_str();
      e.sequence = w->sequence;
      e.route = w->route->c_str();
      e.commit_time_us = w->commitTimeUs;
      e.provenance = provenance.data();
      e.provenance_count = provenance.size();
      e.piece_index = w->pieceIndex;
      e.piece_count = w->pieceCount;
      e.data = w->data.data();
      e.size = w->data.size();
      e.conflict_policy = w->conflictPolicy;
      e.timestamp_column = w->timestampColumn ? w->timestampColumn->c_str() : nullptr;
      auto result = plugin.apply(e);
      if (!result) return failed(result.error());
      answer(request, wire::Kind::ApplyResult,
             wire::ApplyResult{static_cast<std::uint32_t>(result->status), result->changes_applied, result->conflicts});
      return Next::Continue;
    }
    case wire::Kind::Snapshot: {
      auto r = wire::decode<wire::SnapshotRequest>(request.bytes());
      if (!r) return bad(r.error());
      if (!needStarted()) return Next::Continue;
      auto asOf = plugin.snapshot(r->table, r->route, static_cast<std::size_t>(r->maxPieceBytes));
      if (!asOf) return failed(asOf.error());
      answer(request, wire::Kind::SnapshotDone, wire::SnapshotDone{*asOf});
      return Next::Continue;
    }
    case wire::Kind::LastApplied: {
      auto r = wire::decode<wire::LastAppliedRequest>(request.bytes());
      if (!r) return bad(r.error());
      if (!needStarted()) return Next::Continue;
      auto seq = plugin.lastApplied(r->route);
      if (!seq) return failed(seq.error());
      answer(request, wire::Kind::Sequence, wire::Sequence{*seq});
      return Next::Continue;
    }
    case wire::Kind::Acknowledge: {
      auto r = wire::decode<wire::Acknowledge>(request.bytes());
      if (!r) return bad(r.error());
      if (!needStarted()) return Next::Continue;
      auto ok = plugin.acknowledge(r->sequence);
      if (!ok) return failed(ok.error());
      answer(request, wire::Kind::Ok, wire::Empty{});
      return Next::Continue;
    }
    case wire::Kind::Stop: {
      auto stopped = plugin.stop();
      if (!stopped) fail(request, stopped.error().status, stopped.error().message);
      else answer(request, wire::Kind::Ok, wire::Empty{});
      return Next::Stop;
    }
    default:
      fail(request, IPCSYNC_EINVAL,
           "a plugin host does not serve " + std::string(wire::name(kind)) +
               " frames; it serves Describe, Start, Apply, Snapshot, LastApplied, Acknowledge and Stop");
      return Next::Continue;
  }
}

int HostServer::finish(int code) {
  if (m_instance)
    spdlog::info("instance '{}' was polled {} times, {} of them woken by its wake descriptor", m_instance->name(),
                 m_polls, m_wakePolls);
  if (m_instance && m_instance->started()) {
    if (auto stopped = m_instance->stop(); !stopped)
      spdlog::warn("stop() of instance '{}' failed: {}", m_instance->name(), stopped.error().message);
  }
  m_instance.reset();  // destroy()
  return code;
}

bool HostServer::wakeStillReadable() {
  pollfd p{m_instance->wakeFd(), POLLIN, 0};
  return p.fd >= 0 && ::poll(&p, 1, 0) > 0 && (p.revents & POLLNVAL) == 0;
}

int HostServer::run(const volatile std::sig_atomic_t& stopRequested) {
  m_stopRequested = &stopRequested;
  auto nextPoll = Clock::now();
  // The plugin's wake descriptor (set_wake_fd) was readable: poll now, not at nextPoll.
  bool woken = false;
  // Waiting on the wake descriptor. Off after kMaxWakePollsInARow wake-ups in a row left it
  // readable (a plugin that does not read it, or writes that wake it from within poll()) until the
  // next periodic poll, so such a plugin costs two polls per interval instead of a busy loop.
  bool wakeArmed = true;
  int readableAfterWake = 0;
  while (!stopRequested) {
    for (;;) {
      auto message = m_client.tryReceive();
      if (!message) {
        spdlog::error("lost the engine: {}", message.error().message());
        return finish(kEngineLost);
      }
      if (!message->valid()) break;
      const Next next = handle(*message);
      m_client.release(std::move(*message));
      if (next == Next::Stop) {
        spdlog::info("the sync engine sent Stop; instance '{}' stopped", m_instance->name());
        return finish(kStoppedCleanly);
      }
      if (next == Next::StartFailed) return finish(kPluginFailed);
      if (next == Next::StartFailedForNow || next == Next::SessionLost) return finish(kEngineLost);
      if (stopRequested) break;
    }
    if (m_instance->started() && m_session && !m_client.peerOf(*m_session)) {
      spdlog::error("the sync engine '{}' closed its session; stopping so that the supervisor restarts this host "
                    "and the sync engine resumes it",
                    m_syncPeer);
      return finish(kEngineLost);
    }
    const auto now = Clock::now();
    const bool periodic = now >= nextPoll;
    if (m_instance->started() && (periodic || woken)) {
      if (auto polled = m_instance->poll(); !polled) {
        const auto& why = polled.error().message;
        if (why != m_lastPollError || now - m_lastPollErrorLogged > 1s) {
          spdlog::warn("poll() of instance '{}' failed with status {}: {}", m_instance->name(), polled.error().status, why);
          m_lastPollError = why;
          m_lastPollErrorLogged = now;
        }
      }
      ++m_polls;
      if (periodic) {
        nextPoll = Clock::now() + m_pollInterval;
        wakeArmed = true;
      } else {
        ++m_wakePolls;
        if (!wakeStillReadable()) {
          readableAfterWake = 0;
        } else if (++readableAfterWake >= kMaxWakePollsInARow) {
          wakeArmed = false;
          if (!m_warnedUndrainedWake) {
            spdlog::warn("instance '{}': its wake descriptor {} stayed readable after {} polls in a row; poll() must "
                         "read it empty (see set_wake_fd in plugin.h). Until it does, the host wakes it only every "
                         "--poll-ms and once more after",
                         m_instance->name(), m_instance->wakeFd(), kMaxWakePollsInARow);
            m_warnedUndrainedWake = true;
          }
        }
      }
      woken = false;
    }
    // Rounded up: truncating would turn the last fraction of a millisecond before each poll into
    // a busy loop of zero-timeout poll(2) calls.
    const auto wait = m_instance->started() ? std::chrono::ceil<std::chrono::milliseconds>(nextPoll - Clock::now())
                                            : std::chrono::milliseconds(200);
    const int wakeFd = m_instance->started() && wakeArmed ? m_instance->wakeFd() : -1;
    pollfd p[2] = {{m_client.pollFd(), POLLIN, 0}, {wakeFd, POLLIN, 0}};
    const nfds_t count = wakeFd >= 0 ? 2 : 1;
    const int timeout = static_cast<int>(std::max<std::int64_t>(0, wait.count()));
    if (::poll(p, count, timeout) < 0 && errno != EINTR) {
      spdlog::error("poll on the engine's descriptor failed: {}", std::strerror(errno));
      return finish(kEngineLost);
    }
    if (count == 2 && p[1].revents != 0) {
      if ((p[1].revents & POLLNVAL) != 0) {
        spdlog::warn("instance '{}' closed its wake descriptor {} without calling set_wake_fd(-1); the host polls it "
                     "every --poll-ms only from now on",
                     m_instance->name(), wakeFd);
        m_instance->dropWakeFd();
      } else {
        woken = true;
      }
    }
  }
  spdlog::info("stopping instance '{}' on a signal", m_instance->name());
  return finish(kStoppedCleanly);
}

}  // namespace ipcsync::plugin_host
