// sync.json: the sync engine's figures, replaced atomically (temp file + rename) every 200 ms.
// Fields: docs/design/sync-engine.md, "Status file".
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "router_impl.h"

namespace ipcsync::sync {

// capture.cpp: what a source has waiting in memory for the journal, and what it emitted while the
// journal was full that was not kept (it is emitted again after the source's restart).
std::uint64_t heldBytes(const Link& link);
std::uint64_t droppedWhileFull(const Link& link);
std::uint64_t oversizedChangeSet(const Link& link);  // 0, or the change-set larger than the journal
std::uint64_t heldBytesBound(const JournalConfig& journal);

void Router::Impl::writeStatus() {
  using nlohmann::json;
  const std::int64_t now = nowUs();
  json routes = json::array();
  for (const auto& d : deliveries) {
    const std::uint64_t lag = usage.head > d.cursor ? usage.head - d.cursor : 0;
    routes.push_back({
        {"route", d.plan.route},
        {"source", d.plan.source},
        {"subscriber", d.plan.subscriber},
        {"connected", links.at(d.plan.subscriber).session.has_value()},
        {"cursor", d.cursor},
        {"lag_changesets", lag},
        {"lag_ms", d.oldestUndeliveredUs > 0 ? std::max<std::int64_t>(0, (now - d.oldestUndeliveredUs) / 1000) : 0},
        {"applied", d.applied},
        {"applied_per_s", d.appliedPerSecond},
        {"rows", d.rows},
        {"rows_per_s", d.rowsPerSecond},
        {"duplicates", d.duplicates},
        {"conflicts", d.conflicts},
        {"errors", d.errors},
        {"dead_letters", d.deadLetters},
        {"last_error", d.lastError},
        {"problem", d.transformError},
        {"stalled_ms", stalledMs(links.at(d.plan.subscriber))},
    });
  }
  json sources = json::array();
  bool full = false;
  for (const auto& [name, l] : links) {
    full |= l.heldBack;
    sources.push_back({{"instance", name},
                       {"connected", l.session.has_value()},
                       {"emitted", l.emitted},
                       {"journaled", l.journaled},
                       {"journaled_through", l.journaledThrough},
                       {"acknowledged", l.acknowledged},
                       {"waiting", l.ready.size()},
                       {"held_back", l.heldBack},
                       {"held_bytes", heldBytes(l)},
                       {"dropped_while_full", droppedWhileFull(l)},
                       {"oversized_changeset", oversizedChangeSet(l)}});
  }
  const json doc = {
      {"version", 1},
      {"namespace", options.ns},
      {"pid", ::getpid()},
      {"updated_us", now},
      {"journal",
       {{"path", journal->path().string()},
        {"entries", usage.entries},
        {"bytes", usage.bytes},
        {"head", usage.head},
        {"max_bytes", usage.maxBytes},
        {"nearly_full", usage.nearlyFull},
        {"disk_free_bytes", diskFree},
        {"disk_fills_first", diskWarned},
        {"full", full},
        {"held_bytes_bound", heldBytesBound(options.topology.journal)}}},
      {"sources", sources},
      {"routes", routes},
  };
  const auto tmp = statusPath.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) {
      spdlog::debug("cannot write {}", tmp);
      return;
    }
    out << doc.dump(1) << '\n';
  }
  std::error_code ec;
  std::filesystem::rename(tmp, statusPath, ec);
}

}  // namespace ipcsync::sync
