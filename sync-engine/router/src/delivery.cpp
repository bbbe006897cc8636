// Delivery: per (route, subscriber), journal entries after the cursor -> transform -> Apply in
// pieces -> cursor; retries with back-off, dead letters, the first snapshot, parked conflicts
// and the operator's requests.
//
// Applies are asynchronous: deliver() sends one and returns; the loop goes on with the other
// subscribers, captures, operator requests and sync.json, and dispatch() hands the answer to
// onApplyAnswer(), which sends the next piece or does the bookkeeping (finishApply()). A
// subscriber has at most one Apply outstanding (Link::pending), so its order is today's. An Apply
// unanswered for --apply-timeout-ms is a stall: warned about once and shown in sync.json
// (stalled_ms), never resent, never counted as a failed attempt, never dead-lettered.
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
  if (subscriber.pending) {
    // Never two Applies outstanding to one subscriber (the pieces of one change-set go back to back).
    if (error)
      *error = CallError{CallError::What::Timeout, 0, "plugin host '" + subscriber.instance +
                                                           "' has an Apply outstanding (" + subscriber.pending->what() +
                                                           "); trying again once it is answered"};
    return Outcome::Failed;
  }
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

std::string PendingApply::what() const {
  std::string w;
  switch (purpose) {
    case Purpose::Deliver:
      w = first == last ? "journal sequence " + std::to_string(first)
                        : "journal sequences " + std::to_string(first) + ".." + std::to_string(last);
      break;
    case Purpose::TakeSource: w = "the source's change of conflict #" + std::to_string(conflictId); break;
    case Purpose::Replay:
      w = "dead letter #" + std::to_string(letter.id) + ", journal sequence " + std::to_string(letter.sequence);
      break;
  }
  if (pieces.size() > 1) w += ", piece " + std::to_string(piece + 1) + " of " + std::to_string(pieces.size());
  return w;
}

PendingApply Router::Impl::applyJob(std::size_t delivery, const std::string& route,
                                   std::uint64_t sequence, const JournalEntry& entry,
                                                  std::vector<std::vector<unsigned char>> pieces,
                                                  std::optional<ConflictPolicy> policy) {
  const DeliveryState& d = deliveries.at(delivery);
  PendingApply job;
  job.delivery = delivery;
  job.route = route;
  job.applySequence = sequence;
  job.origin = entry.origin;
  job.commitTimeUs = entry.commitTimeUs;
  job.provenance = appliedProvenance(d.plan, entry);
  job.conflictPolicy = static_cast<std::uint32_t>(toPolicy(policy.value_or(d.plan.conflict)));
  job.pieces = std::move(pieces);
  return job;
}

wire::Envelope Router::Impl::envelopeOf(const PendingApply& job) const {
  const DeliveryState& d = deliveries.at(job.delivery);
  wire::Envelope e;
  e.origin = job.origin;
  e.sequence = job.applySequence;
  e.route = job.route;
  e.commitTimeUs = job.commitTimeUs;
  e.provenance = job.provenance;
  e.pieceIndex = static_cast<std::uint32_t>(job.piece);
  e.pieceCount = static_cast<std::uint32_t>(job.pieces.size());
  e.conflictPolicy = job.conflictPolicy;
  if (!d.plan.timestampColumn.empty()) e.timestampColumn = d.plan.timestampColumn;
  e.data = std::as_bytes(std::span(job.pieces.at(job.piece)));
  return e;
}

Router::Impl::Sent Router::Impl::sendPiece(Link& subscriber, PendingApply& job, CallError* error) {
  using What = CallError::What;
  if (!subscriber.session) {
    *error = CallError{What::Lost, 0, "plugin host '" + subscriber.instance + "' is not connected"};
    return Sent::Lost;
  }
  // Bounded waits: with one Apply outstanding per subscriber its ring and block have room, so
  // these only wait on a momentarily full block; a piece that cannot go now goes on a later pass.
  const wire::Envelope e = envelopeOf(job);
  auto loan = frameLoan(wire::Kind::Apply, e);
  if (!loan) {
    const auto code = loan.error().code;
    if (code == Errc::TooLarge || code == Errc::InvalidArgument) {
      *error = CallError{What::Protocol, 0, "cannot send Apply to '" + subscriber.instance + "': " + loan.error().message()};
      return Sent::Failed;
    }
    return Sent::Later;
  }
  const std::uint32_t correlation = (nextCorrelation++ & 0x7FFFFFFFu) | 1u;
  if (auto sent = client->send(*subscriber.session, *loan, 2000ms, correlation); !sent) {
    client->abandon(std::move(*loan));
    const auto code = sent.error().code;
    if (code == Errc::EngineGone || code == Errc::Disconnected) {
      fatal = ExitCode::EngineLost;
      *error = CallError{What::Lost, 0, sent.error().message()};
      return Sent::Lost;
    }
    if (code == Errc::SessionClosed || code == Errc::PeerGone) {
      lose(subscriber, sent.error().message());
      *error = CallError{What::Lost, 0, sent.error().message()};
      return Sent::Lost;
    }
    return Sent::Later;
  }
  job.correlation = correlation;
  job.sentAt = Clock::now();
  job.stallWarned = false;
  return Sent::Yes;
}

