// The first snapshot of a route with `snapshot: true`: each source table is loaded as of a point
// in the source's sequence, applied to the subscriber as one change-set (apply sequence 2H+1 for
// journal head H), and the stream then skips what the snapshot already holds
// (docs/design/sync-engine.md, "Snapshot then stream"). The floors are recorded in the journal
// before the apply, so a sync engine restarted after it still skips what the snapshot holds
// (docs/design/journal.md, "Snapshot floors").
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>
#include <utility>

#include "router_impl.h"

namespace ipcsync::sync {

using namespace std::chrono_literals;

namespace {

// Test only: IPCSYNC_FAILPOINT, read once, makes the process _exit(70) at one point of the first
// snapshot, so that a test can hit a crash window deterministically (docs/design/journal.md):
//   after-snapshot-record  the floors are in the journal, the Apply was not sent
//   after-snapshot-apply   the subscriber answered the Apply; nothing after it happened
// and one that does not exit:
//   snapshot-apply-unanswered  the first snapshot's answer is taken as never come (as after a
//                              timeout), although the subscriber applied it
enum class FailPoint { None, AfterSnapshotRecord, AfterSnapshotApply, SnapshotApplyUnanswered };

FailPoint failPoint() {
  static const FailPoint point = [] {
    const char* v = std::getenv("IPCSYNC_FAILPOINT");
    if (!v || !*v) return FailPoint::None;
    const std::string_view name(v);
    if (name == "after-snapshot-record") return FailPoint::AfterSnapshotRecord;
    if (name == "after-snapshot-apply") return FailPoint::AfterSnapshotApply;
    if (name == "snapshot-apply-unanswered") return FailPoint::SnapshotApplyUnanswered;
    spdlog::warn("IPCSYNC_FAILPOINT='{}' is not a fail point of this build (after-snapshot-record, "
                 "after-snapshot-apply, snapshot-apply-unanswered); ignored",
                 name);
    return FailPoint::None;
  }();
  return point;
}

void crashAt(FailPoint here, const std::string& route) {
  if (failPoint() != here) return;
  spdlog::warn("route '{}': IPCSYNC_FAILPOINT={}: exiting with code 70 (test only)", route, std::getenv("IPCSYNC_FAILPOINT"));
  spdlog::default_logger()->flush();
  ::_exit(70);
}

}  // namespace

void Router::Impl::resumeSnapshot(DeliveryState& d, std::uint64_t lastApplied) {
  auto record = journal->snapshotFloors(d.plan.route, d.plan.subscriber);
  if (!record) {
    // Without it, streaming could apply again what a snapshot holds: stop rather than guess.
    spdlog::error("journal: {}", record.error().message);
    fatal = ExitCode::JournalFailed;
    return;
  }
  if (*record) {
    const SnapshotFloors& r = **record;
    // The snapshot is applied as 2H+1. The cursor (at most H when the snapshot was taken) moves to
    // H once it is applied, or on past it once streaming began: also after a snapshot with no rows,
    // which sends no Apply at all.
    const bool applied = lastApplied >= applySequence(r.head) + 1 || (d.cursor >= r.head && d.cursor > 0);
    if (applied) {
      if (!r.tableAsOf.empty()) d.snapshotFloor = r.lowestAsOf();
      d.snapshotTableFloors = r.tableAsOf;
      d.snapshotChecked = true;
      spdlog::info("route '{}': '{}' holds the snapshot of '{}' taken at journal sequence {}; entries of '{}' up to "
                   "its sequence {} (per table: up to its own as_of) are not delivered again",
                   d.plan.route, d.plan.subscriber, r.source, r.head, r.source, r.highestAsOf());
      return;
    }
    // Recorded but never applied there (the engine died before the subscriber committed it).
    spdlog::info("route '{}': the snapshot of '{}' recorded at journal sequence {} never reached '{}' (it reports "
                 "apply sequence {}, cursor {}){}",
                 d.plan.route, r.source, r.head, d.plan.subscriber, lastApplied, d.cursor,
                 d.plan.snapshot ? "; taking it again" : "; the route no longer asks for a snapshot");
    if (auto dropped = journal->dropSnapshotFloors(d.plan.route, d.plan.subscriber); !dropped)
      spdlog::warn("journal: {}", dropped.error().message);  // the next snapshot replaces it anyway
    d.snapshotFloor.reset();
    d.snapshotTableFloors.clear();
    if (d.plan.snapshot) {
      d.snapshotChecked = false;
      return;
    }
  }
  if (lastApplied > 0 || d.cursor > 0) d.snapshotChecked = true;
}

void Router::Impl::takeSnapshot(DeliveryState& d, Link& source, Link& subscriber) {
  // An earlier attempt whose Apply went unanswered (a timeout) may still be applied by the
  // subscriber, which works through its requests in order. Another snapshot would then replace the
  // floors of the one it holds (and change-sets between the two as_of would be skipped), or be
  // applied over it: ask first, and keep the earlier one if it is there.
  auto earlier = journal->snapshotFloors(d.plan.route, d.plan.subscriber);
  if (!earlier) {
    spdlog::error("journal: {}", earlier.error().message);
    fatal = ExitCode::JournalFailed;
    return;
  }
  if (*earlier) {
    auto reply = call(subscriber, wire::Kind::LastApplied, wire::LastAppliedRequest{d.plan.route}, 10s);
    auto seq = reply ? wire::decode<wire::Sequence>(reply->frame) : std::unexpected(reply.error().message);
    if (!seq) {
      spdlog::warn("route '{}': cannot ask '{}' whether it holds the earlier snapshot: {}; trying again", d.plan.route,
                   d.plan.subscriber, seq.error());
      d.nextTry = Clock::now() + 1s;
      return;
    }
    resumeSnapshot(d, seq->sequence);
    if (d.snapshotChecked) {
      d.cursor = std::max(d.cursor, (*earlier)->head);
      d.skippedThrough = std::max(d.skippedThrough, d.cursor);
      if (auto a = journal->advance(d.plan.route, d.plan.subscriber, d.cursor); !a)
        spdlog::warn("journal: {}", a.error().message);
      return;
    }
  }
  commitCaptures(true);
  auto use = journal->usage();
  if (!use) {
    spdlog::error("journal: {}", use.error().message);
    return;
  }
  const std::uint64_t head = use->head;
  std::vector<std::vector<unsigned char>> pieces;
  std::uint64_t floor = UINT64_MAX;
  d.snapshotTableFloors.clear();
  for (const auto& table : d.transform->sourceTables()) {
    snapshot = SnapshotCollect{source.instance, d.plan.route, {}};
    auto reply = call(source, wire::Kind::Snapshot,
                      wire::SnapshotRequest{table, d.plan.route, options.topology.journal.pieceBytes}, 120s);
    auto collected = std::move(snapshot->pieces);
    snapshot.reset();
    if (!reply || reply->kind != wire::Kind::SnapshotDone) {
      spdlog::warn("route '{}': snapshot of '{}' table '{}' failed: {}; trying again", d.plan.route, source.instance, table,
                   reply ? std::string(wire::name(reply->kind)) : reply.error().message);
      d.nextTry = Clock::now() + 1s;
      return;
    }
    auto done = wire::decode<wire::SnapshotDone>(reply->frame);
    if (!done) return;
    floor = std::min(floor, done->asOf);
    d.snapshotTableFloors[table] = done->asOf;
    for (auto& p : collected) pieces.push_back(std::move(p));
  }
  auto out = d.transform->apply(pieces);
  if (!out) {
    spdlog::error("route '{}': snapshot of '{}' cannot be transformed: {}", d.plan.route, source.instance, out.error());
    d.nextTry = Clock::now() + 5s;
    return;
  }
  std::string splitError;
  auto toSend = out->changeset.empty() ? std::vector<std::vector<unsigned char>>{}
                                       : split(out->changeset, options.topology.journal.pieceBytes, splitError);
  // The floors go to the journal before the subscriber can hold the snapshot: a restart after the
  // apply then finds them (resumeSnapshot), one before it finds a record the subscriber lacks.
  if (auto recorded = journal->recordSnapshot(SnapshotFloors{.route = d.plan.route, .subscriber = d.plan.subscriber,
                                                             .source = source.instance, .head = head,
                                                             .tableAsOf = d.snapshotTableFloors});
      !recorded) {
    spdlog::warn("route '{}': cannot record the snapshot's floors: {}; trying again", d.plan.route,
                 recorded.error().message);
    d.nextTry = Clock::now() + 1s;
    return;
  }
  crashAt(FailPoint::AfterSnapshotRecord, d.plan.route);
  JournalEntry entry;
  entry.origin = source.instance;
  entry.commitTimeUs = nowUs();
  entry.provenance = {source.instance};
  if (!toSend.empty()) {
    CallError error;
    const auto outcome = applyEntry(d, subscriber, d.plan.route, applySequence(head) + 1, entry, toSend, std::nullopt, &error);
    if (outcome == Outcome::Lost || outcome == Outcome::Failed) {
      spdlog::warn("route '{}': applying the snapshot to '{}' failed: {}; trying again", d.plan.route, d.plan.subscriber,
                   error.message);
      d.nextTry = Clock::now() + 1s;
      return;
    }
    crashAt(FailPoint::AfterSnapshotApply, d.plan.route);
    static bool answerLost = false;
    if (failPoint() == FailPoint::SnapshotApplyUnanswered && !std::exchange(answerLost, true)) {
      spdlog::warn("route '{}': IPCSYNC_FAILPOINT=snapshot-apply-unanswered: taking the snapshot's answer as never "
                   "come (test only); trying again",
                   d.plan.route);
      d.nextTry = Clock::now() + 1s;
      return;
    }
  }
  spdlog::info("route '{}': snapshot of {} change(s) from '{}' (as of its sequence {}) applied to '{}'; streaming "
               "from journal sequence {}",
               d.plan.route, out->changesOut, source.instance, floor, d.plan.subscriber, head + 1);
  d.snapshotFloor = floor;
  d.snapshotChecked = true;
  d.cursor = std::max(d.cursor, head);
  d.skippedThrough = d.cursor;
  if (auto a = journal->advance(d.plan.route, d.plan.subscriber, d.cursor); !a) spdlog::warn("journal: {}", a.error().message);
}

}  // namespace ipcsync::sync
