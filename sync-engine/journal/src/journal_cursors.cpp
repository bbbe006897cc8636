// Journal: cursors per (route, subscriber), the snapshot floors that go with them, and retention
// (prune).
#include <fmt/format.h>

#include <algorithm>
#include <ranges>

#include "ipcsync/sync/journal.h"
#include "journal_impl.h"

namespace ipcsync {

using journal_detail::StatementUse;
using journal_detail::Transaction;

namespace {

constexpr const char* kCursor = "SELECT sequence FROM cursors WHERE route = ?1 AND subscriber = ?2";
constexpr const char* kRegister =
    "INSERT INTO cursors (route, subscriber, sequence, updated_at_us) VALUES (?1, ?2, 0, ?3) "
    "ON CONFLICT (route, subscriber) DO NOTHING";
constexpr const char* kAdvance =
    "INSERT INTO cursors (route, subscriber, sequence, updated_at_us) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (route, subscriber) DO UPDATE SET sequence = excluded.sequence, "
    "updated_at_us = excluded.updated_at_us WHERE excluded.sequence > cursors.sequence";
constexpr const char* kHead = "SELECT head FROM journal_state WHERE id = 1";
constexpr const char* kDrop = "DELETE FROM cursors WHERE route = ?1 AND subscriber = ?2";
constexpr const char* kAll = "SELECT route, subscriber, sequence FROM cursors ORDER BY route, subscriber";

// Snapshot floors (schema version 2).
constexpr const char* kSnapshotPut =
    "INSERT OR REPLACE INTO snapshots (route, subscriber, source, head, max_as_of, taken_at_us) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr const char* kSnapshotTablePut =
    "INSERT INTO snapshot_tables (route, subscriber, table_name, as_of) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kSnapshotGet =
    "SELECT source, head, taken_at_us FROM snapshots WHERE route = ?1 AND subscriber = ?2";
constexpr const char* kSnapshotTablesGet =
    "SELECT table_name, as_of FROM snapshot_tables WHERE route = ?1 AND subscriber = ?2";
constexpr const char* kSnapshotDrop = "DELETE FROM snapshots WHERE route = ?1 AND subscriber = ?2";
constexpr const char* kSnapshotTablesDrop = "DELETE FROM snapshot_tables WHERE route = ?1 AND subscriber = ?2";
// Records that can no longer matter (see Journal::prune in journal.h): their pair is gone, or its
// cursor is past the snapshot and past every entry of the source the snapshot holds, and the
// source has journaled through the snapshot's largest as_of, so no such entry can still arrive.
constexpr const char* kSnapshotsSettled =
    "DELETE FROM snapshots WHERE NOT EXISTS (SELECT 1 FROM cursors c WHERE c.route = snapshots.route AND "
    "c.subscriber = snapshots.subscriber) OR EXISTS (SELECT 1 FROM cursors c WHERE c.route = snapshots.route AND "
    "c.subscriber = snapshots.subscriber AND c.sequence > 0 AND c.sequence >= snapshots.head AND "
    "coalesce((SELECT o.through FROM origins o WHERE o.origin = snapshots.source), 0) >= snapshots.max_as_of AND "
    "c.sequence >= coalesce((SELECT max(e.sequence) FROM entries e WHERE e.origin = snapshots.source AND "
    "e.origin_sequence <= snapshots.max_as_of), 0))";
constexpr const char* kSnapshotTablesOrphaned =
    "DELETE FROM snapshot_tables WHERE NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.route = snapshot_tables.route "
    "AND s.subscriber = snapshot_tables.subscriber)";

// Pruning, one batch per transaction (see prune()).
constexpr std::int64_t kPruneBatch = 4096;
constexpr const char* kLowestCursor = "SELECT count(*), min(sequence) FROM cursors";
constexpr const char* kBatchTable = "CREATE TEMP TABLE IF NOT EXISTS prune_batch (sequence INTEGER PRIMARY KEY)";
constexpr const char* kBatchClear = "DELETE FROM temp.prune_batch";
constexpr const char* kBatchFill =
    "INSERT INTO temp.prune_batch SELECT sequence FROM entries WHERE sequence <= ?1 AND journaled_at_us <= ?2 "
    "AND sequence NOT IN (SELECT sequence FROM dead_letters) ORDER BY sequence LIMIT ?3";
constexpr const char* kBatchSums =
    "SELECT count(*), coalesce(sum(bytes), 0) FROM entries WHERE sequence IN (SELECT sequence FROM temp.prune_batch)";
constexpr const char* kMarkOrigins =
    "UPDATE origins SET pruned_origin_sequence = max(pruned_origin_sequence, x.os), "
    "pruned_sequence = max(pruned_sequence, x.s) FROM (SELECT origin, max(origin_sequence) AS os, "
    "max(sequence) AS s FROM entries WHERE sequence IN (SELECT sequence FROM temp.prune_batch) GROUP BY origin) "
    "AS x WHERE origins.origin = x.origin";
constexpr const char* kDeletePieces =
    "DELETE FROM entry_pieces WHERE sequence IN (SELECT sequence FROM temp.prune_batch)";
constexpr const char* kDeleteTables =
    "DELETE FROM entry_tables WHERE sequence IN (SELECT sequence FROM temp.prune_batch)";
constexpr const char* kDeleteProvenance =
    "DELETE FROM entry_provenance WHERE sequence IN (SELECT sequence FROM temp.prune_batch)";
constexpr const char* kDeleteEntries = "DELETE FROM entries WHERE sequence IN (SELECT sequence FROM temp.prune_batch)";
constexpr const char* kShrinkState = "UPDATE journal_state SET entries = entries - ?1, bytes = bytes - ?2 WHERE id = 1";

std::expected<void, JournalError> checkPair(const Journal& journal, const std::string& route,
                                            const std::string& subscriber) {
  if (route.empty() || subscriber.empty())
    return std::unexpected(JournalError{
        JournalError::Kind::InvalidArgument,
        fmt::format("journal {}: a cursor needs a route and a subscriber name (got route '{}', subscriber '{}'); "
                    "nothing changed",
                    journal.path().string(), route, subscriber)});
  return {};
}

}  // namespace

std::expected<std::uint64_t, JournalError> Journal::cursor(const std::string& route, const std::string& subscriber) {
  if (auto ok = checkPair(*this, route, subscriber); !ok) return std::unexpected(ok.error());
  const std::string doing = fmt::format("read the cursor of route '{}', subscriber '{}'", route, subscriber);
  {
    auto s = m_impl->statement(kCursor, doing);
    if (!s) return std::unexpected(s.error());
    StatementUse use(**s);
    (*s)->bind(1, route).bind(2, subscriber);
    const int rc = (*s)->step();
    if (rc == SQLITE_ROW) return static_cast<std::uint64_t>((*s)->integer(0));
    if (rc != SQLITE_DONE) return std::unexpected(m_impl->error(rc, doing));
  }
  auto reg = m_impl->statement(kRegister, doing);
  if (!reg) return std::unexpected(reg.error());
  (*reg)->bind(1, route).bind(2, subscriber).bind(3, journal_detail::nowUs());
  if (int rc = (*reg)->step(); rc != SQLITE_DONE) return std::unexpected(m_impl->error(rc, doing));
  return 0;
}

std::expected<void, JournalError> Journal::advance(const std::string& route, const std::string& subscriber,
                                                   std::uint64_t sequence) {
  if (auto ok = checkPair(*this, route, subscriber); !ok) return std::unexpected(ok.error());
  const std::string doing =
      fmt::format("advance the cursor of route '{}', subscriber '{}' to {}", route, subscriber, sequence);
  {
    // The head only grows, so checking it outside the write is safe.
    auto head = m_impl->statement(kHead, doing);
    if (!head) return std::unexpected(head.error());
    StatementUse use(**head);
    if (int rc = (*head)->step(); rc != SQLITE_ROW) return std::unexpected(m_impl->error(rc, doing));
    if (sequence > static_cast<std::uint64_t>((*head)->integer(0)))
      return std::unexpected(m_impl->error(
          JournalError::Kind::InvalidArgument,
          fmt::format("cannot {}: the last sequence journaled is {}; a subscriber can only confirm what was "
                      "journaled; the cursor was left where it was",
                      doing, (*head)->integer(0))));
  }
  auto s = m_impl->statement(kAdvance, doing);
  if (!s) return std::unexpected(s.error());
  (*s)->bind(1, route).bind(2, subscriber).bind(3, static_cast<std::int64_t>(sequence));
  (*s)->bind(4, journal_detail::nowUs());
  if (int rc = (*s)->step(); rc != SQLITE_DONE) return std::unexpected(m_impl->error(rc, doing));
  return {};
}

std::expected<std::vector<Journal::CursorPosition>, JournalError> Journal::cursors() {
  const std::string_view doing = "list the cursors";
  auto s = m_impl->statement(kAll, doing);
  if (!s) return std::unexpected(s.error());
  StatementUse use(**s);
  std::vector<CursorPosition> out;
  for (;;) {
    const int rc = (*s)->step();
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return std::unexpected(m_impl->error(rc, doing));
    out.push_back({(*s)->text(0), (*s)->text(1), static_cast<std::uint64_t>((*s)->integer(2))});
  }
}

std::expected<void, JournalError> Journal::Impl::runForPair(const char* sql, const std::string& route,
                                                            const std::string& subscriber, std::string_view doing) {
  auto s = statement(sql, doing);
  if (!s) return std::unexpected(s.error());
  StatementUse use(**s);
  (*s)->bind(1, route).bind(2, subscriber);
  if (int rc = (*s)->step(); rc != SQLITE_DONE) return std::unexpected(error(rc, doing));
  return {};
}

std::expected<void, JournalError> Journal::dropCursor(const std::string& route, const std::string& subscriber) {
  const std::string doing = fmt::format("drop the cursor of route '{}', subscriber '{}'", route, subscriber);
  Transaction tx(m_impl->db);
  if (int rc = tx.begin(Transaction::Mode::Write); rc != SQLITE_OK) return std::unexpected(m_impl->error(rc, doing));
  for (const char* sql : {kDrop, kSnapshotDrop, kSnapshotTablesDrop})
    if (auto ok = m_impl->runForPair(sql, route, subscriber, doing); !ok) return ok;
  if (int rc = tx.commit(); rc != SQLITE_OK) return std::unexpected(m_impl->error(rc, doing));
  return {};
}

std::uint64_t SnapshotFloors::lowestAsOf() const {
  if (tableAsOf.empty()) return 0;
  return std::ranges::min(tableAsOf | std::views::values);
}

std::uint64_t SnapshotFloors::highestAsOf() const {
  if (tableAsOf.empty()) return 0;
  return std::ranges::max(tableAsOf | std::views::values);
}

std::expected<void, JournalError> Journal::recordSnapshot(const SnapshotFloors& floors) {
  if (auto ok = checkPair(*this, floors.route, floors.subscriber); !ok) return std::unexpected(ok.error());
  const std::string doing = fmt::format("record the snapshot of route '{}', subscriber '{}' (source '{}', head {})",
                                        floors.route, floors.subscriber, floors.source, floors.head);
  if (floors.source.empty())
    return std::unexpected(m_impl->error(JournalError::Kind::InvalidArgument,
                                         fmt::format("cannot {}: the source instance's name is empty; nothing changed", doing)));
  for (const auto& [table, asOf] : floors.tableAsOf)
    if (table.empty())
      return std::unexpected(m_impl->error(
          JournalError::Kind::InvalidArgument,
          fmt::format("cannot {}: a table name is empty (its as_of is {}); nothing changed", doing, asOf)));
  Transaction tx(m_impl->db);
  if (int rc = tx.begin(Transaction::Mode::Write); rc != SQLITE_OK) return std::unexpected(m_impl->error(rc, doing));
  {
    auto head = m_impl->statement(kHead, doing);
    if (!head) return std::unexpected(head.error());
    StatementUse use(**head);
    if (int rc = (*head)->step(); rc != SQLITE_ROW) return std::unexpected(m_impl->error(rc, doing));
    if (floors.head > static_cast<std::uint64_t>((*head)->integer(0)))
      return std::unexpected(m_impl->error(
          JournalError::Kind::InvalidArgument,
          fmt::format("cannot {}: the last sequence journaled is {}; a snapshot's head is a sequence the journal "
                      "handed out; nothing changed",
                      doing, (*head)->integer(0))));
  }
  {
    auto reg = m_impl->statement(kRegister, doing);
    if (!reg) return std::unexpected(reg.error());
    StatementUse use(**reg);
    (*reg)->bind(1, floors.route).bind(2, floors.subscriber).bind(3, journal_detail::nowUs());
    if (int rc = (*reg)->step(); rc != SQLITE_DONE) return std::unexpected(m_impl->error(rc, doing));
  }
  if (auto ok = m_impl->runForPair(kSnapshotTablesDrop, floors.route, floors.subscriber, doing); !ok) return ok;
  {
    auto put = m_impl->statement(kSnapshotPut, doing);
    if (!put) return std::unexpected(put.error());
    StatementUse use(**put);
    (*put)->bind(1, floors.route).bind(2, floors.subscriber).bind(3, floors.source);
    (*put)->bind(4, static_cast<std::int64_t>(floors.head)).bind(5, static_cast<std::int64_t>(floors.highestAsOf()));
    (*put)->bind(6, floors.takenAtUs != 0 ? floors.takenAtUs : journal_detail::nowUs());
    if (int rc = (*put)->step(); rc != SQLITE_DONE) return std::unexpected(m_impl->error(rc, doing));
  }
  for (const auto& [table, asOf] : floors.tableAsOf) {
    auto put = m_impl->statement(kSnapshotTablePut, doing);
    if (!put) return std::unexpected(put.error());
    StatementUse use(**put);
    (*put)->bind(1, floors.route).bind(2, floors.subscriber).bind(3, table).bind(4, static_cast<std::int64_t>(asOf));
    if (int rc = (*put)->step(); rc != SQLITE_DONE) return std::unexpected(m_impl->error(rc, doing));
  }
  if (int rc = tx.commit(); rc != SQLITE_OK) return std::unexpected(m_impl->error(rc, doing));
  return {};
}

std::expected<std::optional<SnapshotFloors>, JournalError> Journal::snapshotFloors(const std::string& route,
                                                                                   const std::string& subscriber) {
  if (auto ok = checkPair(*this, route, subscriber); !ok) return std::unexpected(ok.error());
  const std::string doing = fmt::format("read the snapshot floors of route '{}', subscriber '{}'", route, subscriber);
  Transaction tx(m_impl->db);
  if (int rc = tx.begin(Transaction::Mode::Read); rc != SQLITE_OK) return std::unexpected(m_impl->error(rc, doing));
  SnapshotFloors out{.route = route, .subscriber = subscriber};
  {
    auto s = m_impl->statement(kSnapshotGet, doing);
    if (!s) return std::unexpected(s.error());
    StatementUse use(**s);
    (*s)->bind(1, route).bind(2, subscriber);
    const int rc = (*s)->step();
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) return std::unexpected(m_impl->error(rc, doing));
    out.source = (*s)->text(0);
    out.head = static_cast<std::uint64_t>((*s)->integer(1));
    out.takenAtUs = (*s)->integer(2);
  }
  auto s = m_impl->statement(kSnapshotTablesGet, doing);
  if (!s) return std::unexpected(s.error());
  StatementUse use(**s);
  (*s)->bind(1, route).bind(2, subscriber);
  int rc;
  while ((rc = (*s)->step()) == SQLITE_ROW) out.tableAsOf[(*s)->text(0)] = static_cast<std::uint64_t>((*s)->integer(1));
  if (rc != SQLITE_DONE) return std::unexpected(m_impl->error(rc, doing));
  return out;
}

