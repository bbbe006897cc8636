// Forwarding: entries whose origin is upstream of a delivery's source are taken through the hops
// on their way to the source before the delivery's own rules (ForwardChain), and an entry's
// change-set for a subscriber.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "router_impl.h"

namespace ipcsync::sync {

bool Router::Impl::prepareChains(DeliveryState& d) {
  if (d.chains.size() == d.plan.upstream.size()) return true;
  const auto schemasOf = [&](const std::string& instance) -> const SchemaMap* {
    auto it = links.find(instance);
    return it != links.end() && it->second.described ? &it->second.schemas : nullptr;
  };
  for (const auto& [origin, hops] : d.plan.upstream) {
    if (d.chains.contains(origin)) continue;
    auto chain = ForwardChain::create(hops, schemasOf);
    if (!chain) {
      const bool invalid = chain.error().kind == ForwardChain::Error::Kind::Invalid;
      const std::string why = "route '" + d.plan.route + "' to '" + d.plan.subscriber + "', change-sets from '" + origin +
                              "': " + chain.error().message + (invalid ? "; fix the topology and restart ipcsync-sync" : "");
      // Only a topology that cannot work is a problem (sync.json, `ipcsync status` CANNOT RUN);
      // a hop that has not described itself yet is a wait, as for the delivery's own transform.
      std::string& said = invalid ? d.transformError : d.chainWait;
      if (why != said) {
        if (invalid) spdlog::error("{}", why);
        else spdlog::info("{}", why);
      }
      said = why;
      return false;
    }
    d.chains.emplace(origin, std::move(*chain));
  }
  d.transformError.clear();
  d.chainWait.clear();
  return true;
}

void Router::Impl::describedAnew(const Link& link) {
  const auto names = [&](const Hop& h) { return h.source == link.instance || h.subscriber == link.instance; };
  std::size_t rebuilt = 0;
  for (DeliveryState& d : deliveries) {
    if (d.plan.source == link.instance || d.plan.subscriber == link.instance) {
      rebuilt += d.transform.has_value();
      d.transform.reset();  // prepare() builds it again from both ends' current descriptions
      d.transformError.clear();
    }
    for (const auto& [origin, hops] : d.plan.upstream)
      if (std::ranges::any_of(hops, names) && d.chains.erase(origin) > 0) ++rebuilt;
  }
  spdlog::info("plugin host '{}' describes different tables or columns than before (its plugin was upgraded?): {} "
               "transform(s) and forwarding chain(s) that name it are built again from the new description",
               link.instance, rebuilt);
}

std::vector<std::string> Router::Impl::readTables(const DeliveryState& d) const {
  std::set<std::string> all;
  for (auto& t : d.transform->sourceTables()) all.insert(std::move(t));
  for (const auto& [origin, chain] : d.chains)
    for (auto& t : chain.originTables()) all.insert(std::move(t));
  return {all.begin(), all.end()};
}

std::expected<std::vector<unsigned char>, std::string> Router::Impl::transformEntry(DeliveryState& d,
                                                                                   const JournalEntry& e) {
  const auto through = [&](std::vector<std::vector<unsigned char>> const& pieces,
                           std::span<const std::string> tables) -> std::expected<std::vector<unsigned char>, std::string> {
    // On a route that carries these tables as they are, the bytes (pieces are whole changes, so
    // they concatenate) go without being decoded and encoded again.
    if (d.transform->passesThrough(tables)) {
      std::vector<unsigned char> all;
      for (const auto& p : pieces) all.insert(all.end(), p.begin(), p.end());
      return all;
    }
    auto out = d.transform->apply(pieces);
    if (!out) return std::unexpected(out.error());
    return std::move(out->changeset);
  };
  auto chain = d.chains.find(e.origin);
  if (chain == d.chains.end() || !chain->second.transforms()) return through(e.pieces, e.tables);
  auto arrived = chain->second.apply(e.pieces, e.tables);
  if (!arrived) return std::unexpected("on its way to '" + d.plan.source + "': " + arrived.error());
  if (arrived->changeset.empty()) return std::vector<unsigned char>{};
  std::vector<std::vector<unsigned char>> one;
  one.push_back(std::move(arrived->changeset));
  return through(one, arrived->tables);
}

}  // namespace ipcsync::sync
