#include "journal_schema.h"

#include <fmt/format.h>

#include <iterator>

namespace ipcsync::journal_detail {
namespace {

// Version 1. Sequences are assigned by the journal itself from journal_state.head, never by
// SQLite, so that pruning every entry can never make a sequence be handed out twice.
constexpr const char* kCreateV1 = R"sql(
CREATE TABLE journal_schema (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL,
  created_at_us INTEGER NOT NULL
);
CREATE TABLE journal_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  head INTEGER NOT NULL,     -- last sequence handed out
  entries INTEGER NOT NULL,  -- rows in entries
  bytes INTEGER NOT NULL     -- sum of entries.bytes
);
CREATE TABLE entries (
  sequence INTEGER PRIMARY KEY,
  origin TEXT NOT NULL,
  origin_sequence INTEGER NOT NULL,
  commit_time_us INTEGER NOT NULL,
  journaled_at_us INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  UNIQUE (origin, origin_sequence)
);
CREATE TABLE entry_pieces (
  sequence INTEGER NOT NULL,
  piece INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (sequence, piece)
);
CREATE TABLE entry_tables (
  table_name TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  PRIMARY KEY (table_name, sequence)
) WITHOUT ROWID;
CREATE INDEX entry_tables_by_sequence ON entry_tables (sequence);
CREATE TABLE entry_provenance (
  sequence INTEGER NOT NULL,
  position INTEGER NOT NULL,
  node TEXT NOT NULL,
  PRIMARY KEY (sequence, position)
) WITHOUT ROWID;
CREATE TABLE origins (
  origin TEXT PRIMARY KEY,
  through INTEGER NOT NULL,                -- highest origin_sequence ever journaled
  pruned_origin_sequence INTEGER NOT NULL, -- highest origin_sequence removed by prune
  pruned_sequence INTEGER NOT NULL         -- the journal sequence of that removed entry
) WITHOUT ROWID;
CREATE TABLE cursors (
  route TEXT NOT NULL,
  subscriber TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  updated_at_us INTEGER NOT NULL,
  PRIMARY KEY (route, subscriber)
) WITHOUT ROWID;
CREATE TABLE dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  route TEXT NOT NULL,
  subscriber TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  error TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  failed_at_us INTEGER NOT NULL,
  replay_requested INTEGER NOT NULL DEFAULT 0,
  UNIQUE (route, subscriber, sequence)
);
CREATE INDEX dead_letters_by_sequence ON dead_letters (sequence);
CREATE TABLE conflicts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  route TEXT NOT NULL,
  origin TEXT NOT NULL,
  subscriber TEXT NOT NULL,
  table_name TEXT NOT NULL,
  kind TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  key_json TEXT NOT NULL,
  source_json TEXT NOT NULL,
  target_json TEXT NOT NULL,
  change BLOB NOT NULL,
  resolution INTEGER NOT NULL DEFAULT 0,  -- 0 open, 1 take source requested, 2 take target requested, 3 resolved
  parked_at_us INTEGER NOT NULL,
  resolved_at_us INTEGER
);
CREATE INDEX conflicts_by_resolution ON conflicts (resolution, id);
INSERT INTO journal_state (id, head, entries, bytes) VALUES (1, 0, 0, 0);
)sql";

// Version 2: the floors of a route's first snapshot (Journal::recordSnapshot), so that a sync
// engine restarted after the snapshot's apply still skips what the snapshot holds.
constexpr const char* kUpgradeToV2 = R"sql(
CREATE TABLE snapshots (
  route TEXT NOT NULL,
  subscriber TEXT NOT NULL,
  source TEXT NOT NULL,
  head INTEGER NOT NULL,       -- journal head read before the snapshot; applied as 2 * head + 1
  max_as_of INTEGER NOT NULL,  -- the largest of its tables' as_of
  taken_at_us INTEGER NOT NULL,
  PRIMARY KEY (route, subscriber)
) WITHOUT ROWID;
CREATE TABLE snapshot_tables (
  route TEXT NOT NULL,
  subscriber TEXT NOT NULL,
  table_name TEXT NOT NULL,
  as_of INTEGER NOT NULL,
  PRIMARY KEY (route, subscriber, table_name)
) WITHOUT ROWID;
)sql";

// What takes a file from version N to N + 1, at index N - 1.
constexpr const char* kUpgrades[] = {kUpgradeToV2};
static_assert(std::size(kUpgrades) == kSchemaVersion - 1, "one upgrade per version after the first");

std::expected<void, JournalError> setVersion(Database& db, const std::filesystem::path& file, std::int64_t v) {
  Statement s;
  int rc = db.prepare("UPDATE journal_schema SET version = ?1 WHERE id = 1", s);
  if (rc == SQLITE_OK) {
    s.bind(1, v);
    rc = s.step();
  }
  if (rc != SQLITE_DONE)
    return std::unexpected(sqliteError(file, rc, fmt::format("record its schema version {}", v), db.errorMessage()));
  return {};
}