std::expected<void, JournalError> Journal::dropSnapshotFloors(const std::string& route, const std::string& subscriber) {
  const std::string doing = fmt::format("drop the snapshot floors of route '{}', subscriber '{}'", route, subscriber);
  Transaction tx(m_impl->db);
  if (int rc = tx.begin(Transaction::Mode::Write); rc != SQLITE_OK) return std::unexpected(m_impl->error(rc, doing));
  for (const char* sql : {kSnapshotDrop, kSnapshotTablesDrop})
    if (auto ok = m_impl->runForPair(sql, route, subscriber, doing); !ok) return ok;
  if (int rc = tx.commit(); rc != SQLITE_OK) return std::unexpected(m_impl->error(rc, doing));
  return {};
}

std::expected<std::uint64_t, JournalError> Journal::prune() {
  Impl& j = *m_impl;
  const char* doing = "prune confirmed change-sets";
  const std::int64_t cutoff =
      journal_detail::nowUs() - std::chrono::duration_cast<std::chrono::microseconds>(j.config.retention).count();
  if (int rc = j.db.exec(kBatchTable); rc != SQLITE_OK) return std::unexpected(j.error(rc, doing));
  {
    // Before entries go: the settled check reads the source's entries, and a record is released
    // only once its cursor passed them, so removing entries first would change nothing.
    const char* releasing = "release the snapshot floors no route needs any more";
    Transaction tx(j.db);
    if (int rc = tx.begin(Transaction::Mode::Write); rc != SQLITE_OK) return std::unexpected(j.error(rc, releasing));
    for (const char* sql : {kSnapshotsSettled, kSnapshotTablesOrphaned}) {
      auto s = j.statement(sql, releasing);
      if (!s) return std::unexpected(s.error());
      StatementUse use(**s);
      if (int rc = (*s)->step(); rc != SQLITE_DONE) return std::unexpected(j.error(rc, releasing));
    }
    if (int rc = tx.commit(); rc != SQLITE_OK) return std::unexpected(j.error(rc, releasing));
  }

  std::uint64_t removed = 0;
  for (;;) {
    Transaction tx(j.db);
    if (int rc = tx.begin(Transaction::Mode::Write); rc != SQLITE_OK) return std::unexpected(j.error(rc, doing));
    std::int64_t lowest = 0;
    {
      auto s = j.statement(kLowestCursor, doing);
      if (!s) return std::unexpected(s.error());
      StatementUse use(**s);
      if (int rc = (*s)->step(); rc != SQLITE_ROW) return std::unexpected(j.error(rc, doing));
      if ((*s)->integer(0) == 0) return removed;  // nobody registered: keep everything
      lowest = (*s)->integer(1);
    }
    if (lowest == 0) return removed;
    auto run = [&](const char* sql, auto&& bind) -> std::expected<void, JournalError> {
      auto s = j.statement(sql, doing);
      if (!s) return std::unexpected(s.error());
      bind(**s);
      if (int rc = (*s)->step(); rc != SQLITE_DONE) return std::unexpected(j.error(rc, doing));
      return {};
    };
    auto none = [](journal_detail::Statement&) {};
    auto ok = run(kBatchClear, none);
    if (ok) ok = run(kBatchFill, [&](journal_detail::Statement& s) { s.bind(1, lowest).bind(2, cutoff).bind(3, kPruneBatch); });
    if (!ok) return std::unexpected(ok.error());
    std::int64_t count = 0, bytes = 0;
    {
      auto s = j.statement(kBatchSums, doing);
      if (!s) return std::unexpected(s.error());
      StatementUse use(**s);
      if (int rc = (*s)->step(); rc != SQLITE_ROW) return std::unexpected(j.error(rc, doing));
      count = (*s)->integer(0);
      bytes = (*s)->integer(1);
    }
    if (count == 0) return removed;
    for (const char* sql : {kMarkOrigins, kDeletePieces, kDeleteTables, kDeleteProvenance, kDeleteEntries})
      if (ok = run(sql, none); !ok) return std::unexpected(ok.error());
    if (ok = run(kShrinkState, [&](journal_detail::Statement& s) { s.bind(1, count).bind(2, bytes); }); !ok)
      return std::unexpected(ok.error());
    if (int rc = tx.commit(); rc != SQLITE_OK) return std::unexpected(j.error(rc, doing));
    removed += static_cast<std::uint64_t>(count);
    if (count < kPruneBatch) return removed;
  }
}

}  // namespace ipcsync
