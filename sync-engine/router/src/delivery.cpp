// Delivery: per (route, subscriber), journal entries after the cursor -> transform -> Apply in
// pieces -> cursor; retries with back-off, dead letters, the first snapshot, parked conflicts
// and the operator's requests.
#include <ipcsync/plugin.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "ipcsync/plugin_sdk/changeset.h"
#include "router_impl.h"

namespace ipcsync::sync {

using namespace std::chrono_literals;

std::vector<std::vector<unsigned char>> split(const std::vector<unsigned char>& changeset, std::uint64_t pieceBytes,
                                              std::string& error) {
  auto pieces = plugin_sdk::splitChangeset(changeset, static_cast<std::size_t>(pieceBytes));
  if (!pieces) {
    error = pieces.error();
    return {};
  }
  return std::move(*pieces);
}

int toPolicy(ConflictPolicy p) {
  switch (p) {
    case ConflictPolicy::SourceWins: return IPCSYNC_CONFLICT_SOURCE_WINS;
    case ConflictPolicy::TargetWins: return IPCSYNC_CONFLICT_TARGET_WINS;
    case ConflictPolicy::LastWriterWins: return IPCSYNC_CONFLICT_LAST_WRITER_WINS;
    case ConflictPolicy::Park: return IPCSYNC_CONFLICT_PARK;
  }
  return IPCSYNC_CONFLICT_SOURCE_WINS;
}

Router::Impl::Outcome Router::Impl::applyEntry(DeliveryState& d, Link& subscriber, const std::string& route,
                                               std::uint64_t sequence, const JournalEntry& entry,
                                               const std::vector<std::vector<unsigned char>>& pieces,
                                               std::optional<ConflictPolicy> policy, CallError* error) {
  const auto provenance = appliedProvenance(d.plan, entry);
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    wire::Envelope e;
    e.origin = entry.origin;
    e.sequence = sequence;
    e.route = route;
    e.commitTimeUs = entry.commitTimeUs;
    e.provenance = provenance;
    e.pieceIndex = static_cast<std::uint32_t>(i);
    e.pieceCount = static_cast<std::uint32_t>(pieces.size());
    e.conflictPolicy = static_cast<std::uint32_t>(toPolicy(policy.value_or(d.plan.conflict)));
    if (!d.plan.timestampColumn.empty()) e.timestampColumn = d.plan.timestampColumn;
    e.data = std::as_bytes(std::span(pieces[i]));
    auto reply = call(subscriber, wire::Kind::Apply, e, options.applyTimeout);
    if (!reply) {
      if (error) *error = reply.error();
      return reply.error().what == CallError::What::Lost ? Outcome::Lost : Outcome::Failed;
    }
    auto r = reply->kind == wire::Kind::ApplyResult ? wire::decode<wire::ApplyResult>(reply->frame)
                                                    : std::unexpected(std::string("answered Apply with ") +
                                                                      std::string(wire::name(reply->kind)));
    if (!r) {
      if (error) *error = CallError{CallError::What::Protocol, IPCSYNC_EINTERNAL, r.error()};
      return Outcome::Failed;
    }
    d.rows += r->changesApplied;
    d.conflicts += r->conflicts;
    if (r->status == IPCSYNC_DUPLICATE) return Outcome::Duplicate;
  }
  return Outcome::Applied;
}

