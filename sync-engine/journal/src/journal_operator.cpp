// Journal: the operator's tables, dead letters and parked conflicts, and the requests
// `ipcsync deadletter` / `ipcsync conflicts` record in them for the sync engine to act on.
#include <fmt/format.h>

#include "ipcsync/sync/journal.h"
#include "journal_impl.h"

namespace ipcsync {

using journal_detail::Statement;
using journal_detail::StatementUse;
using journal_detail::Transaction;

namespace {

constexpr const char* kEntryHeld = "SELECT 1 FROM entries WHERE sequence = ?1";
constexpr const char* kAddLetter =
    "INSERT INTO dead_letters (route, subscriber, sequence, error, attempts, failed_at_us, replay_requested) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0) ON CONFLICT (route, subscriber, sequence) DO UPDATE SET "
    "error = excluded.error, attempts = excluded.attempts, failed_at_us = excluded.failed_at_us, "
    "replay_requested = 0 RETURNING id";
constexpr const char* kLetters =
    "SELECT id, route, subscriber, sequence, error, attempts, failed_at_us, replay_requested FROM dead_letters "
    "ORDER BY id";
constexpr const char* kRequestReplay = "UPDATE dead_letters SET replay_requested = 1 WHERE id = ?1";
constexpr const char* kRemoveLetter = "DELETE FROM dead_letters WHERE id = ?1";

constexpr const char* kPark =
    "INSERT INTO conflicts (route, origin, subscriber, table_name, kind, sequence, key_json, source_json, "
    "target_json, change, resolution, parked_at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, ?11) "
    "RETURNING id";
// Every conflict query reads these columns, in this order (Impl::conflicts reads them by position).
#define IPCSYNC_SELECT_CONFLICTS                                                                          \
  "SELECT id, route, origin, subscriber, table_name, kind, sequence, key_json, source_json, target_json, " \
  "change, resolution, parked_at_us FROM conflicts "
constexpr const char* kConflicts = IPCSYNC_SELECT_CONFLICTS "WHERE (?1 = 0 OR resolution <> 3) ORDER BY id";
// Only those an operator decided on (resolution 1 or 2): the sync engine asks every second, and a
// conflict storm may have parked many thousands (index conflicts_by_resolution).
constexpr const char* kRequested = IPCSYNC_SELECT_CONFLICTS "WHERE resolution IN (1, 2) ORDER BY id";
#undef IPCSYNC_SELECT_CONFLICTS
constexpr const char* kResolution = "SELECT resolution FROM conflicts WHERE id = ?1";
constexpr const char* kSetResolution = "UPDATE conflicts SET resolution = ?2 WHERE id = ?1";
constexpr const char* kMarkResolved =
    "UPDATE conflicts SET resolution = 3, resolved_at_us = coalesce(resolved_at_us, ?2) WHERE id = ?1";

std::int64_t toInt(std::uint64_t v) { return static_cast<std::int64_t>(v); }

}  // namespace

std::expected<std::uint64_t, JournalError> Journal::addDeadLetter(const DeadLetter& letter) {
  Impl& j = *m_impl;
  const std::string doing = fmt::format("record a dead letter for sequence {} (route '{}', subscriber '{}')",
                                        letter.sequence, letter.route, letter.subscriber);
  if (letter.route.empty() || letter.subscriber.empty())
    return std::unexpected(j.error(JournalError::Kind::InvalidArgument,
                                   fmt::format("cannot {}: route and subscriber must be named; nothing stored", doing)));
  Transaction tx(j.db);
  if (int rc = tx.begin(Transaction::Mode::Write); rc != SQLITE_OK) return std::unexpected(j.error(rc, doing));
  {
    auto held = j.statement(kEntryHeld, doing);
    if (!held) return std::unexpected(held.error());
    StatementUse use(**held);
    (*held)->bind(1, toInt(letter.sequence));
    const int rc = (*held)->step();
    if (rc == SQLITE_DONE)
      return std::unexpected(j.error(
          JournalError::Kind::InvalidArgument,
          fmt::format("cannot {}: the journal does not hold that sequence (never journaled, or already pruned), so "
                      "it could never be replayed; nothing stored",
                      doing)));
    if (rc != SQLITE_ROW) return std::unexpected(j.error(rc, doing));
  }
  auto s = j.statement(kAddLetter, doing);
  if (!s) return std::unexpected(s.error());
  StatementUse use(**s);
  (*s)->bind(1, letter.route).bind(2, letter.subscriber).bind(3, toInt(letter.sequence)).bind(4, letter.error);
  (*s)->bind(5, static_cast<std::int64_t>(letter.attempts));
  (*s)->bind(6, letter.failedAtUs != 0 ? letter.failedAtUs : journal_detail::nowUs());
  if (int rc = (*s)->step(); rc != SQLITE_ROW) return std::unexpected(j.error(rc, doing));
  const auto id = static_cast<std::uint64_t>((*s)->integer(0));
  (*s)->reset();
  if (int rc = tx.commit(); rc != SQLITE_OK) return std::unexpected(j.error(rc, doing));
  return id;
}

std::expected<std::vector<DeadLetter>, JournalError> Journal::deadLetters() {
  const char* doing = "list dead letters";
  auto s = m_impl->statement(kLetters, doing);
  if (!s) return std::unexpected(s.error());
  StatementUse use(**s);
  std::vector<DeadLetter> out;
  int rc;
  while ((rc = (*s)->step()) == SQLITE_ROW) {
    const Statement& r = **s;
    out.push_back(DeadLetter{.id = static_cast<std::uint64_t>(r.integer(0)),
                             .route = r.text(1),
                             .subscriber = r.text(2),
                             .sequence = static_cast<std::uint64_t>(r.integer(3)),
                             .error = r.text(4),
                             .attempts = static_cast<std::uint32_t>(r.integer(5)),
                             .failedAtUs = r.integer(6),
                             .replayRequested = r.integer(7) != 0});
  }
  if (rc != SQLITE_DONE) return std::unexpected(m_impl->error(rc, doing));
  return out;
}

std::expected<void, JournalError> Journal::Impl::updateById(const char* sql, std::uint64_t id, std::string_view doing,
                                                             std::string_view what, std::string_view listCommand,
                                                             std::int64_t extra) {
  auto s = statement(sql, doing);
  if (!s) return std::unexpected(s.error());
  (*s)->bind(1, toInt(id));
  if (extra != 0) (*s)->bind(2, extra);
  if (int rc = (*s)->step(); rc != SQLITE_DONE) return std::unexpected(error(rc, doing));
  if (sqlite3_changes64(db.get()) == 0)
    return std::unexpected(
        error(JournalError::Kind::NotFound, fmt::format("no {} with id {}; `{}` shows the ids", what, id, listCommand)));
  return {};
}

std::expected<void, JournalError> Journal::requestReplay(std::uint64_t id) {
  return m_impl->updateById(kRequestReplay, id, "request a dead-letter replay", "dead letter", "ipcsync deadletter list");
}

std::expected<void, JournalError> Journal::removeDeadLetter(std::uint64_t id) {
  return m_impl->updateById(kRemoveLetter, id, "remove a dead letter", "dead letter", "ipcsync deadletter list");
}

std::expected<std::uint64_t, JournalError> Journal::park(const ParkedConflict& c) {
  Impl& j = *m_impl;
  const std::string doing =
      fmt::format("park a conflict on table '{}' (route '{}', subscriber '{}')", c.table, c.route, c.subscriber);
  if (c.route.empty() || c.subscriber.empty() || c.table.empty())
    return std::unexpected(j.error(
        JournalError::Kind::InvalidArgument,
        fmt::format("cannot {}: route, subscriber and table must be named; nothing stored", doing)));
  auto s = j.statement(kPark, doing);
  if (!s) return std::unexpected(s.error());
  StatementUse use(**s);
  (*s)->bind(1, c.route).bind(2, c.origin).bind(3, c.subscriber).bind(4, c.table).bind(5, c.kind);
  (*s)->bind(6, toInt(c.sequence)).bind(7, c.keyJson).bind(8, c.sourceJson).bind(9, c.targetJson);
  (*s)->bind(10, std::span<const unsigned char>(c.change));
  (*s)->bind(11, c.parkedAtUs != 0 ? c.parkedAtUs : journal_detail::nowUs());
  if (int rc = (*s)->step(); rc != SQLITE_ROW) return std::unexpected(j.error(rc, doing));
  return static_cast<std::uint64_t>((*s)->integer(0));
}

std::expected<std::vector<ParkedConflict>, JournalError> Journal::conflicts(bool openOnly) {
  return m_impl->conflicts(kConflicts, openOnly ? 1 : 0, "list parked conflicts");
}

std::expected<std::vector<ParkedConflict>, JournalError> Journal::requestedResolutions() {
  return m_impl->conflicts(kRequested, std::nullopt, "list the conflicts an operator resolved");
}

std::expected<std::vector<ParkedConflict>, JournalError> Journal::Impl::conflicts(const char* sql,
                                                                                   std::optional<std::int64_t> parameter,
                                                                                   const char* doing) {
  auto s = statement(sql, doing);
  if (!s) return std::unexpected(s.error());
  StatementUse use(**s);
  if (parameter) (*s)->bind(1, *parameter);
  std::vector<ParkedConflict> out;
  int rc;
  while ((rc = (*s)->step()) == SQLITE_ROW) {
    const Statement& r = **s;
    ParkedConflict c;
    c.id = static_cast<std::uint64_t>(r.integer(0));
    c.route = r.text(1);
    c.origin = r.text(2);
    c.subscriber = r.text(3);
    c.table = r.text(4);
    c.kind = r.text(5);
    c.sequence = static_cast<std::uint64_t>(r.integer(6));
    c.keyJson = r.text(7);
    c.sourceJson = r.text(8);
    c.targetJson = r.text(9);
    const auto change = r.blob(10);
    c.change.assign(change.begin(), change.end());
    const std::int64_t res = r.integer(11);
    c.resolution = res == 1   ? ConflictResolution::TakeSourceRequested
                   : res == 2 ? ConflictResolution::TakeTargetRequested
                   : res == 3 ? ConflictResolution::Resolved
                              : ConflictResolution::Open;
    c.parkedAtUs = r.integer(12);
    out.push_back(std::move(c));
  }
  if (rc != SQLITE_DONE) return std::unexpected(error(rc, doing));
  return out;
}

std::expected<void, JournalError> Journal::requestResolution(std::uint64_t id, ConflictResolution take) {
  Impl& j = *m_impl;
  const std::string doing = fmt::format("record a resolution for conflict {}", id);
  if (take != ConflictResolution::TakeSourceRequested && take != ConflictResolution::TakeTargetRequested)
    return std::unexpected(j.error(
        JournalError::Kind::InvalidArgument,
        fmt::format("cannot {}: the operator's choice is take source or take target; nothing changed", doing)));
  Transaction tx(j.db);
  if (int rc = tx.begin(Transaction::Mode::Write); rc != SQLITE_OK) return std::unexpected(j.error(rc, doing));
  {
    auto s = j.statement(kResolution, doing);
    if (!s) return std::unexpected(s.error());
    StatementUse use(**s);
    (*s)->bind(1, toInt(id));
    const int rc = (*s)->step();
    if (rc == SQLITE_DONE)
      return std::unexpected(j.error(JournalError::Kind::NotFound,
                                     fmt::format("no conflict with id {}; `ipcsync conflicts list` shows the ids", id)));
    if (rc != SQLITE_ROW) return std::unexpected(j.error(rc, doing));
    if ((*s)->integer(0) == 3)
      return std::unexpected(j.error(JournalError::Kind::InvalidArgument,
                                     fmt::format("conflict {} was already resolved; nothing changed", id)));
  }
  if (auto ok = j.updateById(kSetResolution, id, doing, "conflict", "ipcsync conflicts list",
                     take == ConflictResolution::TakeSourceRequested ? 1 : 2);
      !ok)
    return ok;
  if (int rc = tx.commit(); rc != SQLITE_OK) return std::unexpected(j.error(rc, doing));
  return {};
}

std::expected<void, JournalError> Journal::markResolved(std::uint64_t id) {
  return m_impl->updateById(kMarkResolved, id, "mark a conflict resolved", "conflict", "ipcsync conflicts list",
              journal_detail::nowUs());
}

}  // namespace ipcsync
