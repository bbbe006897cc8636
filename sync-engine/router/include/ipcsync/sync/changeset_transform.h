// ChangesetTransform: what one route does to a change-set on its way to one subscriber, per the
// route's TableRules (docs/design/sync-engine.md, "Transforms").
//
//  - a change to a table the route does not carry is dropped;
//  - a row filter (an SQL expression over the source row's columns) drops the rows it is not
//    true for. Inserts are judged on the new row, deletes on the old row. An update carrying the
//    whole old row (crm's; read from the raw record, since SQLite's iterator drops old values of
//    unchanged columns) is judged on the old and the new row: moving in becomes an INSERT of the
//    whole new row, moving out a DELETE of the old row, staying out is dropped (NULL is out).
//    Other updates are judged on the new values laid over the old (the key and the changed
//    columns; columns the update does not carry read as NULL); one whose filter comes out NULL
//    (it depends on a column the update does not carry) is kept: its membership did not change;
//  - a forwarded update carries old values for the key and the changed columns only (conflict
//    detection at the target as for a sqlite3session change-set);
//  - columns outside include/inside exclude do not travel: NULL in inserts and in deletes' old
//    values, "unchanged" in updates (an update left with no changed column is dropped). The table
//    keeps its shape, so the subscriber's own schema check still holds; such a column must be
//    nullable at the subscriber. The primary key always travels;
//  - a rename changes the table's name.
//
// Row filters run in a private in-memory SQLite database per transform (RowFilter), with the row
// bound as a one-row subquery. Not thread-safe; one per (route, subscriber).
#pragma once

#include <ipcsync/plugin.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ipcsync/sync/table_schema.h"
#include "ipcsync/sync/topology.h"

struct sqlite3;
struct sqlite3_stmt;

namespace ipcsync::sync {

// One compiled row filter. Pinned (holds a statement on its own connection).
class RowFilter {
 public:
  // Fails with a message naming the table, the expression and SQLite's complaint (an unknown
  // column, a syntax error, more than one statement).
  static std::expected<std::unique_ptr<RowFilter>, std::string> compile(const TableSchema& table,
                                                                        const std::string& expression);
  ~RowFilter();
  RowFilter(const RowFilter&) = delete;
  RowFilter& operator=(const RowFilter&) = delete;

  // The expression's value on `row` (one value per column): true/false, or nothing for NULL.
  // UNDEFINED values read as NULL. Fails if evaluating raised an SQL error.
  std::expected<std::optional<bool>, std::string> evaluate(std::span<const ipcsync_value> row);

  const std::string& expression() const noexcept { return m_expression; }

 private:
  RowFilter() = default;
  sqlite3* m_db = nullptr;
  sqlite3_stmt* m_stmt = nullptr;
  std::string m_table, m_expression;
};

struct TransformOutput {
  std::vector<unsigned char> changeset;  // empty: nothing of it travels on this route
  std::vector<std::string> tables;       // tables it touches, as the subscriber names them
  std::uint64_t changesIn = 0, changesOut = 0;
};

class ChangesetTransform {
 public:
  // `rules` as the route gives them (empty: every table `source` produces and `subscriber`
  // accepts). Each rule's table must be one the source produces and its (renamed) table one the
  // subscriber accepts; columns named must exist; filters must compile. The error says which.
  static std::expected<ChangesetTransform, std::string> create(std::span<const TableRule> rules, const SchemaMap& source,
                                                               const SchemaMap& subscriber);

  // A transform that carries `tables` as they are (every column, every row, no rename) and drops
  // the rest, whatever the tables' columns: for a forwarding hop whose rules only name tables,
  // needing no schema.
  static ChangesetTransform carrying(std::span<const std::string> tables);

  // What an update's old values hold in the output: the key and the changed columns (for the
  // subscriber's conflict detection), or the whole old row as the source sent it (for the next
  // hop of a forwarded entry, whose row filter judges the old row too).
  enum class OldValues { KeyAndChanged, AsSent };

  // Transforms the pieces of one journal entry into one change-set for the subscriber. Fails on
  // a malformed change-set or a filter that raised an error (message names table and change).
  std::expected<TransformOutput, std::string> apply(std::span<const std::vector<unsigned char>> pieces,
                                                    OldValues oldValues = OldValues::KeyAndChanged);

  // The source tables this transform carries (for Journal::read's table filter).
  std::vector<std::string> sourceTables() const;

  // True when every one of `tables` (at least one) is carried as it is: no row filter, every
  // column travels, no rename. A change-set touching only such tables needs no transforming: its
  // bytes pass through (the subscriber still checks them against its own schema).
  bool passesThrough(std::span<const std::string> tables) const;

  ChangesetTransform(ChangesetTransform&&) noexcept;
  ChangesetTransform& operator=(ChangesetTransform&&) noexcept;
  ~ChangesetTransform();

 private:
  struct Table {
    std::string source, target;
    std::vector<unsigned char> travels;  // one flag per source column; empty: every column
    std::unique_ptr<RowFilter> filter;
    std::size_t columnCount = 0;         // 0: as each change says
  };
  ChangesetTransform() = default;
  std::vector<Table> m_tables;
};

}  // namespace ipcsync::sync