bool Router::Impl::prepare(DeliveryState& d) {
  Link& sub = links.at(d.plan.subscriber);
  Link& src = links.at(d.plan.source);
  if (!sub.session) return false;
  if (!d.transform) {
    if (!src.described || !sub.described) return false;
    auto t = ChangesetTransform::create(d.plan.rules, src.schemas, sub.schemas);
    if (!t) {
      const std::string why = "route '" + d.plan.route + "' from '" + d.plan.source + "' to '" + d.plan.subscriber +
                              "': " + t.error() + "; fix the topology and restart ipcsync-sync";
      if (why != d.transformError) spdlog::error("{}", why);
      d.transformError = why;
      return false;
    }
    d.transform = std::move(*t);
    d.transformError.clear();
  }
  if (d.syncedGeneration != sub.generation) {
    auto cursor = journal->cursor(d.plan.route, d.plan.subscriber);
    if (!cursor) {
      spdlog::error("journal: {}", cursor.error().message);
      fatal = ExitCode::JournalFailed;
      return false;
    }
    auto reply = call(sub, wire::Kind::LastApplied, wire::LastAppliedRequest{d.plan.route}, 10s);
    if (!reply) {
      spdlog::warn("route '{}': LastApplied from '{}' failed: {}", d.plan.route, d.plan.subscriber, reply.error().message);
      return false;
    }
    auto seq = wire::decode<wire::Sequence>(reply->frame);
    if (!seq) {
      spdlog::warn("route '{}': '{}' answered LastApplied unreadably: {}", d.plan.route, d.plan.subscriber, seq.error());
      return false;
    }
    const std::uint64_t plugins = journalSequenceOf(seq->sequence);
    d.cursor = std::max(*cursor, plugins);
    if (plugins > *cursor) {
      spdlog::info("route '{}': '{}' already applied through journal sequence {}; its cursor moves there from {}",
                   d.plan.route, d.plan.subscriber, plugins, *cursor);
      if (auto a = journal->advance(d.plan.route, d.plan.subscriber, d.cursor); !a)
        spdlog::warn("journal: {}", a.error().message);
    }
    resumeSnapshot(d, seq->sequence);
    d.skippedThrough = d.cursor;
    d.syncedGeneration = sub.generation;
  }
  if (d.plan.snapshot && !d.snapshotChecked) {
    if (!src.session) return false;  // wait for the source
    takeSnapshot(d, src, sub);
    return d.snapshotChecked;
  }
  return true;
}