void Router::Impl::startApply(Link& subscriber, PendingApply job) {
  CallError error;
  switch (sendPiece(subscriber, job, &error)) {
    case Sent::Yes: subscriber.pending = std::move(job); return;
    case Sent::Later:
      job.correlation = 0;
      job.retryAt = Clock::now() + 50ms;
      subscriber.pending = std::move(job);
      return;
    case Sent::Lost: finishApply(subscriber, std::move(job), Outcome::Lost, error); return;
    case Sent::Failed: finishApply(subscriber, std::move(job), Outcome::Failed, error); return;
  }
}

void Router::Impl::onApplyAnswer(Link& subscriber, const Message& m) {
  using What = CallError::What;
  PendingApply job = std::move(*subscriber.pending);
  subscriber.pending.reset();
  if (job.stallWarned)
    spdlog::info("plugin host '{}' answered the Apply of route '{}' ({}) after {} ms; its deliveries carry on",
                 subscriber.instance, job.route, job.what(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - job.sentAt).count());
  const auto bytes = m.bytes();
  auto kind = wire::peekKind(bytes);
  std::expected<wire::ApplyResult, std::string> r = std::unexpected(std::string());
  if (!kind) {
    r = std::unexpected("plugin host '" + subscriber.instance + "': " + kind.error());
  } else if (*kind == wire::Kind::Failure) {
    auto f = wire::decode<wire::Failure>(bytes);
    if (!f) return finishApply(subscriber, std::move(job), Outcome::Failed, CallError{What::Protocol, 0, f.error()});
    return finishApply(subscriber, std::move(job), Outcome::Failed, CallError{What::Failure, f->status, f->message});
  } else if (*kind == wire::Kind::ApplyResult) {
    r = wire::decode<wire::ApplyResult>(bytes);
  } else {
    r = std::unexpected(std::string("answered Apply with ") + std::string(wire::name(*kind)));
  }
  if (!r)
    return finishApply(subscriber, std::move(job), Outcome::Failed, CallError{What::Protocol, IPCSYNC_EINTERNAL, r.error()});
  DeliveryState& d = deliveries.at(job.delivery);
  d.rows += r->changesApplied;
  d.conflicts += r->conflicts;
  if (r->status == IPCSYNC_DUPLICATE) return finishApply(subscriber, std::move(job), Outcome::Duplicate, {});
  if (job.piece + 1 >= job.pieces.size()) return finishApply(subscriber, std::move(job), Outcome::Applied, {});
  // The next piece of the same change-set, right behind this one.
  ++job.piece;
  startApply(subscriber, std::move(job));
}

void Router::Impl::checkPending() {
  const auto now = Clock::now();
  for (auto& [name, link] : links) {
    if (!link.pending || fatal) continue;
    PendingApply& job = *link.pending;
    if (job.correlation == 0) {
      if (now < job.retryAt || stopping) continue;
      PendingApply again = std::move(job);
      link.pending.reset();
      startApply(link, std::move(again));
      continue;
    }
    if (job.stallWarned || now - job.sentAt < options.applyTimeout) continue;
    job.stallWarned = true;
    spdlog::warn("plugin host '{}' has not answered the Apply of route '{}' ({}) for {} ms (--apply-timeout-ms): it "
                 "is stopped or hung in its plugin. Its deliveries wait for that answer (nothing is sent again, nothing "
                 "is dead-lettered); the other subscribers carry on. Check the process (`ipcsync status` shows its "
                 "pid): `kill -CONT` it if it was stopped, or restart it (its supervisor starts it again and it "
                 "resumes after what it applied)",
                 name, job.route, job.what(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(now - job.sentAt).count());
  }
}

std::int64_t Router::Impl::stalledMs(const Link& subscriber) const {
  if (!subscriber.pending || subscriber.pending->correlation == 0) return 0;
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - subscriber.pending->sentAt);
  return waited >= options.applyTimeout ? waited.count() : 0;
}

