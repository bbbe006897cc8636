// The sync engine's loop: connect hosts, drain messages, group-commit captures, deliver, and
// every so often prune, pick up operator requests and publish sync.json.
#include "ipcsync/sync/router.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "router_impl.h"

namespace ipcsync::sync {

using namespace std::chrono_literals;

std::int64_t nowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::filesystem::path defaultRuntimeDir() {
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return std::filesystem::path(x) / "ipcsync";
  return "/tmp/ipcsync-" + std::to_string(::getuid());
}

namespace {
std::filesystem::path defaultJournalPath(const std::string& ns) {
  std::filesystem::path base;
  if (const char* s = std::getenv("XDG_STATE_HOME"); s && *s) base = s;
  else if (const char* h = std::getenv("HOME"); h && *h) base = std::filesystem::path(h) / ".local/state";
  else base = "/tmp/ipcsync-" + std::to_string(::getuid());
  return base / "ipcsync" / ns / "journal.db";
}
}  // namespace

Router::Router(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Router::~Router() = default;

std::expected<std::unique_ptr<Router>, StartupError> Router::create(RouterOptions options) {
  auto impl = std::make_unique<Impl>();
  auto plan = planDeliveries(options.topology);
  if (!plan) return std::unexpected(StartupError{ExitCode::Usage, "topology: " + plan.error()});
  if (plan->empty()) return std::unexpected(StartupError{ExitCode::Usage, "topology: no routes; add at least one"});
  if (options.topology.journal.path.empty()) options.topology.journal.path = defaultJournalPath(options.ns);
  std::error_code ec;
  std::filesystem::create_directories(options.topology.journal.path.parent_path(), ec);
  auto journal = Journal::open(options.topology.journal);
  if (!journal) return std::unexpected(StartupError{ExitCode::JournalFailed, "journal: " + journal.error().message});
  impl->journal = std::move(*journal);
  // Every (route, subscriber) holds retention from the start, also one whose host has not been
  // reached yet (stopped, or not started): otherwise prune() goes by the other cursors alone and
  // drops change-sets that subscriber never received.
  for (const auto& d : *plan)
    if (auto c = impl->journal->cursor(d.route, d.subscriber); !c)
      return std::unexpected(StartupError{ExitCode::JournalFailed, "journal: " + c.error().message});
  // A pair the topology no longer has would hold retention back for ever (the journal fills, and
  // then every source is held back): forget it. Its subscriber keeps its own last applied
  // sequence, so a route that comes back resumes where it was as far as the journal still reaches.
  auto pairs = impl->journal->cursors();
  if (!pairs) return std::unexpected(StartupError{ExitCode::JournalFailed, "journal: " + pairs.error().message});
  for (const auto& c : *pairs) {
    const bool planned = std::ranges::any_of(*plan, [&](const Delivery& d) {
      return d.route == c.route && d.subscriber == c.subscriber;
    });
    if (planned) continue;
    if (auto dropped = impl->journal->dropCursor(c.route, c.subscriber); !dropped)
      return std::unexpected(StartupError{ExitCode::JournalFailed, "journal: " + dropped.error().message});
    spdlog::info("route '{}' to '{}' is no longer in the topology: its journal cursor (at sequence {}) is dropped, so "
                 "it no longer holds change-sets back",
                 c.route, c.subscriber, c.sequence);
  }
  ConnectOptions connect;
  connect.ns = options.ns;
  connect.name = "sync";
  connect.runtimeDir = options.runtimeDir;
  auto client = Client::connect(connect);
  if (!client)
    return std::unexpected(StartupError{ExitCode::EngineLost, "cannot register as 'sync' in namespace '" + options.ns +
                                                                  "': " + client.error().message()});
  impl->client = std::move(*client);
  // Hosts never open sessions to us; nobody else should.
  impl->client->setSessionPolicy([](std::string_view) { return false; });
  const auto runtime = options.runtimeDir.empty() ? defaultRuntimeDir() : options.runtimeDir;
  impl->statusPath = runtime / options.ns / "sync.json";
  for (const auto& name : instancesOf(*plan)) impl->links[name].instance = name;
  for (auto& d : *plan) impl->deliveries.push_back(DeliveryState{.plan = std::move(d)});
  impl->options = std::move(options);
  spdlog::info("sync engine registered in namespace '{}': {} deliveries over {} plugin instances; journal '{}'",
               impl->options.ns, impl->deliveries.size(), impl->links.size(), impl->journal->path().string());
  return std::unique_ptr<Router>(new Router(std::move(impl)));
}

void Router::Impl::dispatch(const Message& m) {
  Link* link = linkOf(m.session());
  if (!link) return;  // a session we already closed
  if (link->pending && link->pending->correlation != 0 && m.correlation() == link->pending->correlation) {
    onApplyAnswer(*link, m);
    return;
  }
  auto kind = wire::peekKind(m.bytes());
  if (!kind) {
    spdlog::warn("plugin host '{}' sent a frame the sync engine cannot read: {}", link->instance, kind.error());
    return;
  }
  switch (*kind) {
    case wire::Kind::Emit: {
      auto e = wire::decode<wire::Envelope>(m.bytes());
      if (!e) spdlog::warn("plugin host '{}': {}", link->instance, e.error());
      else onEmit(*link, *e);
      return;
    }
    case wire::Kind::SnapshotPiece: {
      auto e = wire::decode<wire::Envelope>(m.bytes());
      if (!e) {
        spdlog::warn("plugin host '{}': {}", link->instance, e.error());
      } else if (snapshot && snapshot->source == link->instance && e->route.value_or("") == snapshot->route) {
        const auto* b = reinterpret_cast<const unsigned char*>(e->data.data());
        snapshot->pieces.emplace_back(b, b + e->data.size());
      } else {
        spdlog::warn("plugin host '{}' sent a snapshot piece for route '{}' nobody asked for; ignored", link->instance,
                     e->route.value_or(""));
      }
      return;
    }
    case wire::Kind::Conflict: {
      auto c = wire::decode<wire::Conflict>(m.bytes());
      if (!c) spdlog::warn("plugin host '{}': {}", link->instance, c.error());
      else onConflict(*link, *c);
      return;
    }
    case wire::Kind::Failure: {
      auto f = wire::decode<wire::Failure>(m.bytes());
      spdlog::warn("plugin host '{}' reported a failure: {}", link->instance, f ? f->message : f.error());
      return;
    }
    default:
      return;  // Ok to an Acknowledge, or a late answer to a request that timed out
  }
}

void Router::Impl::pump(std::chrono::milliseconds wait) {
  if (wait.count() > 0) {
    pollfd p{client->pollFd(), POLLIN, 0};
    (void)::poll(&p, 1, static_cast<int>(wait.count()));
  }
  for (int i = 0; i < 4096 && !fatal; ++i) {
    auto m = client->tryReceive();
    if (!m) {
      spdlog::error("lost the engine: {}", m.error().message());
      fatal = ExitCode::EngineLost;
      return;
    }
    if (!m->valid()) return;
    dispatch(*m);
    client->release(std::move(*m));
  }
}

ExitCode Router::run(const volatile std::sig_atomic_t& stop) {
  Impl& s = *m_impl;
  s.lastRate = Clock::now();
  while (!s.fatal) {
    if (stop) {
      s.stopping = true;
      spdlog::info("stopping: waiting for the answers to Applies in flight, journaling what was received, then exiting");
      // Bounded: a stalled subscriber is not waited for (its next session resumes from LastApplied).
      s.drainPending(Clock::now() + std::min<std::chrono::milliseconds>(s.options.applyTimeout, 5s));
      s.pump(0ms);
      s.commitCaptures(true);
      if (auto u = s.journal->usage()) s.usage = *u;
      s.writeStatus();
      return ExitCode::Stopped;
    }
    if (!s.client->engineAlive()) {
      spdlog::error("the engine of namespace '{}' went away", s.options.ns);
      return ExitCode::EngineLost;
    }
    s.connectHosts();
    s.pump(0ms);
    s.commitCaptures(false);
    s.checkPending();
    // Each subscriber without an Apply outstanding gets its next one; answers arrive through
    // dispatch(), so no subscriber waits for another.
    bool busy = false;
    for (auto& d : s.deliveries) {
      if (stop || s.fatal) break;
      busy |= s.deliver(d);
    }
    const auto now = Clock::now();
    if (now >= s.nextHousekeeping) {
      s.housekeeping();
      s.nextHousekeeping = now + 1s;
    }
    // Operator requests every second, and as soon as a subscriber one waits for is free.
    bool operatorTurn = false;
    for (auto& [name, l] : s.links) operatorTurn |= l.operatorWaiting && !l.pending;
    if ((now >= s.nextOperator || operatorTurn) && !s.fatal) {
      s.operatorRequests();
      s.nextOperator = now + 1s;
    }
    if (now >= s.nextStatus) {
      if (auto u = s.journal->usage()) s.usage = *u;
      s.writeStatus();
      s.nextStatus = now + 200ms;
    }
    bool waiting = false;
    for (auto& [name, l] : s.links) waiting |= !l.ready.empty();
    if (!busy)
      s.pump(waiting ? std::max<std::chrono::milliseconds>(1ms, s.options.topology.journal.groupCommit) : 20ms);
  }
  return *s.fatal;
}

}  // namespace ipcsync::sync