bool Router::Impl::deliver(DeliveryState& d) {
  if (Clock::now() < d.nextTry || !prepare(d)) return false;
  Link& sub = links.at(d.plan.subscriber);
  const auto tables = d.transform->sourceTables();
  // The head before the read: entries the read filters out (other tables, or ones that already
  // passed through the subscriber) never come back to move the cursor, so a caught-up delivery
  // moves it there itself; otherwise its lag would grow and retention would keep everything.
  const auto state = journal->usage();
  auto entries = journal->read(std::max(d.cursor, d.skippedThrough), options.batch, tables, d.plan.subscriber);
  if (!entries) {
    if (entries.error().kind != JournalError::Kind::Busy) spdlog::error("journal: {}", entries.error().message);
    return false;
  }
  if (entries->empty() && state && state->head > std::max(d.cursor, d.skippedThrough)) d.skippedThrough = state->head;
  d.backlog = entries->size() >= options.batch;
  d.oldestUndeliveredUs = 0;
  bool worked = false;
  const auto persistSkips = [&] {
    if (d.skippedThrough > d.cursor) {
      d.cursor = d.skippedThrough;
      if (auto a = journal->advance(d.plan.route, d.plan.subscriber, d.cursor); !a) spdlog::warn("journal: {}", a.error().message);
    }
  };
  const auto carried = [&](const JournalEntry& x) {
    const bool inSnapshot = d.snapshotFloor && x.origin == d.plan.source && x.originSequence <= *d.snapshotFloor;
    return travels(d.plan, x) && !inSnapshot;
  };
  // An entry's change-set for the subscriber. On a route that carries its tables as they are, the
  // journaled bytes (pieces are whole changes, so they concatenate) go without being decoded and
  // encoded again; the entry's table list comes from its own changes, read when it was captured.
  const auto transformed = [&](const JournalEntry& x) -> std::expected<std::vector<unsigned char>, std::string> {
    if (!d.snapshotTableFloors.empty() && x.origin == d.plan.source) {
      // Between the first and the last table's snapshot: without the tables whose snapshot has it.
      std::vector<TableRule> rules;
      bool partly = false;
      if (d.plan.rules.empty())
        for (const auto& t : d.transform->sourceTables()) rules.push_back(TableRule{.table = t});
      else
        rules = d.plan.rules;
      std::erase_if(rules, [&](const TableRule& r) {
        const auto f = d.snapshotTableFloors.find(r.table);
        const bool inIt = f != d.snapshotTableFloors.end() && x.originSequence <= f->second;
        partly |= inIt;
        return inIt;
      });
      if (partly) {
        if (rules.empty()) return std::vector<unsigned char>{};
        auto narrower = ChangesetTransform::create(rules, links.at(d.plan.source).schemas, sub.schemas);
        if (!narrower) return std::unexpected(narrower.error());
        auto out = narrower->apply(x.pieces);
        if (!out) return std::unexpected(out.error());
        return std::move(out->changeset);
      }
    }
    if (d.transform->passesThrough(x.tables)) {
      std::vector<unsigned char> all;
      for (const auto& p : x.pieces) all.insert(all.end(), p.begin(), p.end());
      return all;
    }
    auto out = d.transform->apply(x.pieces);
    if (!out) return std::unexpected(out.error());
    return std::move(out->changeset);
  };
  const std::uint64_t pieceBytes = options.topology.journal.pieceBytes;
  for (std::size_t next = 0; next < entries->size();) {
    if (stopping || fatal || !sub.session) break;
    const JournalEntry& e = (*entries)[next++];
    if (!carried(e)) {
      d.skippedThrough = e.sequence;
      continue;
    }
    if (d.oldestUndeliveredUs == 0) d.oldestUndeliveredUs = e.commitTimeUs;
    std::string failure;
    bool quarantine = false;
    std::vector<std::vector<unsigned char>> pieces;
    // What this Apply carries: e, and the entries after it that join it (a batch), through `last`
    // (the last one with changes) and `through` (the last one it passes, changes or not).
    const JournalEntry* last = &e;
    std::uint64_t through = e.sequence;
    std::size_t members = 1;
    auto out = transformed(e);
    if (!out) {
      failure = "cannot transform: " + out.error();
      quarantine = true;
    } else if (out->empty()) {
      d.skippedThrough = e.sequence;  // nothing of it travels here
      continue;
    } else if (out->size() > pieceBytes) {
      pieces = split(*out, pieceBytes, failure);
      quarantine = pieces.empty();
    } else {
      // Batching: consecutive entries of the same origin and provenance share one Apply while the
      // change-set stays within one piece. The subscriber applies it as one transaction recorded
      // under the last entry's sequence, so it takes effect whole or not at all, exactly once; a
      // change-set is a sequence of table sections, so the entries' change-sets concatenate.
      std::vector<unsigned char> batch = std::move(*out);
      if (e.sequence > d.singlesThrough) {
        const auto provenance = appliedProvenance(d.plan, e);
        while (next < entries->size()) {
          const JournalEntry& f = (*entries)[next];
          if (!carried(f)) {
            through = f.sequence;
            ++next;
            continue;
          }
          if (f.origin != e.origin || appliedProvenance(d.plan, f) != provenance) break;
          auto more = transformed(f);
          if (!more) break;  // quarantined on its own, next
          if (batch.size() + more->size() > pieceBytes) break;
          batch.insert(batch.end(), more->begin(), more->end());
          through = f.sequence;
          if (!more->empty()) {
            last = &f;
            ++members;
          }
          ++next;
        }
      }
      pieces.push_back(std::move(batch));
    }
    persistSkips();
    worked = true;
    if (!quarantine) {
      CallError error;
      const auto outcome = applyEntry(d, sub, d.plan.route, applySequence(last->sequence), *last, pieces, std::nullopt, &error);
      if (outcome == Outcome::Lost) return true;
      if (outcome == Outcome::Applied || outcome == Outcome::Duplicate) {
        if (outcome == Outcome::Applied) d.applied += members;
        else d.duplicates += members;
        d.cursor = d.skippedThrough = through;
        d.attempts = 0;
        d.failingSequence = 0;
        d.oldestUndeliveredUs = 0;
        if (auto a = journal->advance(d.plan.route, d.plan.subscriber, d.cursor); !a)
          spdlog::warn("journal: {}", a.error().message);
        continue;
      }
      ++d.errors;
      if (members > 1) {
        // Which entry failed is unknown: each gets its own Apply, retries and dead letter.
        d.singlesThrough = last->sequence;
        d.lastError = error.message;
        spdlog::warn("route '{}': '{}' failed a batch of {} change-sets (journal sequences {}..{}): {}; applying them "
                     "one at a time",
                     d.plan.route, d.plan.subscriber, members, e.sequence, last->sequence, error.message);
        return true;
      }
      if (d.failingSequence != e.sequence) {
        d.failingSequence = e.sequence;
        d.attempts = 0;
      }
      ++d.attempts;
      failure = error.message;
      d.lastError = failure;
      quarantine = error.status == IPCSYNC_ESCHEMA || d.attempts >= d.plan.maxRetries;
      if (!quarantine) {
        const auto backoff = std::min<std::chrono::milliseconds>(100ms * (1u << std::min(d.attempts, 6u)), 5s);
        spdlog::warn("route '{}': '{}' failed journal sequence {} (attempt {} of {}): {}; retrying in {} ms",
                     d.plan.route, d.plan.subscriber, e.sequence, d.attempts, d.plan.maxRetries, failure, backoff.count());
        d.nextTry = Clock::now() + backoff;
        return true;
      }
    }
    DeadLetter letter{.route = d.plan.route, .subscriber = d.plan.subscriber, .sequence = e.sequence, .error = failure,
                      .attempts = std::max<std::uint32_t>(d.attempts, 1), .failedAtUs = nowUs()};
    if (auto added = journal->addDeadLetter(letter); !added) {
      spdlog::error("journal: cannot record dead letter for sequence {}: {}", e.sequence, added.error().message);
      d.nextTry = Clock::now() + 1s;
      return true;
    }
    ++d.deadLetters;
    spdlog::error("route '{}': journal sequence {} (from '{}' sequence {}) moved to the dead letters for '{}' after {} "
                  "attempt(s): {}; the route carries on (`ipcsync deadletter` lists it, replay retries it)",
                  d.plan.route, e.sequence, e.origin, e.originSequence, d.plan.subscriber, letter.attempts, failure);
    d.attempts = 0;
    d.failingSequence = 0;
    d.cursor = d.skippedThrough = e.sequence;
    if (auto a = journal->advance(d.plan.route, d.plan.subscriber, d.cursor); !a) spdlog::warn("journal: {}", a.error().message);
  }
  persistSkips();
  return worked || d.backlog;
}