void Router::Impl::drainPending(Clock::time_point deadline) {
  for (;;) {
    bool waiting = false;
    for (auto& [name, link] : links)
      waiting |= link.pending && link.pending->correlation != 0 && !link.pending->stallWarned && link.session.has_value();
    if (!waiting || fatal || Clock::now() >= deadline) return;
    pump(20ms);
    checkPending();
  }
}

// Moves journal sequence `sequence` of `d` to the dead letters and the route past it; false if it
// could not be recorded (then it is tried again in a second).
static bool deadLetter(Router::Impl& r, DeliveryState& d, std::uint64_t sequence, const std::string& origin,
                       std::uint64_t originSequence, const std::string& failure) {
  DeadLetter letter{.route = d.plan.route, .subscriber = d.plan.subscriber, .sequence = sequence, .error = failure,
                    .attempts = std::max<std::uint32_t>(d.attempts, 1), .failedAtUs = nowUs()};
  if (auto added = r.journal->addDeadLetter(letter); !added) {
    spdlog::error("journal: cannot record dead letter for sequence {}: {}", sequence, added.error().message);
    d.nextTry = Clock::now() + 1s;
    return false;
  }
  ++d.deadLetters;
  spdlog::error("route '{}': journal sequence {} (from '{}' sequence {}) moved to the dead letters for '{}' after {} "
                "attempt(s): {}; the route carries on (`ipcsync deadletter` lists it, replay retries it)",
                d.plan.route, sequence, origin, originSequence, d.plan.subscriber, letter.attempts, failure);
  d.attempts = 0;
  d.failingSequence = 0;
  d.cursor = d.skippedThrough = sequence;
  if (auto a = r.journal->advance(d.plan.route, d.plan.subscriber, d.cursor); !a) spdlog::warn("journal: {}", a.error().message);
  return true;
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
  if (!prepareChains(d)) return false;
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
      if (reply.error().what == CallError::What::Timeout) {
        // Stopped or hung: asking again at once would block the loop for another 10 s each time.
        for (auto& other : deliveries)
          if (other.plan.subscriber == d.plan.subscriber) other.nextTry = Clock::now() + 5s;
        spdlog::warn("plugin host '{}' did not answer LastApplied: it is stopped or hung in its plugin; its deliveries "
                     "try again in 5 s (check the process: `kill -CONT` it if it was stopped, or restart it)",
                     d.plan.subscriber);
      }
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
    d.read.clear();
  }
  if (d.plan.snapshot && !d.snapshotChecked) {
    // Wait for the source; and for any Apply outstanding at either end (a snapshot's requests are
    // synchronous: they must not queue behind an Apply a stopped host may never answer).
    if (!src.session || src.pending || sub.pending) return false;
    takeSnapshot(d, src, sub);
    d.read.clear();
    return d.snapshotChecked;
  }
  return true;
}

bool Router::Impl::deliver(DeliveryState& d) {
  Link& sub = links.at(d.plan.subscriber);
  // One Apply outstanding per subscriber (its answer comes through dispatch()); an operator
  // request waiting for this subscriber goes before the next delivery.
  if (sub.pending || sub.operatorWaiting) return false;
  if (Clock::now() < d.nextTry || !prepare(d)) return false;
  const std::size_t index = static_cast<std::size_t>(&d - deliveries.data());
  const std::uint64_t from = std::max(d.cursor, d.skippedThrough);
  if (d.readNext >= d.read.size() || d.readAfter != from) {
    const auto tables = readTables(d);
    // The head before the read: entries the read filters out (other tables, or ones that already
    // passed through the subscriber) never come back to move the cursor, so a caught-up delivery
    // moves it there itself; otherwise its lag would grow and retention would keep everything.
    const auto state = journal->usage();
    auto entries = journal->read(from, options.batch, tables, d.plan.subscriber);
    if (!entries) {
      if (entries.error().kind != JournalError::Kind::Busy) spdlog::error("journal: {}", entries.error().message);
      return false;
    }
    if (entries->empty() && state && state->head > from) d.skippedThrough = state->head;
    d.backlog = entries->size() >= options.batch;
    d.oldestUndeliveredUs = 0;
    d.read = std::move(*entries);
    d.readNext = 0;
  }
  const std::vector<JournalEntry>& entries = d.read;
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
  // An entry's change-set for the subscriber (transformEntry), without the tables whose snapshot
  // already has it.
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
    return transformEntry(d, x);
  };
  const std::uint64_t pieceBytes = options.topology.journal.pieceBytes;
  std::size_t next = d.readNext;
  while (next < entries.size()) {
    if (stopping || fatal || !sub.session) break;
    const JournalEntry& e = entries[next++];
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
        while (next < entries.size()) {
          const JournalEntry& f = entries[next];
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
      // Sent now, answered later (onApplyAnswer -> finishApply). The entries after `through` stay
      // in d.read for the next Apply, valid as long as this one succeeds.
      d.readNext = next;
      d.readAfter = through;
      PendingApply job = applyJob(index, d.plan.route, applySequence(last->sequence), *last, std::move(pieces), std::nullopt);
      job.first = e.sequence;
      job.last = last->sequence;
      job.through = through;
      job.members = members;
      job.originSequence = e.originSequence;
      startApply(sub, std::move(job));
      return true;
    }
    if (!deadLetter(*this, d, e.sequence, e.origin, e.originSequence, failure)) {
      d.read.clear();
      return true;
    }
  }
  d.readNext = next;
  d.readAfter = std::max(d.cursor, d.skippedThrough);
  persistSkips();
  return worked || d.backlog;
}

