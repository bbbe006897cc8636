#include "ipcsync/sync/changeset_transform.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

#include "ipcsync/plugin_sdk/changeset.h"

namespace ipcsync::sync {

namespace {

// SQLite's changeset iterator (and so ChangesetReader and sqlite3changeset_apply) drops an UPDATE's
// old values for columns the update does not change, even when the change-set carries them (crm
// sends the whole old row). This reads the raw records of one change-set in the iterator's order
// and hands out each UPDATE's old values as they were written (values point into the bytes).
// Any surprise (a patchset, a malformed record) turns it off: the caller then knows only what the
// iterator gives, as before.
class RawOldValues {
 public:
  explicit RawOldValues(std::span<const unsigned char> bytes) : m_bytes(bytes) {}

  // The next record's old values when it is an UPDATE whose every old value is present.
  std::optional<std::vector<ipcsync_value>> next(int expectedOp) {
    if (!m_ok) return std::nullopt;
    m_expectedOp = expectedOp;
    auto r = record();
    if (!r) m_ok = false;
    return r ? std::move(*r) : std::nullopt;
  }

 private:
  bool varint(std::uint64_t& v) {
    v = 0;
    for (int i = 0; i < 9; ++i) {
      if (m_pos >= m_bytes.size()) return false;
      const unsigned char b = m_bytes[m_pos++];
      if (i == 8) return v = (v << 8) | b, true;
      v = (v << 7) | (b & 0x7f);
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool value(ipcsync_value& out) {
    if (m_pos >= m_bytes.size()) return false;
    const unsigned char type = m_bytes[m_pos++];
    switch (type) {
      case 0: out = {.type = IPCSYNC_VALUE_UNDEFINED}; return true;
      case 5: out = {.type = IPCSYNC_VALUE_NULL}; return true;
      case 1:
      case 2: {
        if (m_bytes.size() - m_pos < 8) return false;
        std::uint64_t u = 0;
        for (int i = 0; i < 8; ++i) u = (u << 8) | m_bytes[m_pos++];
        if (type == 1) {
          out = {.type = IPCSYNC_VALUE_INTEGER, .integer = static_cast<std::int64_t>(u)};
        } else {
          double d;
          std::memcpy(&d, &u, sizeof d);
          out = {.type = IPCSYNC_VALUE_FLOAT, .real = d};
        }
        return true;
      }
      case 3:
      case 4: {
        std::uint64_t size = 0;
        if (!varint(size) || size > m_bytes.size() - m_pos) return false;
        out = {.type = type == 3 ? IPCSYNC_VALUE_TEXT : IPCSYNC_VALUE_BLOB, .bytes = m_bytes.data() + m_pos, .size = size};
        m_pos += size;
        return true;
      }
      default: return false;
    }
  }
  std::optional<std::optional<std::vector<ipcsync_value>>> record() {
    if (m_pos < m_bytes.size() && m_bytes[m_pos] == 'T') {  // a table header ('P', a patchset, is not read)
      ++m_pos;
      std::uint64_t n = 0;
      if (!varint(n) || n == 0 || n > m_bytes.size() - m_pos) return std::nullopt;
      m_columns = static_cast<std::size_t>(n);
      m_pos += m_columns;
      const void* end = std::memchr(m_bytes.data() + m_pos, 0, m_bytes.size() - m_pos);
      if (!end) return std::nullopt;
      m_pos = static_cast<std::size_t>(static_cast<const unsigned char*>(end) - m_bytes.data()) + 1;
    }
    if (m_columns == 0 || m_bytes.size() - m_pos < 2) return std::nullopt;
    const int op = m_bytes[m_pos];
    m_pos += 2;  // op, indirect
    if (op != m_expectedOp) return std::nullopt;  // out of step with the iterator: trust only the iterator
    std::vector<ipcsync_value> oldV(m_columns), newV(m_columns);
    bool whole = true;
    if (op != IPCSYNC_OP_INSERT)
      for (auto& v : oldV) {
        if (!value(v)) return std::nullopt;
        whole = whole && v.type != IPCSYNC_VALUE_UNDEFINED;
      }
    if (op != IPCSYNC_OP_DELETE)
      for (auto& v : newV)
        if (!value(v)) return std::nullopt;
    if (op != IPCSYNC_OP_UPDATE || !whole) return std::optional<std::vector<ipcsync_value>>{};
    return std::optional<std::vector<ipcsync_value>>{std::move(oldV)};
  }

  std::span<const unsigned char> m_bytes;
  std::size_t m_pos = 0, m_columns = 0;
  int m_expectedOp = 0;
  bool m_ok = true;
};

}  // namespace

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

ChangesetTransform ChangesetTransform::carrying(std::span<const std::string> tables) {
  ChangesetTransform out;
  for (const auto& name : tables) {
    Table table;
    table.source = table.target = name;
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
    if (t == m_tables.end() || t->filter || t->target != t->source || std::find(t->travels.begin(), t->travels.end(), 0) != t->travels.end())
      return false;
  }
  return true;
}

std::expected<TransformOutput, std::string> ChangesetTransform::apply(std::span<const std::vector<unsigned char>> pieces,
                                                                     OldValues oldValues) {
  TransformOutput out;
  plugin_sdk::ChangesetWriter writer;
  std::set<std::string> touched;
  const ipcsync_value nullValue{.type = IPCSYNC_VALUE_NULL};
  const ipcsync_value undefined{.type = IPCSYNC_VALUE_UNDEFINED};
  for (std::size_t p = 0; p < pieces.size(); ++p) {
    auto reader = plugin_sdk::ChangesetReader::open(pieces[p]);
    if (!reader) return std::unexpected("piece " + std::to_string(p) + ": " + reader.error());
    RawOldValues raw(pieces[p]);
    ipcsync_change change{};
    change.struct_size = sizeof change;
    for (std::uint64_t index = 0;; ++index) {
      auto more = reader->next(change);
      if (!more) return std::unexpected("piece " + std::to_string(p) + ": " + more.error());
      if (!*more) break;
      ++out.changesIn;
      auto wholeOldRow = raw.next(change.op);  // read for every change, to stay in step with `reader`
      auto rule = std::find_if(m_tables.begin(), m_tables.end(), [&](const Table& t) { return t.source == change.table; });
      if (rule == m_tables.end()) continue;
      const auto n = static_cast<std::size_t>(change.column_count);
      if (rule->columnCount != 0 && n != rule->columnCount)
        return std::unexpected("table '" + rule->source + "' change " + std::to_string(index) + " has " + std::to_string(n) +
                               " columns but the source described " + std::to_string(rule->columnCount));
      const bool isInsert = change.op == IPCSYNC_OP_INSERT, isDelete = change.op == IPCSYNC_OP_DELETE;
      const bool isUpdate = change.op == IPCSYNC_OP_UPDATE;
      int op = change.op;
      std::vector<ipcsync_value> oldV, newV;
      if (change.old_values) oldV.assign(change.old_values, change.old_values + n);
      if (isUpdate && wholeOldRow && wholeOldRow->size() == n) oldV = std::move(*wholeOldRow);
      if (change.new_values) newV.assign(change.new_values, change.new_values + n);
      auto defined = [](const ipcsync_value& v) { return v.type != IPCSYNC_VALUE_UNDEFINED; };
      if (rule->filter) {
        // The row after the change: new values over old (an update's unchanged columns), NULL
        // where neither is carried. Deletes are judged on the old row.
        std::vector<ipcsync_value> row(n, nullValue);
        for (std::size_t i = 0; i < n; ++i) {
          if (isDelete) {
            if (!oldV.empty()) row[i] = oldV[i];
          } else if (!newV.empty() && defined(newV[i])) {
            row[i] = newV[i];
          } else if (!oldV.empty() && defined(oldV[i])) {
            row[i] = oldV[i];
          }
        }
        // An update that carries the whole old row (crm does) is judged on both rows: it may move
        // the row into the filter (an INSERT of the whole new row at the target) or out of it (a
        // DELETE of the old row). Without the whole old row (sqlite3session sources) only the new
        // values laid over what is carried can be judged, and a NULL verdict keeps the update.
        const bool wholeOld = isUpdate && !oldV.empty() && std::all_of(oldV.begin(), oldV.end(), defined);
        auto keep = rule->filter->evaluate(row);
        if (!keep) return std::unexpected("change " + std::to_string(index) + ": " + keep.error());
        if (wholeOld) {
          auto was = rule->filter->evaluate(oldV);
          if (!was) return std::unexpected("change " + std::to_string(index) + ": " + was.error());
          const bool in = keep->value_or(false), wasIn = was->value_or(false);
          if (!in && !wasIn) continue;
          if (in && !wasIn) {
            op = IPCSYNC_OP_INSERT;
            newV = std::move(row);
            oldV.clear();
          } else if (!in && wasIn) {
            op = IPCSYNC_OP_DELETE;
            newV.clear();
          }
        } else {
          const bool undecided = !keep->has_value();
          if (undecided ? (isInsert || isDelete) : !**keep) continue;
        }
      }
      bool anyChanged = false;
      for (std::size_t i = 0; i < n; ++i) {
        if (op == IPCSYNC_OP_UPDATE) {
          // Forwarded updates carry old values for the key and the changed columns only, whatever
          // the source sent: conflict detection at the target stays what it is for sqlite3session
          // change-sets (a DATA conflict only on a column this update changes).
          const bool changed = defined(newV[i]);
          if (!change.primary_key[i] && !changed && oldValues == OldValues::KeyAndChanged) oldV[i] = undefined;
          if (rule->travels.empty() || rule->travels[i]) {
            if (!change.primary_key[i] && changed) anyChanged = true;
            continue;
          }
          oldV[i] = undefined;
          newV[i] = undefined;
        } else if (!rule->travels.empty() && !rule->travels[i]) {
          if (!oldV.empty()) oldV[i] = nullValue;
          if (!newV.empty()) newV[i] = nullValue;
        }
      }
      if (op == IPCSYNC_OP_UPDATE && !anyChanged) continue;
      if (auto added = writer.add(rule->target, change.column_count, change.primary_key, op,
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