void Router::Impl::deliverAll() {
  for (auto& d : deliveries) {
    if (stopping || fatal) return;
    deliver(d);
  }
}

void Router::Impl::onConflict(Link& link, const wire::Conflict& c) {
  ParkedConflict p;
  p.route = c.route;
  p.origin = c.origin;
  p.subscriber = link.instance;
  p.table = c.table;
  p.kind = c.kind;
  p.sequence = journalSequenceOf(c.sequence);
  p.keyJson = c.keyJson;
  p.sourceJson = c.sourceJson.value_or("null");
  p.targetJson = c.targetJson.value_or("null");
  const auto* bytes = reinterpret_cast<const unsigned char*>(c.change.data());
  p.change.assign(bytes, bytes + c.change.size());
  p.parkedAtUs = nowUs();
  if (auto id = journal->park(p); !id)
    spdlog::error("journal: cannot park a conflict on route '{}' table '{}' key {}: {}", c.route, c.table, c.keyJson,
                  id.error().message);
  else
    spdlog::warn("route '{}': conflict ({}) on '{}' table '{}' key {} parked as #{}; resolve with `ipcsync conflicts`",
                 c.route, c.kind, link.instance, c.table, c.keyJson, *id);
}

void Router::Impl::operatorRequests() {
  const auto find = [&](const std::string& route, const std::string& subscriber) -> DeliveryState* {
    for (auto& d : deliveries)
      if (d.plan.route == route && d.plan.subscriber == subscriber) return &d;
    return nullptr;
  };
  if (auto open = journal->conflicts(true)) {
    for (const auto& c : *open) {
      if (c.resolution == ConflictResolution::TakeTargetRequested) {
        if (auto m = journal->markResolved(c.id); !m) spdlog::warn("journal: {}", m.error().message);
        else spdlog::info("conflict #{} resolved: the target '{}' keeps its row", c.id, c.subscriber);
        continue;
      }
      if (c.resolution != ConflictResolution::TakeSourceRequested) continue;
      DeliveryState* d = find(c.route, c.subscriber);
      if (!d || !links.at(c.subscriber).session) continue;
      JournalEntry entry;
      entry.origin = c.origin;
      entry.commitTimeUs = nowUs();
      entry.provenance = {c.origin};
      CallError error;
      const auto outcome = applyEntry(*d, links.at(c.subscriber), c.route + "#conflict-" + std::to_string(c.id),
                                      applySequence(std::max<std::uint64_t>(c.sequence, 1)), entry, {c.change},
                                      ConflictPolicy::SourceWins, &error);
      if (outcome == Outcome::Applied || outcome == Outcome::Duplicate) {
        if (auto m = journal->markResolved(c.id); !m) spdlog::warn("journal: {}", m.error().message);
        else spdlog::info("conflict #{} resolved: the source's change was applied to '{}'", c.id, c.subscriber);
      } else {
        spdlog::warn("conflict #{}: applying the source's change to '{}' failed: {}; trying again later", c.id,
                     c.subscriber, error.message);
      }
    }
  }
  auto letters = journal->deadLetters();
  if (!letters) return;
  for (const auto& l : *letters) {
    if (!l.replayRequested) continue;
    DeliveryState* d = find(l.route, l.subscriber);
    if (!d || !d->transform || !links.at(l.subscriber).session) continue;
    auto entries = journal->read(l.sequence - 1, 1);
    std::string failure;
    if (!entries || entries->empty() || entries->front().sequence != l.sequence) {
      failure = "the change-set (journal sequence " + std::to_string(l.sequence) + ") is no longer in the journal";
    } else {
      const JournalEntry& e = entries->front();
      auto out = d->transform->apply(e.pieces);
      if (!out) failure = out.error();
      else if (!out->changeset.empty()) {
        auto pieces = split(out->changeset, options.topology.journal.pieceBytes, failure);
        CallError error;
        const auto outcome = applyEntry(*d, links.at(l.subscriber), l.route + "#deadletter-" + std::to_string(l.id),
                                        applySequence(e.sequence), e, pieces, std::nullopt, &error);
        if (outcome == Outcome::Lost) continue;
        if (outcome == Outcome::Failed) failure = error.message;
      }
    }
    if (failure.empty()) {
      if (auto r = journal->removeDeadLetter(l.id); !r) spdlog::warn("journal: {}", r.error().message);
      else spdlog::info("dead letter #{} (route '{}', sequence {}) replayed to '{}'", l.id, l.route, l.sequence, l.subscriber);
      continue;
    }
    // Failed again: the same letter (same id, for the operator) is updated in place, so a crash
    // here can never lose it and let retention drop its change-set.
    DeadLetter again = l;
    again.attempts = l.attempts + 1;
    again.error = failure;
    again.failedAtUs = nowUs();
    again.replayRequested = false;
    if (auto r = journal->addDeadLetter(again); !r) {
      spdlog::warn("journal: {}", r.error().message);
      continue;
    }
    spdlog::error("dead letter #{} (route '{}', sequence {}) failed again on '{}': {}", l.id, l.route, l.sequence,
                  l.subscriber, failure);
  }
}

