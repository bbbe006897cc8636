#include "ipcsync/sync/route_plan.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace ipcsync::sync {

std::vector<TableRule> reverseRules(std::span<const TableRule> rules) {
  std::vector<TableRule> out;
  for (const auto& r : rules) {
    TableRule back = r;
    if (!r.renameTo.empty()) {
      back.table = r.renameTo;
      back.renameTo = r.table;
    }
    out.push_back(std::move(back));
  }
  return out;
}

std::expected<std::vector<Delivery>, std::string> planDeliveries(const Topology& topology) {
  std::vector<Delivery> plan;
  std::set<std::string> names;
  for (std::size_t i = 0; i < topology.routes.size(); ++i) {
    const RouteConfig& r = topology.routes[i];
    const std::string where = "route " + std::to_string(i + 1) + (r.name.empty() ? "" : " ('" + r.name + "')");
    if (r.from.empty()) return std::unexpected(where + ": 'from' is empty; name the plugin instance that produces");
    if (r.to.empty()) return std::unexpected(where + ": 'to' is empty; name at least one plugin instance that accepts");
    const std::string name = r.name.empty() ? r.from + "-to-" + r.to.front() : r.name;
    if (!names.insert(name).second)
      return std::unexpected(where + ": the name '" + name + "' is used by another route; give each route its own name");
    if (r.conflict == ConflictPolicy::LastWriterWins && r.timestampColumn.empty())
      return std::unexpected(where + ": last_writer_wins needs 'timestamp_column' (e.g. updated_at)");
    if (r.maxRetries == 0) return std::unexpected(where + ": 'max_retries' must be at least 1");
    std::set<std::string> targets;
    for (const auto& t : r.to) {
      if (t == r.from) return std::unexpected(where + ": it routes '" + t + "' to itself; remove it from 'to'");
      if (!targets.insert(t).second) return std::unexpected(where + ": target '" + t + "' is listed twice");
      Delivery d{.route = name, .source = r.from, .subscriber = t, .rules = r.tables, .conflict = r.conflict,
                 .timestampColumn = r.timestampColumn, .snapshot = r.snapshot, .maxRetries = r.maxRetries};
      plan.push_back(d);
      if (r.bidirectional) {
        Delivery back = d;
        back.route = name + ".reverse." + t;
        back.source = t;
        back.subscriber = r.from;
        back.rules = reverseRules(r.tables);
        back.snapshot = false;
        // The policy names the route's ends, not each delivery's: "source" is the route's `from`
        // in both directions, so the reverse delivery's source (the route's target) must lose.
        if (r.conflict == ConflictPolicy::SourceWins) back.conflict = ConflictPolicy::TargetWins;
        else if (r.conflict == ConflictPolicy::TargetWins) back.conflict = ConflictPolicy::SourceWins;
        plan.push_back(std::move(back));
      }
    }
  }
  for (const auto& d : plan)
    if (d.route.find(".reverse.") != std::string::npos && names.contains(d.route))
      return std::unexpected("route '" + d.route + "' has the name of the reverse of a bidirectional route; rename it");
  // Upstream: for each delivery, every instance whose entries reach its source without passing
  // through its subscriber, and the hops of the shortest such path (ties: the earlier route).
  for (auto& d : plan) {
    std::map<std::string, std::size_t> via;  // instance -> the delivery that first reached it backwards
    std::vector<std::string> frontier{d.source};
    std::set<std::string> seen{d.source, d.subscriber};
    while (!frontier.empty()) {
      std::vector<std::string> next;
      for (const auto& at : frontier)
        for (std::size_t i = 0; i < plan.size(); ++i) {
          const Delivery& e = plan[i];
          if (e.subscriber != at || seen.contains(e.source)) continue;
          seen.insert(e.source);
          via[e.source] = i;
          next.push_back(e.source);
        }
      frontier = std::move(next);
    }
    for (const auto& [origin, first] : via) {
      std::vector<Hop> hops;
      for (std::size_t i = first;;) {
        const Delivery& e = plan[i];
        hops.push_back(Hop{e.route, e.source, e.subscriber, e.rules});
        if (e.subscriber == d.source) break;
        i = via.at(e.subscriber);
      }
      d.upstream[origin] = std::move(hops);
    }
  }
  return plan;
}