void Router::Impl::finishApply(Link& subscriber, PendingApply job, Outcome outcome, const CallError& error) {
  DeliveryState& d = deliveries.at(job.delivery);
  if (job.purpose == PendingApply::Purpose::TakeSource) {
    if (outcome == Outcome::Applied || outcome == Outcome::Duplicate) {
      if (auto m = journal->markResolved(job.conflictId); !m) spdlog::warn("journal: {}", m.error().message);
      else spdlog::info("conflict #{} resolved: the source's change was applied to '{}'", job.conflictId, subscriber.instance);
    } else {
      spdlog::warn("conflict #{}: applying the source's change to '{}' failed: {}; trying again later", job.conflictId,
                   subscriber.instance, error.message);
    }
    return;
  }
  if (job.purpose == PendingApply::Purpose::Replay) {
    if (outcome == Outcome::Lost) return;  // the request stays; tried again once the host is back
    replayed(job.letter, outcome == Outcome::Failed ? error.message : std::string());
    return;
  }
  if (outcome == Outcome::Lost) {
    d.read.clear();  // the next session starts from LastApplied
    return;
  }
  if (outcome == Outcome::Applied || outcome == Outcome::Duplicate) {
    if (outcome == Outcome::Applied) d.applied += job.members;
    else d.duplicates += job.members;
    d.cursor = d.skippedThrough = job.through;
    d.attempts = 0;
    d.failingSequence = 0;
    d.oldestUndeliveredUs = 0;
    if (auto a = journal->advance(d.plan.route, d.plan.subscriber, d.cursor); !a) spdlog::warn("journal: {}", a.error().message);
    return;
  }
  ++d.errors;
  d.read.clear();  // read again from the cursor
  if (job.members > 1) {
    // Which entry failed is unknown: each gets its own Apply, retries and dead letter.
    d.singlesThrough = job.last;
    d.lastError = error.message;
    spdlog::warn("route '{}': '{}' failed a batch of {} change-sets (journal sequences {}..{}): {}; applying them "
                 "one at a time",
                 d.plan.route, d.plan.subscriber, job.members, job.first, job.last, error.message);
    return;
  }
  if (d.failingSequence != job.first) {
    d.failingSequence = job.first;
    d.attempts = 0;
  }
  ++d.attempts;
  d.lastError = error.message;
  if (error.status != IPCSYNC_ESCHEMA && d.attempts < d.plan.maxRetries) {
    const auto backoff = std::min<std::chrono::milliseconds>(100ms * (1u << std::min(d.attempts, 6u)), 5s);
    spdlog::warn("route '{}': '{}' failed journal sequence {} (attempt {} of {}): {}; retrying in {} ms", d.plan.route,
                 d.plan.subscriber, job.first, d.attempts, d.plan.maxRetries, error.message, backoff.count());
    d.nextTry = Clock::now() + backoff;
    return;
  }
  deadLetter(*this, d, job.first, job.origin, job.originSequence, error.message);
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
  for (auto& [name, link] : links) link.operatorWaiting = false;
  // A request goes through the same asynchronous Apply as a delivery. One for a subscriber with an
  // Apply outstanding waits for it (no new delivery is started to it meanwhile); a stalled
  // subscriber therefore holds only its own requests.
  const auto busy = [&](Link& sub) {
    if (!sub.pending) return false;
    sub.operatorWaiting = true;
    return true;
  };
  if (auto open = journal->requestedResolutions()) {
    for (const auto& c : *open) {
      if (c.resolution == ConflictResolution::TakeTargetRequested) {
        if (auto m = journal->markResolved(c.id); !m) spdlog::warn("journal: {}", m.error().message);
        else spdlog::info("conflict #{} resolved: the target '{}' keeps its row", c.id, c.subscriber);
        continue;
      }
      // TakeSourceRequested: the only other state requestedResolutions() returns.
      DeliveryState* d = find(c.route, c.subscriber);
      if (!d) continue;
      Link& sub = links.at(c.subscriber);
      if (!sub.session || busy(sub)) continue;
      JournalEntry entry;
      entry.origin = c.origin;
      entry.commitTimeUs = nowUs();
      entry.provenance = {c.origin};
      PendingApply job = applyJob(static_cast<std::size_t>(d - deliveries.data()), c.route + "#conflict-" + std::to_string(c.id),
                                  applySequence(std::max<std::uint64_t>(c.sequence, 1)), entry, {c.change},
                                  ConflictPolicy::SourceWins);
      job.purpose = PendingApply::Purpose::TakeSource;
      job.conflictId = c.id;
      startApply(sub, std::move(job));
    }
  }
  auto letters = journal->deadLetters();
  if (!letters) return;
  for (const auto& l : *letters) {
    if (!l.replayRequested) continue;
    DeliveryState* d = find(l.route, l.subscriber);
    // Forwarded entries go through their upstream hops first: wait for every chain, not only
    // the delivery's own transform (transformEntry cannot tell a missing chain from no hops).
    if (!d || !d->transform || d->chains.size() != d->plan.upstream.size()) continue;
    Link& sub = links.at(l.subscriber);
    if (!sub.session || busy(sub)) continue;
    auto entries = journal->read(l.sequence - 1, 1);
    std::string failure;
    if (!entries || entries->empty() || entries->front().sequence != l.sequence) {
      failure = "the change-set (journal sequence " + std::to_string(l.sequence) + ") is no longer in the journal";
    } else {
      const JournalEntry& e = entries->front();
      auto out = transformEntry(*d, e);
      if (!out) failure = out.error();
      else if (!out->empty()) {
        auto pieces = split(*out, options.topology.journal.pieceBytes, failure);
        if (failure.empty()) {
          PendingApply job = applyJob(static_cast<std::size_t>(d - deliveries.data()),
                                      l.route + "#deadletter-" + std::to_string(l.id), applySequence(e.sequence), e,
                                      std::move(pieces), std::nullopt);
          job.purpose = PendingApply::Purpose::Replay;
          job.letter = l;
          startApply(sub, std::move(job));
          continue;  // replayed() when answered
        }
      }
    }
    replayed(l, failure);
  }
}

