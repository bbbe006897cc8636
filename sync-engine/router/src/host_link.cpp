// Sessions to plugin hosts: open (retrying while the host is not registered), Describe, Start
// from the journal, and noticing when a host goes away (then reopening when it is back).
#include <spdlog/spdlog.h>

#include "router_impl.h"

namespace ipcsync::sync {

using namespace std::chrono_literals;

Link* Router::Impl::linkOf(SessionId session) {
  for (auto& [name, link] : links)
    if (link.session == session) return &link;
  return nullptr;
}

void Router::Impl::lose(Link& link, const std::string& why) {
  if (!link.session) return;
  spdlog::warn("plugin host '{}' is gone ({}); its deliveries wait, and it is started again from the journal when it "
               "registers again",
               link.instance, why);
  (void)client->closeSession(*link.session);
  link.session.reset();
  link.collecting.reset();  // a half-received transaction is emitted again after the host's restart
  if (link.pending) {
    // Its answer can no longer come. The next session asks LastApplied, which says whether the
    // Apply took effect, so nothing is applied twice or skipped.
    PendingApply job = std::move(*link.pending);
    link.pending.reset();
    spdlog::info("plugin host '{}': the Apply of route '{}' ({}) it had not answered is dropped; its next session "
                 "resumes after what it recorded as applied",
                 link.instance, job.route, job.what());
    finishApply(link, std::move(job), Outcome::Lost, CallError{CallError::What::Lost, 0, why});
  }
  link.nextAttempt = Clock::now() + 100ms;
}

void Router::Impl::connectHosts() {
  for (auto& [name, link] : links) {
    if (link.session && !client->peerOf(*link.session)) lose(link, "its session ended");
    if (link.session || Clock::now() < link.nextAttempt || fatal) continue;
    if (!connect(link)) link.nextAttempt = std::max(link.nextAttempt, Clock::now() + 200ms);
  }
}

// A host that is registered but does not answer (stopped, or hung in its plugin) would block the
// loop for the whole wait of each attempt; attempts are spaced out more and more (up to 30 s), so
// the other hosts' deliveries, captures and sync.json carry on between them.
void Router::Impl::unanswered(Link& link, const std::string& what) {
  const auto wait = std::min<std::chrono::milliseconds>(1000ms * (1u << std::min(link.unanswered, 5u)), 30s);
  ++link.unanswered;
  link.nextAttempt = Clock::now() + wait;
  spdlog::warn("plugin host '{}' is registered but did not answer {}: it is stopped or hung in its plugin; trying "
               "again in {} ms (check the process: `kill -CONT` it if it was stopped, or restart it)",
               link.instance, what, wait.count());
}

bool Router::Impl::connect(Link& link) {
  const std::string peer = "plugin." + link.instance;
  auto session = client->openSession(peer, 1000ms);
  if (!session) {
    const auto code = session.error().code;
    if (code == Errc::EngineGone || code == Errc::Disconnected) {
      fatal = ExitCode::EngineLost;
      return false;
    }
    const std::string why = session.error().message();
    if (code == Errc::Timeout) {
      unanswered(link, "the session request");
      return false;
    }
    if (why != link.lastConnectError) {
      if (code == Errc::NoSuchPeer) spdlog::info("waiting for plugin host '{}' to register", peer);
      else spdlog::warn("cannot open a session to '{}': {}; retrying", peer, why);
      link.lastConnectError = why;
    }
    return false;
  }
  link.lastConnectError.clear();
  link.session = *session;
  auto described = call(link, wire::Kind::Describe, wire::Empty{}, 10s);
  if (!described) {
    spdlog::warn("plugin host '{}' did not describe itself: {}", link.instance, described.error().message);
    lose(link, "Describe failed");
    if (described.error().what == CallError::What::Timeout) unanswered(link, "Describe");
    return false;
  }
  auto d = wire::decode<wire::Description>(described->frame);
  if (!d) {
    spdlog::error("plugin host '{}': {}", link.instance, d.error());
    lose(link, "unreadable Description");
    return false;
  }
  auto schemas = parseDescription(link.instance, d->json);
  if (!schemas) {
    spdlog::error("{}", schemas.error());
    lose(link, "unusable Description");
    return false;
  }
  const bool changed = link.described && *schemas != link.schemas;
  link.schemas = std::move(*schemas);
  link.described = true;
  if (changed) describedAnew(link);
  auto through = journal->journaledThrough(link.instance);
  if (!through) {
    spdlog::error("journal: {}", through.error().message);
    fatal = ExitCode::JournalFailed;
    return false;
  }
  // What we hold in memory but have not journaled yet counts too: it will be, and the host must
  // not emit it again under another commit (it emits again from the next sequence).
  const std::uint64_t from = std::max(*through, link.highestReady);
  link.journaledThrough = std::max(link.journaledThrough, *through);
  auto started = call(link, wire::Kind::Start, wire::Start{from}, 30s);
  if (!started) {
    spdlog::error("plugin host '{}' refused Start(journaled_through={}): {}{}", link.instance, from,
                  started.error().message,
                  started.error().message.find("already started") != std::string::npos
                      ? "; it was started by an earlier sync engine: its supervisor restarts it once this session closes"
                      : "");
    lose(link, "Start failed");
    if (started.error().what == CallError::What::Timeout) unanswered(link, "Start");
    return false;
  }
  link.unanswered = 0;
  ++link.generation;
  spdlog::info("plugin host '{}' started after sequence {} (session {})", link.instance, from, *link.session);
  return true;
}

}  // namespace ipcsync::sync