std::vector<std::string> instancesOf(std::span<const Delivery> plan) {
  std::set<std::string> all;
  for (const auto& d : plan) {
    all.insert(d.source);
    all.insert(d.subscriber);
  }
  return {all.begin(), all.end()};
}

bool travels(const Delivery& d, const JournalEntry& e) {
  if (!d.carriesFrom(e.origin)) return false;
  if (e.origin == d.subscriber || d.source == d.subscriber) return false;
  return std::find(e.provenance.begin(), e.provenance.end(), d.subscriber) == e.provenance.end();
}

std::vector<std::string> appliedProvenance(const Delivery& d, const JournalEntry& e) {
  std::vector<std::string> out = e.provenance;
  if (out.empty() || out.front() != e.origin) out.insert(out.begin(), e.origin);
  if (std::find(out.begin(), out.end(), d.source) == out.end()) out.push_back(d.source);
  return out;
}

namespace {

// Where `table` (as a step's source names it) arrives under rules that name tables, or nothing
// when they leave it out.
std::optional<std::string> arrivesAs(std::span<const TableRule> rules, const std::string& table) {
  for (const auto& r : rules)
    if (r.table == table) return r.renameTo.empty() ? r.table : r.renameTo;
  return std::nullopt;
}

}  // namespace

std::vector<DuplicateWay> duplicateWays(std::span<const Delivery> plan, const TablesOf& tables) {
  const auto roles = [&](const std::string& instance, const std::string& table) -> TableRoles {
    auto i = tables.find(instance);
    if (i == tables.end()) return {};
    auto t = i->second.find(table);
    return t == i->second.end() ? TableRoles{} : t->second;
  };
  struct Way {
    std::size_t delivery;
    std::vector<std::string> path;
  };
  // (subscriber, origin, the name it arrives under) -> (the origin's name, the ways)
  std::map<std::tuple<std::string, std::string, std::string>, std::pair<std::string, std::vector<Way>>> ways;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const Delivery& d = plan[i];
    std::map<std::string, const std::vector<Hop>*> origins{{d.source, nullptr}};
    for (const auto& [origin, hops] : d.upstream) origins.emplace(origin, &hops);
    for (const auto& [origin, hops] : origins) {
      auto produced = tables.find(origin);
      if (produced == tables.end()) continue;
      std::vector<std::string> path{origin};
      if (hops)
        for (const auto& h : *hops) path.push_back(h.subscriber);
      path.push_back(d.subscriber);
      for (const auto& [name, r] : produced->second) {
        if (!r.produces) continue;
        std::optional<std::string> at = name;
        if (hops)
          for (const auto& h : *hops)
            if (at && !h.rules.empty()) at = arrivesAs(h.rules, *at);
        if (!at) continue;
        if (!d.rules.empty()) at = arrivesAs(d.rules, *at);
        else if (!roles(d.source, *at).produces || !roles(d.subscriber, *at).accepts) at.reset();
        if (!at) continue;
        auto& [originName, found] = ways[{d.subscriber, origin, *at}];
        originName = name;
        found.push_back(Way{i, path});
      }
    }
  }
  // One finding per subscriber, origin and set of deliveries, naming every table they share.
  std::map<std::tuple<std::string, std::string, std::vector<std::size_t>>, DuplicateWay> twice;
  for (const auto& [key, value] : ways) {
    const auto& [originName, found] = value;
    if (found.size() < 2) continue;
    std::vector<std::size_t> deliveries;
    for (const auto& w : found) deliveries.push_back(w.delivery);
    DuplicateWay& dup = twice[{std::get<0>(key), std::get<1>(key), deliveries}];
    if (dup.deliveries.empty()) {
      dup.subscriber = std::get<0>(key);
      dup.origin = std::get<1>(key);
      dup.deliveries = deliveries;
      for (const auto& w : found) dup.paths.push_back(w.path);
    }
    dup.tables.push_back(originName);
  }
  std::vector<DuplicateWay> out;
  for (auto& [key, dup] : twice) out.push_back(std::move(dup));
  return out;
}

}  // namespace ipcsync::sync
