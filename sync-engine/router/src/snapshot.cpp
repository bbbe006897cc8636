// The first snapshot of a route with `snapshot: true`: each source table is loaded as of a point
// in the source's sequence, applied to the subscriber as one change-set (apply sequence 2H+1 for
// journal head H), and the stream then skips what the snapshot already holds
// (docs/design/sync-engine.md, "Snapshot then stream").
#include <spdlog/spdlog.h>

#include "router_impl.h"

namespace ipcsync::sync {

using namespace std::chrono_literals;

void Router::Impl::resumeSnapshot(DeliveryState& d, std::uint64_t lastApplied) {
  if (lastApplied > 0 || d.cursor > 0) d.snapshotChecked = true;
}

void Router::Impl::takeSnapshot(DeliveryState& d, Link& source, Link& subscriber) {
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
