#include "ipcsync/sync/changeset_transform.h"

#include <algorithm>
#include <set>

#include "ipcsync/plugin_sdk/changeset.h"

namespace ipcsync::sync {

ChangesetTransform::ChangesetTransform(ChangesetTransform&&) noexcept = default;
ChangesetTransform& ChangesetTransform::operator=(ChangesetTransform&&) noexcept = default;
ChangesetTransform::~ChangesetTransform() = default;

std::expected<ChangesetTransform, std::string> ChangesetTransform::create(std::span<const TableRule> rules,
                                                                          const SchemaMap& source,
                                                                          const SchemaMap& subscriber) {
  std::vector<TableRule> effective(rules.begin(), rules.end());
  if (effective.empty()) {
    for (const auto& [name, t] : source)
      if (t.produces)
        if (auto it = subscriber.find(name); it != subscriber.end() && it->second.accepts) effective.push_back({.table = name});
    if (effective.empty())
      return std::unexpected("no table is both produced by the source and accepted by the subscriber; name the "
                             "tables in the route");
  }
  ChangesetTransform out;
  std::set<std::string> seen;
  for (const auto& rule : effective) {
    auto s = source.find(rule.table);
    if (s == source.end() || !s->second.produces)
      return std::unexpected("table '" + rule.table + "' is not one the source produces");
    if (!seen.insert(rule.table).second) return std::unexpected("table '" + rule.table + "' is listed twice");
    const std::string target = rule.renameTo.empty() ? rule.table : rule.renameTo;
    if (auto t = subscriber.find(target); t == subscriber.end() || !t->second.accepts)
      return std::unexpected("table '" + target + "' is not one the subscriber accepts");
    const TableSchema& schema = s->second;
    Table table;
    table.source = rule.table;
    table.target = target;
    table.columnCount = schema.columns.size();
    table.travels.assign(schema.columns.size(), rule.includeColumns.empty() ? 1 : 0);
    for (const auto& c : rule.includeColumns) {
      const int i = schema.columnIndex(c);
      if (i < 0) return std::unexpected("included column '" + c + "' is not a column of table '" + rule.table + "'");
      table.travels[static_cast<std::size_t>(i)] = 1;
    }
    for (const auto& c : rule.excludeColumns) {
      const int i = schema.columnIndex(c);
      if (i < 0) return std::unexpected("excluded column '" + c + "' is not a column of table '" + rule.table + "'");
      if (schema.primaryKey[static_cast<std::size_t>(i)])
        return std::unexpected("column '" + c + "' of table '" + rule.table +
                               "' is part of the primary key, which always travels; do not exclude it");
      table.travels[static_cast<std::size_t>(i)] = 0;
    }
    for (std::size_t i = 0; i < schema.primaryKey.size(); ++i)
      if (schema.primaryKey[i]) table.travels[i] = 1;
    if (!rule.rowFilter.empty()) {
      auto f = RowFilter::compile(schema, rule.rowFilter);
      if (!f) return std::unexpected(f.error());
      table.filter = std::move(*f);
    }
    out.m_tables.push_back(std::move(table));
  }
  return out;
}

std::vector<std::string> ChangesetTransform::sourceTables() const {
  std::vector<std::string> out;
  for (const auto& t : m_tables) out.push_back(t.source);
  return out;
}

bool ChangesetTransform::passesThrough(std::span<const std::string> tables) const {
  if (tables.empty()) return false;
  for (const auto& name : tables) {
    auto t = std::find_if(m_tables.begin(), m_tables.end(), [&](const Table& x) { return x.source == name; });
    if (t == m_tables.end() || t->filter || t->target != t->source ||
        std::find(t->travels.begin(), t->travels.end(), 0) != t->travels.end())
      return false;
  }
  return true;
}

std::expected<TransformOutput, std::string> ChangesetTransform::apply(std::span<const std::vector<unsigned char>> pieces) {
  TransformOutput out;
  plugin_sdk::ChangesetWriter writer;
  std::set<std::string> touched;
  const ipcsync_value nullValue{.type = IPCSYNC_VALUE_NULL};
  const ipcsync_value undefined{.type = IPCSYNC_VALUE_UNDEFINED};
  for (std::size_t p = 0; p < pieces.size(); ++p) {
    auto reader = plugin_sdk::ChangesetReader::open(pieces[p]);
    if (!reader) return std::unexpected("piece " + std::to_string(p) + ": " + reader.error());
    ipcsync_change change{};
    change.struct_size = sizeof change;
    for (std::uint64_t index = 0;; ++index) {
      auto more = reader->next(change);
      if (!more) return std::unexpected("piece " + std::to_string(p) + ": " + more.error());
      if (!*more) break;
      ++out.changesIn;
      auto rule = std::find_if(m_tables.begin(), m_tables.end(), [&](const Table& t) { return t.source == change.table; });
      if (rule == m_tables.end()) continue;
      const auto n = static_cast<std::size_t>(change.column_count);
      if (n != rule->columnCount)
        return std::unexpected("table '" + rule->source + "' change " + std::to_string(index) + " has " + std::to_string(n) +
                               " columns but the source described " + std::to_string(rule->columnCount));
      const bool isInsert = change.op == IPCSYNC_OP_INSERT, isDelete = change.op == IPCSYNC_OP_DELETE;
      if (rule->filter) {
        std::vector<ipcsync_value> row(n, nullValue);
        for (std::size_t i = 0; i < n; ++i) {
          const ipcsync_value* v = nullptr;
          if (change.new_values && change.new_values[i].type != IPCSYNC_VALUE_UNDEFINED) v = &change.new_values[i];
          else if (change.old_values && change.old_values[i].type != IPCSYNC_VALUE_UNDEFINED) v = &change.old_values[i];
          if (isDelete) v = change.old_values ? &change.old_values[i] : nullptr;
          if (v) row[i] = *v;
        }
        auto keep = rule->filter->evaluate(row);
        if (!keep) return std::unexpected("change " + std::to_string(index) + ": " + keep.error());
        const bool undecided = !keep->has_value();
        if (undecided ? (isInsert || isDelete) : !**keep) continue;
      }
      std::vector<ipcsync_value> oldV, newV;
      if (change.old_values) oldV.assign(change.old_values, change.old_values + n);
      if (change.new_values) newV.assign(change.new_values, change.new_values + n);
      bool anyChanged = false;
      for (std::size_t i = 0; i < n; ++i) {
        if (rule->travels[i]) {
          if (!change.primary_key[i] && change.op == IPCSYNC_OP_UPDATE && newV[i].type != IPCSYNC_VALUE_UNDEFINED)
            anyChanged = true;
          continue;
        }
        if (change.op == IPCSYNC_OP_UPDATE) {
          oldV[i] = undefined;
          newV[i] = undefined;
        } else {
          if (!oldV.empty()) oldV[i] = nullValue;
          if (!newV.empty()) newV[i] = nullValue;
        }
      }
      if (change.op == IPCSYNC_OP_UPDATE && !anyChanged) continue;
      if (auto added = writer.add(rule->target, change.column_count, change.primary_key, change.op,
                                  oldV.empty() ? nullptr : oldV.data(), newV.empty() ? nullptr : newV.data());
          !added)
        return std::unexpected("change " + std::to_string(index) + " of table '" + rule->source + "': " + added.error());
      ++out.changesOut;
      touched.insert(rule->target);
    }
  }
  out.changeset = writer.bytes();
  out.tables.assign(touched.begin(), touched.end());
  return out;
}

}  // namespace ipcsync::sync
