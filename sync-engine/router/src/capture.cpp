// Capture: Emit frames -> whole transactions -> the journal (group commit) -> Acknowledge.
#include <spdlog/spdlog.h>

#include <set>

#include "ipcsync/plugin_sdk/changeset.h"

#include "router_impl.h"

namespace ipcsync::sync {

void Router::Impl::onEmit(Link& link, const wire::Envelope& e) {
  ++link.emitted;
  if (e.sequence <= std::max(link.journaledThrough, link.highestReady)) {
    ++link.duplicates;  // emitted again (e.g. after back-pressure): we have it
    return;
  }
  if (e.pieceCount == 0 || e.pieceIndex >= e.pieceCount) {
    spdlog::warn("plugin host '{}' emitted sequence {} as piece {} of {}, which is impossible; ignored", link.instance,
                 e.sequence, e.pieceIndex, e.pieceCount);
    return;
  }
  auto& c = link.collecting;
  if (e.pieceIndex == 0) {
    if (c && c->originSequence != e.sequence)
      spdlog::warn("plugin host '{}' started sequence {} before finishing sequence {} ({} of {} pieces); the "
                   "unfinished one is dropped and must be emitted again",
                   link.instance, e.sequence, c->originSequence, c->pieces.size(), c->pieceCount);
    c = Link::Collecting{e.sequence, e.commitTimeUs, e.pieceCount, {}};
  } else if (!c || c->originSequence != e.sequence || c->pieces.size() != e.pieceIndex || c->pieceCount != e.pieceCount) {
    spdlog::warn("plugin host '{}' emitted piece {} of {} of sequence {} out of order; ignored until piece 0 comes again",
                 link.instance, e.pieceIndex, e.pieceCount, e.sequence);
    c.reset();
    return;
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(e.data.data());
  c->pieces.emplace_back(bytes, bytes + e.data.size());
  if (c->pieces.size() < c->pieceCount) return;
  JournalEntry entry;
  entry.origin = link.instance;  // the instance, whatever name the plugin gives itself
  entry.originSequence = c->originSequence;
  entry.commitTimeUs = c->commitTimeUs;
  entry.provenance = {link.instance};
  entry.pieces = std::move(c->pieces);
  std::set<std::string> tables;
  for (const auto& piece : entry.pieces) {
    auto reader = plugin_sdk::ChangesetReader::open(piece);
    if (!reader) break;
    ipcsync_change change{};
    change.struct_size = sizeof change;
    for (;;) {
      auto more = reader->next(change);
      if (!more || !*more) break;
      tables.insert(change.table);
    }
  }
  entry.tables.assign(tables.begin(), tables.end());
  c.reset();
  if (link.ready.empty()) link.oldestReady = Clock::now();
  link.highestReady = entry.originSequence;
  link.ready.push_back(std::move(entry));
}

void Router::Impl::commitCaptures(bool force) {
  const auto& cfg = options.topology.journal;
  std::size_t waiting = 0;
  Clock::time_point oldest = Clock::time_point::max();
  bool anyHeld = false;
  for (auto& [name, link] : links) {
    waiting += link.ready.size();
    if (!link.ready.empty()) oldest = std::min(oldest, link.oldestReady);
    anyHeld |= link.heldBack;
  }
  if (waiting == 0) return;
  if (!force && waiting < cfg.groupCommitMax && Clock::now() - oldest < cfg.groupCommit) return;
  if (anyHeld && !force) return;  // the journal is full: housekeeping retries after prune()
  std::vector<JournalEntry> batch;
  std::vector<std::pair<Link*, std::size_t>> taken;
  for (auto& [name, link] : links) {
    std::size_t n = 0;
    while (n < link.ready.size() && batch.size() < cfg.groupCommitMax) batch.push_back(link.ready[n++]);
    if (n) taken.emplace_back(&link, n);
  }
  auto appended = journal->append(batch);
  if (!appended) {
    if (appended.error().kind == JournalError::Kind::Full) {
      for (auto& [link, n] : taken) {
        if (!link->heldBack)
          spdlog::warn("journal full: {}; holding back plugin host '{}' (no acknowledgements, {} change-sets waiting) "
                       "until retention makes room",
                       appended.error().message, link->instance, link->ready.size());
        link->heldBack = true;
      }
      return;
    }
    if (appended.error().kind == JournalError::Kind::Busy) return;  // try again on the next turn
    spdlog::error("journal: cannot append {} change-sets: {}", batch.size(), appended.error().message);
    fatal = ExitCode::JournalFailed;
    return;
  }
  for (auto& [link, n] : taken) {
    const std::uint64_t through = link->ready[n - 1].originSequence;
    link->ready.erase(link->ready.begin(), link->ready.begin() + static_cast<std::ptrdiff_t>(n));
    link->oldestReady = Clock::now();
    link->journaled += n;
    link->journaledThrough = std::max(link->journaledThrough, through);
    if (link->heldBack) spdlog::info("journal has room again; plugin host '{}' is acknowledged again", link->instance);
    link->heldBack = false;
    if (sendPlain(*link, wire::Kind::Acknowledge, wire::Acknowledge{link->journaledThrough}))
      link->acknowledged = link->journaledThrough;
  }
}

}  // namespace ipcsync::sync
