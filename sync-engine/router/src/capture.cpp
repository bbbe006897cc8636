// Capture: Emit frames -> whole transactions -> the journal (group commit) -> Acknowledge.
//
// While the journal is full nothing is acknowledged and what sources emit waits here, in memory.
// That memory is bounded (heldBytesBound): beyond it a source's further change-sets are not kept
// ("dropping"); the source still has them (it deletes a change-set only once acknowledged). Once the
// journal took what was held and is below its warning level again, the source's session is
// closed: its host ends, its supervisor starts it again, and Start(journaled_through) makes it
// emit everything after what the journal holds. The session stays open while dropping, so the
// instance's own deliveries (as a subscriber) keep draining the journal meanwhile.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "ipcsync/plugin_sdk/changeset.h"

#include "router_impl.h"

namespace ipcsync::sync {

namespace {

// Per source, while it is dropping. Kept here rather than in Link (router_impl.h belongs to the
// delivery side); Links live in Impl::links, a std::map, so their addresses are stable.
struct Overflow {
  std::uint64_t generation = 0;  // the session it started in; a new session (Start) ends it
  std::uint64_t from = 0;        // first origin sequence not kept
  std::uint64_t dropped = 0;     // emit frames not kept
};
std::map<const Link*, Overflow>& overflows() {
  static std::map<const Link*, Overflow> m;
  return m;
}

// Per source whose next change-set is larger than the journal's whole bound: it can never be
// journaled, so the source is held (with bounded memory, as when the journal is full) until an
// operator raises journal.max_bytes and restarts the sync engine. Value: that origin sequence.
std::map<const Link*, std::uint64_t>& oversized() {
  static std::map<const Link*, std::uint64_t> m;
  return m;
}

bool journalHoldsBack(const Router::Impl& r) {
  for (const auto& [name, link] : r.links)
    if (link.heldBack) return true;
  return false;
}

std::uint64_t entryBytes(const std::vector<std::vector<unsigned char>>& pieces) {
  std::uint64_t n = 0;
  for (const auto& p : pieces) n += p.size();
  return n;
}

// Entries waiting that an append could take (not behind an oversized change-set).
std::size_t batchable(const Router::Impl& r) {
  std::size_t n = 0;
  for (const auto& [name, link] : r.links)
    if (!oversized().contains(&link)) n += link.ready.size();
  return n;
}

}  // namespace

// Also declared where sync.json is written (status_file.cpp).
std::uint64_t heldBytes(const Link& link);
std::uint64_t droppedWhileFull(const Link& link);
std::uint64_t oversizedChangeSet(const Link& link);
std::uint64_t heldBytesBound(const JournalConfig& journal);

std::uint64_t heldBytes(const Link& link) {
  std::uint64_t n = link.collecting ? entryBytes(link.collecting->pieces) : 0;
  for (const auto& e : link.ready) n += entryBytes(e.pieces);
  return n;
}

std::uint64_t oversizedChangeSet(const Link& link) {
  const auto it = oversized().find(&link);
  return it == oversized().end() ? 0 : it->second;
}

std::uint64_t droppedWhileFull(const Link& link) {
  const auto it = overflows().find(&link);
  return it == overflows().end() ? 0 : it->second.dropped;
}

std::uint64_t heldBytesBound(const JournalConfig& journal) {
  // A quarter of the journal's own bound, within [64 KiB, 64 MiB]; a single change-set above it
  // is still taken whole (the bound is checked before a change-set starts).
  return std::clamp<std::uint64_t>(journal.maxBytes / 4, 64u << 10, 64u << 20);
}

void Router::Impl::onEmit(Link& link, const wire::Envelope& e) {
  ++link.emitted;
  if (auto it = overflows().find(&link); it != overflows().end()) {
    if (it->second.generation == link.generation) {
      ++it->second.dropped;  // not kept: emitted again after the host's restart
      return;
    }
    spdlog::info("plugin host '{}' was started again after sequence {}; what it emitted while the journal was full "
                 "({} frames from sequence {}) comes again now",
                 link.instance, std::max(link.journaledThrough, link.highestReady), it->second.dropped, it->second.from);
    overflows().erase(it);
  }
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
  if (e.pieceIndex == 0 && (journalHoldsBack(*this) || oversized().contains(&link))) {
    const std::uint64_t held = heldBytes(link), bound = heldBytesBound(options.topology.journal);
    if (held >= bound) {
      spdlog::warn("journal full: plugin host '{}' already has {} bytes of change-sets waiting in memory (at most {}); "
                   "its change-sets from sequence {} on are not kept but stay with the host, which emits them again "
                   "once the journal has room (its session is then closed and it is restarted)",
                   link.instance, held, bound, e.sequence);
      overflows()[&link] = Overflow{link.generation, e.sequence, 1};
      c.reset();
      return;
    }
  }
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

namespace {

// The sources kept dropping whose held change-sets are journaled, once the journal is below its
// warning level (so a slowly draining journal does not restart them over and over).
void restartDroppedSources(Router::Impl& r) {
  if (overflows().empty() || journalHoldsBack(r) || r.usage.nearlyFull) return;
  for (auto it = overflows().begin(); it != overflows().end();) {
    Link& link = const_cast<Link&>(*it->first);
    if (link.generation != it->second.generation) {
      it = overflows().erase(it);  // started again since: Start asked for everything after the journal
      continue;
    }
    if (!link.session) {
      ++it;  // on its way back
      continue;
    }
    if (!link.ready.empty()) {
      ++it;
      continue;
    }
    const std::string why = "the journal has room again; it emitted " + std::to_string(it->second.dropped) +
                            " frames from sequence " + std::to_string(it->second.from) +
                            " while the journal was full, which it must emit again after its restart";
    r.lose(link, why);
    ++it;
  }
}

}  // namespace

void Router::Impl::commitCaptures(bool force) {
  restartDroppedSources(*this);
  const auto& cfg = options.topology.journal;
  std::size_t waiting = 0;
  Clock::time_point oldest = Clock::time_point::max();
  bool anyHeld = false;
  for (auto& [name, link] : links) {
    waiting += link.ready.size();
    if (!link.ready.empty()) oldest = std::min(oldest, link.oldestReady);
    anyHeld |= link.heldBack;
  }
  if (waiting == 0 || batchable(*this) == 0) return;
  if (!force && waiting < cfg.groupCommitMax && Clock::now() - oldest < cfg.groupCommit) return;
  if (anyHeld && !force) return;  // the journal is full: housekeeping retries after prune()
  std::vector<JournalEntry> batch;
  std::vector<std::pair<Link*, std::size_t>> taken;
  for (auto& [name, link] : links) {
    if (!link.ready.empty() && entryBytes(link.ready.front().pieces) > cfg.maxBytes) {
      const JournalEntry& big = link.ready.front();
      if (oversized().emplace(&link, big.originSequence).second)
        spdlog::error("plugin host '{}' emitted change-set {} of {} bytes, more than the journal's whole bound of {} "
                      "bytes (journal.max_bytes): it can never be journaled, so '{}' is held back from here on (its "
                      "change-sets stay with it). Raise journal.max_bytes above {} (or have the plugin cut smaller "
                      "change-sets, e.g. crm's batch_rows) and restart the sync engine",
                      link.instance, big.originSequence, entryBytes(big.pieces), cfg.maxBytes, link.instance,
                      entryBytes(big.pieces));
      continue;
    }
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
  // The warning before the bound, as soon as an append crosses the warning level (housekeeping
  // looks only once a second; a burst can go from below it to full in less).
  refreshUsage();
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
