// Journal: appending change-sets (group commit, de-duplication, the bound) and reading them back.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <limits>
#include <map>
#include <set>
#include <utility>

#include "ipcsync/sync/journal.h"
#include "journal_impl.h"

namespace ipcsync {

using journal_detail::Statement;
using journal_detail::StatementUse;
using journal_detail::Transaction;

namespace {

constexpr const char* kFindEntry = "SELECT sequence FROM entries WHERE origin = ?1 AND origin_sequence = ?2";
constexpr const char* kFindOrigin =
    "SELECT through, pruned_origin_sequence, pruned_sequence FROM origins WHERE origin = ?1";
constexpr const char* kState = "SELECT head, entries, bytes FROM journal_state WHERE id = 1";
constexpr const char* kWriteState = "UPDATE journal_state SET head = ?1, entries = ?2, bytes = ?3 WHERE id = 1";
constexpr const char* kInsertEntry =
    "INSERT INTO entries (sequence, origin, origin_sequence, commit_time_us, journaled_at_us, bytes) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr const char* kInsertPiece = "INSERT INTO entry_pieces (sequence, piece, data) VALUES (?1, ?2, ?3)";
constexpr const char* kInsertTable = "INSERT INTO entry_tables (table_name, sequence) VALUES (?1, ?2)";
constexpr const char* kInsertProvenance =
    "INSERT INTO entry_provenance (sequence, position, node) VALUES (?1, ?2, ?3)";
constexpr const char* kUpsertOrigin =
    "INSERT INTO origins (origin, through, pruned_origin_sequence, pruned_sequence) VALUES (?1, ?2, 0, 0) "
    "ON CONFLICT (origin) DO UPDATE SET through = max(through, excluded.through)";
constexpr const char* kThrough = "SELECT through FROM origins WHERE origin = ?1";

// Reading: driven by the rowid range, or by the (table_name, sequence) key when tables are given.
constexpr const char* kReadAll =
    "SELECT sequence, origin, origin_sequence, commit_time_us, journaled_at_us FROM entries e "
    "WHERE e.sequence > ?1 AND (?3 IS NULL OR NOT EXISTS (SELECT 1 FROM entry_provenance p "
    "WHERE p.sequence = e.sequence AND p.node = ?3)) ORDER BY e.sequence LIMIT ?4";
constexpr const char* kReadTables =
    "SELECT sequence, origin, origin_sequence, commit_time_us, journaled_at_us FROM entries e "
    "WHERE e.sequence IN (SELECT t.sequence FROM entry_tables t WHERE t.table_name IN "
    "(SELECT value FROM json_each(?2)) AND t.sequence > ?1) AND (?3 IS NULL OR NOT EXISTS (SELECT 1 FROM "
    "entry_provenance p WHERE p.sequence = e.sequence AND p.node = ?3)) ORDER BY e.sequence LIMIT ?4";
constexpr const char* kReadPieces = "SELECT data FROM entry_pieces WHERE sequence = ?1 ORDER BY piece";
constexpr const char* kReadTablesOf = "SELECT table_name FROM entry_tables WHERE sequence = ?1 ORDER BY table_name";
constexpr const char* kReadProvenance =
    "SELECT node FROM entry_provenance WHERE sequence = ?1 ORDER BY position";

std::int64_t toInt(std::uint64_t v) { return static_cast<std::int64_t>(v); }

std::uint64_t entryBytes(const JournalEntry& e) {
  std::uint64_t n = 0;
  for (const auto& p : e.pieces) n += p.size();
  return n;
}

}  // namespace

std::expected<std::vector<std::uint64_t>, JournalError> Journal::append(std::span<const JournalEntry> entries) {
  Impl& j = *m_impl;
  const std::string doing = fmt::format("append {} change-set(s)", entries.size());
  if (entries.empty()) return std::vector<std::uint64_t>{};

  for (std::size_t i = 0; i < entries.size(); ++i) {
    const JournalEntry& e = entries[i];
    auto invalid = [&](std::string_view what) {
      return std::unexpected(j.error(
          JournalError::Kind::InvalidArgument,
          fmt::format("entry {} of {} (origin '{}', origin sequence {}) {}; nothing of this append was stored", i,
                      entries.size(), e.origin, e.originSequence, what)));
    };
    if (e.origin.empty()) return invalid("has no origin; name the plugin instance that captured it");
    if (e.originSequence == 0) return invalid("has origin sequence 0; origins number their change-sets from 1");
    if (e.originSequence > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return invalid("has an origin sequence beyond 2^63-1, which SQLite cannot store");
    if (e.pieces.empty()) return invalid("has no pieces; a change-set carries at least one");
    for (std::size_t p = 0; p < e.pieces.size(); ++p) {
      // No check against pieceBytes: the plugin ABI lets one row exceed it (max_piece_bytes).
      if (e.pieces[p].empty()) return invalid(fmt::format("has an empty piece {}; drop it before appending", p));
    }
    for (const auto& t : e.tables)
      if (t.empty()) return invalid("names an empty table; give each table it touches");
    if (entryBytes(e) > j.config.maxBytes)
      return invalid(fmt::format("is {} bytes, more than the whole journal bound of {} bytes, so it could never be "
                                 "journaled; raise the bound (maxBytes)",
                                 entryBytes(e), j.config.maxBytes));
  }

  Transaction tx(j.db);
  if (int rc = tx.begin(Transaction::Mode::Write); rc != SQLITE_OK) return std::unexpected(j.error(rc, doing));

  auto state = j.statement(kState, doing);
  if (!state) return std::unexpected(state.error());
  if (int rc = (*state)->step(); rc != SQLITE_ROW) return std::unexpected(j.error(rc, doing));
  std::uint64_t head = static_cast<std::uint64_t>((*state)->integer(0));
  std::uint64_t held = static_cast<std::uint64_t>((*state)->integer(1));
  std::uint64_t bytes = static_cast<std::uint64_t>((*state)->integer(2));
  (*state)->reset();

  // Pass 1: which entries are new, which repeat one already journaled (or earlier in this batch).
  std::vector<std::uint64_t> result(entries.size(), 0);
  std::vector<bool> fresh(entries.size(), false);
  std::map<std::pair<std::string_view, std::uint64_t>, std::size_t> inBatch;
  std::uint64_t addBytes = 0, add = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const JournalEntry& e = entries[i];
    if (inBatch.contains({e.origin, e.originSequence})) continue;  // resolved in pass 2
    auto find = j.statement(kFindEntry, doing);
    if (!find) return std::unexpected(find.error());
    (*find)->bind(1, e.origin).bind(2, toInt(e.originSequence));
    int rc = (*find)->step();
    if (rc == SQLITE_ROW) {
      result[i] = static_cast<std::uint64_t>((*find)->integer(0));
      (*find)->reset();
      continue;
    }
    if (rc != SQLITE_DONE) return std::unexpected(j.error(rc, doing));
    auto origin = j.statement(kFindOrigin, doing);
    if (!origin) return std::unexpected(origin.error());
    StatementUse use(**origin);
    (*origin)->bind(1, e.origin);
    rc = (*origin)->step();
    if (rc == SQLITE_ROW && e.originSequence <= static_cast<std::uint64_t>((*origin)->integer(1))) {
      result[i] = static_cast<std::uint64_t>((*origin)->integer(2));  // journaled once, already pruned
      continue;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return std::unexpected(j.error(rc, doing));
    fresh[i] = true;
    inBatch.emplace(std::pair<std::string_view, std::uint64_t>{e.origin, e.originSequence}, i);
    addBytes += entryBytes(e);
    ++add;
  }
  if (bytes + addBytes > j.config.maxBytes)
    return std::unexpected(j.error(
        JournalError::Kind::Full,
        fmt::format("full: it holds {} bytes of its {} byte bound and this append of {} new change-set(s) needs {} "
                    "more; nothing of it was stored; push back on the source and retry once subscribers confirmed "
                    "and prune() made room, or raise the bound (maxBytes)",
                    bytes, j.config.maxBytes, add, addBytes)));

  // Pass 2: store the new ones, all with one journaled-at time.
  const std::int64_t now = journal_detail::nowUs();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const JournalEntry& e = entries[i];
    if (!fresh[i]) {
      if (result[i] == 0) result[i] = result[inBatch.at({e.origin, e.originSequence})];
      continue;
    }
    const std::uint64_t sequence = ++head;
    result[i] = sequence;
    auto insert = j.statement(kInsertEntry, doing);
    if (!insert) return std::unexpected(insert.error());
    (*insert)->bind(1, toInt(sequence)).bind(2, e.origin).bind(3, toInt(e.originSequence));
    (*insert)->bind(4, e.commitTimeUs).bind(5, now).bind(6, toInt(entryBytes(e)));
    if (int rc = (*insert)->step(); rc != SQLITE_DONE) return std::unexpected(j.error(rc, doing));
    for (std::size_t p = 0; p < e.pieces.size(); ++p) {
      auto piece = j.statement(kInsertPiece, doing);
      if (!piece) return std::unexpected(piece.error());
      (*piece)->bind(1, toInt(sequence)).bind(2, static_cast<std::int64_t>(p));
      (*piece)->bind(3, std::span<const unsigned char>(e.pieces[p]));
      if (int rc = (*piece)->step(); rc != SQLITE_DONE) return std::unexpected(j.error(rc, doing));
    }
    for (const std::string& t : std::set<std::string>(e.tables.begin(), e.tables.end())) {
      auto table = j.statement(kInsertTable, doing);
      if (!table) return std::unexpected(table.error());
      (*table)->bind(1, t).bind(2, toInt(sequence));
      if (int rc = (*table)->step(); rc != SQLITE_DONE) return std::unexpected(j.error(rc, doing));
    }
    const std::vector<std::string> originOnly{e.origin};
    const auto& provenance = e.provenance.empty() ? originOnly : e.provenance;
    for (std::size_t p = 0; p < provenance.size(); ++p) {
      auto node = j.statement(kInsertProvenance, doing);
      if (!node) return std::unexpected(node.error());
      (*node)->bind(1, toInt(sequence)).bind(2, static_cast<std::int64_t>(p)).bind(3, provenance[p]);
      if (int rc = (*node)->step(); rc != SQLITE_DONE) return std::unexpected(j.error(rc, doing));
    }
    auto origin = j.statement(kUpsertOrigin, doing);
    if (!origin) return std::unexpected(origin.error());
    (*origin)->bind(1, e.origin).bind(2, toInt(e.originSequence));
    if (int rc = (*origin)->step(); rc != SQLITE_DONE) return std::unexpected(j.error(rc, doing));
  }

  auto write = j.statement(kWriteState, doing);
  if (!write) return std::unexpected(write.error());
  (*write)->bind(1, toInt(head)).bind(2, toInt(held + add)).bind(3, toInt(bytes + addBytes));
  if (int rc = (*write)->step(); rc != SQLITE_DONE) return std::unexpected(j.error(rc, doing));
  if (int rc = tx.commit(); rc != SQLITE_OK) return std::unexpected(j.error(rc, doing));
  return result;
}

std::expected<std::uint64_t, JournalError> Journal::journaledThrough(const std::string& origin) {
  auto s = m_impl->statement(kThrough, "read how far an origin is journaled");
  if (!s) return std::unexpected(s.error());
  StatementUse use(**s);
  (*s)->bind(1, origin);
  const int rc = (*s)->step();
  if (rc == SQLITE_DONE) return 0;
  if (rc != SQLITE_ROW) return std::unexpected(m_impl->error(rc, "read how far an origin is journaled"));
  return static_cast<std::uint64_t>((*s)->integer(0));
}

std::expected<std::vector<JournalEntry>, JournalError> Journal::read(std::uint64_t after, std::size_t limit,
                                                                     std::span<const std::string> tables,
                                                                     const std::string& excludeNode) {
  Impl& j = *m_impl;
  const std::string doing = fmt::format("read change-sets after sequence {}", after);
  std::vector<JournalEntry> out;
  if (limit == 0) return out;

  Transaction tx(j.db);
  if (int rc = tx.begin(Transaction::Mode::Read); rc != SQLITE_OK) return std::unexpected(j.error(rc, doing));
  auto rows = j.statement(tables.empty() ? kReadAll : kReadTables, doing);
  if (!rows) return std::unexpected(rows.error());
  StatementUse use(**rows);
  (*rows)->bind(1, toInt(after));
  if (!tables.empty()) (*rows)->bind(2, nlohmann::json(std::vector<std::string>(tables.begin(), tables.end())).dump());
  if (!excludeNode.empty()) (*rows)->bind(3, excludeNode);
  (*rows)->bind(4, limit > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
                       ? std::numeric_limits<std::int64_t>::max()
                       : static_cast<std::int64_t>(limit));

  // Fills one list of an entry from a per-sequence query.
  auto each = [&](const char* sql, std::int64_t sequence, auto&& take) -> std::expected<void, JournalError> {
    auto s = j.statement(sql, doing);
    if (!s) return std::unexpected(s.error());
    StatementUse inner(**s);
    (*s)->bind(1, sequence);
    int rc;
    while ((rc = (*s)->step()) == SQLITE_ROW) take(**s);
    if (rc != SQLITE_DONE) return std::unexpected(j.error(rc, doing));
    return {};
  };

  int rc;
  while ((rc = (*rows)->step()) == SQLITE_ROW) {
    JournalEntry e;
    const std::int64_t sequence = (*rows)->integer(0);
    e.sequence = static_cast<std::uint64_t>(sequence);
    e.origin = (*rows)->text(1);
    e.originSequence = static_cast<std::uint64_t>((*rows)->integer(2));
    e.commitTimeUs = (*rows)->integer(3);
    e.journaledAtUs = (*rows)->integer(4);
    auto ok = each(kReadPieces, sequence, [&](Statement& s) {
      const auto data = s.blob(0);
      e.pieces.emplace_back(data.begin(), data.end());
    });
    if (ok) ok = each(kReadTablesOf, sequence, [&](Statement& s) { e.tables.push_back(s.text(0)); });
    if (ok) ok = each(kReadProvenance, sequence, [&](Statement& s) { e.provenance.push_back(s.text(0)); });
    if (!ok) return std::unexpected(ok.error());
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return std::unexpected(j.error(rc, doing));
  return out;
}

}  // namespace ipcsync