void Router::Impl::refreshUsage() {
  auto u = journal->usage();
  if (!u) return;
  usage = *u;
  if (usage.nearlyFull && !journalWarned)
    spdlog::warn("journal '{}' holds {} of at most {} bytes ({} change-sets): a subscriber is behind; sources are "
                 "held back when it is full",
                 journal->path().string(), usage.bytes, usage.maxBytes, usage.entries);
  journalWarned = usage.nearlyFull;
}

void Router::Impl::housekeeping() {
  if (auto pruned = journal->prune(); !pruned && pruned.error().kind != JournalError::Kind::Busy)
    spdlog::warn("journal: prune failed: {}", pruned.error().message);
  refreshUsage();
  bool held = false;
  for (auto& [name, link] : links) held |= link.heldBack;
  if (held) commitCaptures(true);
  operatorRequests();
  const auto now = Clock::now();
  const double seconds = std::chrono::duration<double>(now - lastRate).count();
  if (seconds > 0) {
    for (auto& d : deliveries) {
      d.appliedPerSecond = static_cast<double>(d.applied - d.rateApplied) / seconds;
      d.rowsPerSecond = static_cast<double>(d.rows - d.rateRows) / seconds;
      d.rateApplied = d.applied;
      d.rateRows = d.rows;
    }
  }
  lastRate = now;
}

}  // namespace ipcsync::sync