void Router::Impl::replayed(const DeadLetter& l, const std::string& failure) {
  if (failure.empty()) {
    if (auto r = journal->removeDeadLetter(l.id); !r) spdlog::warn("journal: {}", r.error().message);
    else spdlog::info("dead letter #{} (route '{}', sequence {}) replayed to '{}'", l.id, l.route, l.sequence, l.subscriber);
    return;
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
    return;
  }
  spdlog::error("dead letter #{} (route '{}', sequence {}) failed again on '{}': {}", l.id, l.route, l.sequence,
                l.subscriber, failure);
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

void Router::Impl::refreshDiskFree() {
  const auto free = journal->diskFreeBytes();
  diskFree = free.value_or(0);
  const bool fillsFirst = free && diskFillsFirst(usage, *free);
  if (fillsFirst && !diskWarned)
    spdlog::warn("the file system holding journal '{}' has {} bytes free, less than the {} the journal may still grow "
                 "by (journal.max_bytes {}): it fills before the bound, and appends then fail instead of holding the "
                 "sources back; free space there or lower journal.max_bytes",
                 journal->path().string(), diskFree, usage.maxBytes - std::min(usage.bytes, usage.maxBytes),
                 usage.maxBytes);
  diskWarned = fillsFirst;
}

void Router::Impl::housekeeping() {
  if (auto pruned = journal->prune(); !pruned && pruned.error().kind != JournalError::Kind::Busy)
    spdlog::warn("journal: prune failed: {}", pruned.error().message);
  refreshUsage();
  refreshDiskFree();  // a statvfs: once a second here, not after every append
  bool held = false;
  for (auto& [name, link] : links) held |= link.heldBack;
  if (held) commitCaptures(true);
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