// Runs the upgrades from `from` to kSchemaVersion inside the caller's transaction.
std::expected<void, JournalError> upgrade(Database& db, const std::filesystem::path& file, std::int64_t from) {
  for (std::int64_t v = from; v < kSchemaVersion; ++v) {
    if (int rc = db.exec(kUpgrades[v - 1]); rc != SQLITE_OK)
      return std::unexpected(sqliteError(
          file, rc, fmt::format("upgrade its schema from version {} to {} (it was left at version {})", v, v + 1, from),
          db.errorMessage()));
    if (auto ok = setVersion(db, file, v + 1); !ok) return ok;
  }
  return {};
}

std::expected<bool, JournalError> hasTable(Database& db, const std::filesystem::path& file, const char* name) {
  Statement s;
  if (int rc = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1", s); rc != SQLITE_OK)
    return std::unexpected(sqliteError(file, rc, "read its schema", db.errorMessage()));
  s.bind(1, std::string_view(name));
  const int rc = s.step();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return std::unexpected(sqliteError(file, rc, "read its schema", db.errorMessage()));
  return rc == SQLITE_ROW;
}

}  // namespace

std::expected<std::int64_t, JournalError> prepareSchema(Database& db, const std::filesystem::path& file) {
  Transaction tx(db);
  if (int rc = tx.begin(Transaction::Mode::Write); rc != SQLITE_OK)
    return std::unexpected(sqliteError(file, rc, "open it", db.errorMessage()));

  auto versioned = hasTable(db, file, "journal_schema");
  if (!versioned) return std::unexpected(versioned.error());
  if (!*versioned) {
    Statement count;
    int rc = db.prepare("SELECT count(*) FROM sqlite_schema", count);
    if (rc == SQLITE_OK) rc = count.step();
    if (rc != SQLITE_ROW) return std::unexpected(sqliteError(file, rc, "read its schema", db.errorMessage()));
    if (count.integer(0) != 0)
      return std::unexpected(JournalError{
          JournalError::Kind::Corrupt,
          fmt::format("{} is a SQLite database but not a sync journal (it has tables but no journal_schema); it was "
                      "left untouched; point journal.path at another file",
                      file.string())});
    if (rc = db.exec(kCreateV1); rc != SQLITE_OK)
      return std::unexpected(sqliteError(file, rc, "create its tables", db.errorMessage()));
    Statement insert;
    if (rc = db.prepare("INSERT INTO journal_schema (id, version, created_at_us) "
                            "VALUES (1, ?1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))",
                            insert);
        rc != SQLITE_OK)
      return std::unexpected(sqliteError(file, rc, "create its tables", db.errorMessage()));
    insert.bind(1, std::int64_t{1});
    if (rc = insert.step(); rc != SQLITE_DONE)
      return std::unexpected(sqliteError(file, rc, "create its tables", db.errorMessage()));
    if (auto up = upgrade(db, file, 1); !up) return std::unexpected(up.error());
    if (rc = tx.commit(); rc != SQLITE_OK)
      return std::unexpected(sqliteError(file, rc, "create its tables", db.errorMessage()));
    return kSchemaVersion;
  }

  Statement version;
  if (int rc = db.prepare("SELECT version FROM journal_schema WHERE id = 1", version); rc != SQLITE_OK)
    return std::unexpected(sqliteError(file, rc, "read its schema version", db.errorMessage()));
  const int rc = version.step();
  if (rc == SQLITE_DONE)
    return std::unexpected(JournalError{
        JournalError::Kind::Corrupt,
        fmt::format("journal {} has no schema version row; it was left untouched; move it aside and start with an "
                    "empty journal",
                    file.string())});
  if (rc != SQLITE_ROW) return std::unexpected(sqliteError(file, rc, "read its schema version", db.errorMessage()));
  const std::int64_t found = version.integer(0);
  if (found > kSchemaVersion)
    return std::unexpected(JournalError{
        JournalError::Kind::Corrupt,
        fmt::format("journal {} has schema version {}, newer than this build understands (up to {}); it was left "
                    "untouched; run the ipcsync version that wrote it, or move the file aside to start an empty "
                    "journal",
                    file.string(), found, kSchemaVersion)});
  if (found < 1)
    return std::unexpected(JournalError{
        JournalError::Kind::Corrupt,
        fmt::format("journal {} has an invalid schema version {}; it was left untouched; move it aside and start "
                    "with an empty journal",
                    file.string(), found)});
  if (found < kSchemaVersion) {
    if (auto up = upgrade(db, file, found); !up) return std::unexpected(up.error());
    if (int c = tx.commit(); c != SQLITE_OK)
      return std::unexpected(sqliteError(file, c, fmt::format("upgrade its schema from version {}", found),
                                         db.errorMessage()));
  }
  return kSchemaVersion;
}

}  // namespace ipcsync::journal_detail
