// Internal: the journal's tables (docs/design/journal.md, "Schema") and the version check done
// on open.
#pragma once

#include <cstdint>
#include <expected>
#include <filesystem>

#include "ipcsync/sync/journal.h"
#include "sqlite_db.h"

namespace ipcsync::journal_detail {

// The schema this build writes and reads. 2 added the snapshot floors (snapshots, snapshot_tables).
inline constexpr std::int64_t kSchemaVersion = 2;

// Creates the tables in an empty file, or checks an existing file's version: a newer version, a
// SQLite file that is not a journal, or a missing version row is refused with a message naming
// the file, and the file is left untouched. An older version is brought up to kSchemaVersion in
// the same transaction (all of it or none of it). Returns the version the file now has.
std::expected<std::int64_t, JournalError> prepareSchema(Database& db, const std::filesystem::path& file);

}  // namespace ipcsync::journal_detail
