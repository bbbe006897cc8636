#include "ipcsync/sync/forward_chain.h"

#include <algorithm>

namespace ipcsync::sync {

namespace {

bool namesTablesOnly(const TableRule& r) {
  return r.renameTo.empty() && r.includeColumns.empty() && r.excludeColumns.empty() && r.rowFilter.empty();
}

}  // namespace

std::expected<ForwardChain, ForwardChain::Error> ForwardChain::create(std::span<const Hop> hops,
                                                                      const SchemasOf& schemasOf) {
  ForwardChain chain;
  for (const Hop& hop : hops) {
    if (hop.rules.empty()) continue;  // every table as it is
    if (std::all_of(hop.rules.begin(), hop.rules.end(), namesTablesOnly)) {
      std::vector<std::string> tables;
      for (const auto& r : hop.rules) tables.push_back(r.table);
      chain.m_hops.push_back(ChangesetTransform::carrying(tables));
      continue;
    }
    const SchemaMap* from = schemasOf(hop.source);
    const SchemaMap* to = schemasOf(hop.subscriber);
    if (!from || !to)
      return std::unexpected(Error{Error::Kind::NotDescribed,
                                   "route '" + hop.route + "' is on the way of forwarded change-sets and transforms "
                                   "them; waiting for '" + (from ? hop.subscriber : hop.source) +
                                   "' to describe its tables"});
    auto t = ChangesetTransform::create(hop.rules, *from, *to);
    if (!t)
      return std::unexpected(Error{Error::Kind::Invalid, "route '" + hop.route + "' from '" + hop.source + "' to '" +
                                                             hop.subscriber + "': " + t.error()});
    chain.m_hops.push_back(std::move(*t));
  }
  return chain;
}

std::expected<TransformOutput, std::string> ForwardChain::apply(std::span<const std::vector<unsigned char>> pieces,
                                                                std::span<const std::string> tables) {
  TransformOutput out;
  out.tables.assign(tables.begin(), tables.end());
  std::vector<std::vector<unsigned char>> current;  // empty while the pieces pass through as they are
  bool whole = true;
  for (auto& hop : m_hops) {
    if (hop.passesThrough(out.tables)) continue;
    auto next = whole ? hop.apply(pieces, ChangesetTransform::OldValues::AsSent)
                      : hop.apply(current, ChangesetTransform::OldValues::AsSent);
    if (!next) return std::unexpected(next.error());
    whole = false;
    current.assign(1, std::move(next->changeset));
    out.tables = std::move(next->tables);
    if (current.front().empty()) return TransformOutput{};
  }
  if (whole)
    for (const auto& p : pieces) out.changeset.insert(out.changeset.end(), p.begin(), p.end());
  else
    out.changeset = std::move(current.front());
  return out;
}

std::vector<std::string> ForwardChain::originTables() const {
  return m_hops.empty() ? std::vector<std::string>{} : m_hops.front().sourceTables();
}

}  // namespace ipcsync::sync
