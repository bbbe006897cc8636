// RoutePlan: the topology unfolded into deliveries, one per (route, subscriber), each with the
// journal cursor it owns (docs/design/sync-engine.md, "Routes, provenance and loops").
//
// A bidirectional route adds, per target, a reverse delivery from that target back to the source
// named "<route>.reverse.<target>", with the same rules reversed (renames inverted; columns and
// filters name the reverse source's columns, which are the same as long as only the table is
// renamed). An entry travels on a delivery when
//   1. its origin is the delivery's source or an instance upstream of it (one whose changes
//      reach the source over the routes: plugins do not re-emit what they apply, so the sync
//      engine forwards on their behalf), and
//   2. the subscriber is neither in its provenance nor the delivery's source (loop guard).
// It is applied with provenance = the entry's provenance + the delivery's source when not
// already there. Plain data and pure functions.
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ipcsync/sync/journal.h"
#include "ipcsync/sync/topology.h"

namespace ipcsync::sync {

// One delivery on a forwarded entry's way to a source.
struct Hop {
  std::string route, source, subscriber;
  std::vector<TableRule> rules;
};

struct Delivery {
  std::string route;  // the name plugins record last_applied under
  std::string source, subscriber;
  std::vector<TableRule> rules;  // as the source names its tables
  ConflictPolicy conflict = ConflictPolicy::SourceWins;
  std::string timestampColumn;
  bool snapshot = false;
  std::uint32_t maxRetries = 5;
  // For each origin upstream of the source: the hops its entries take to reach the source.
  std::map<std::string, std::vector<Hop>> upstream;

  // Whether entries from `origin` may travel here: the source's own, and every upstream origin's.
  bool carriesFrom(const std::string& origin) const { return origin == source || upstream.contains(origin); }
};

// Unfolds and checks the topology: route names unique (defaults filled in), a source and at
// least one target, no route to itself, last_writer_wins with a timestamp column. The error
// names the route and what to change.
std::expected<std::vector<Delivery>, std::string> planDeliveries(const Topology& topology);

// The rules of the reverse direction: renames inverted.
std::vector<TableRule> reverseRules(std::span<const TableRule> rules);

// Every instance the plan names, sorted.
std::vector<std::string> instancesOf(std::span<const Delivery> plan);

// Rule 1 and 2 above.
bool travels(const Delivery& delivery, const JournalEntry& entry);

// The provenance an entry is applied with on `delivery`.
std::vector<std::string> appliedProvenance(const Delivery& delivery, const JournalEntry& entry);

// What an instance described of one table, as far as carrying it goes.
struct TableRoles {
  bool produces = false, accepts = false;
};
using TablesOf = std::map<std::string, std::map<std::string, TableRoles>>;  // instance -> table -> roles

// Deliveries that carry one table of one origin to one subscriber under the same name there (a
// diamond, or two routes that list the table): each change would arrive twice, under two cursors
// that lag differently, so an older copy could overwrite a newer row. What a delivery carries is
// computed as the router carries it (ForwardChain, ChangesetTransform): its source's own tables by
// its rules (none: what the source produces and the subscriber accepts), and each upstream origin's
// along the one path `upstream` names, a hop without rules passing every table as it is and a hop
// with rules only the tables they name, renamed. Instances missing from `tables` are left out.
struct DuplicateWay {
  std::string subscriber, origin;
  std::vector<std::string> tables;              // as the origin names them
  std::vector<std::size_t> deliveries;          // into the plan, in plan order
  std::vector<std::vector<std::string>> paths;  // per delivery: origin, the hops' subscribers, subscriber
};
std::vector<DuplicateWay> duplicateWays(std::span<const Delivery> plan, const TablesOf& tables);

}  // namespace ipcsync::sync
