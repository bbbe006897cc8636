// Internal: what a Journal holds, shared by the files that implement its parts (entries, cursors
// and pruning, dead letters and conflicts).
#pragma once

#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ipcsync/sync/journal.h"
#include "sqlite_db.h"

namespace ipcsync {

struct Journal::Impl {
  JournalConfig config;
  std::filesystem::path file;
  journal_detail::Database db;
  std::int64_t schemaVersion = 0;
  // Prepared once per connection, keyed by the SQL text's address (each SQL is a constant).
  std::unordered_map<const char*, journal_detail::Statement> statements;

  // The prepared statement for `sql`, reset and ready to bind.
  std::expected<journal_detail::Statement*, JournalError> statement(const char* sql, std::string_view doing);
  JournalError error(int code, std::string_view doing) const;
  JournalError error(JournalError::Kind kind, std::string_view what) const;  // prefixes "journal <file>: "
  // Runs a statement whose ?1 and ?2 are (route, subscriber) and that returns no row.
  std::expected<void, JournalError> runForPair(const char* sql, const std::string& route, const std::string& subscriber,
                                               std::string_view doing);
  // Runs a one-row UPDATE/DELETE whose ?1 is `id` (and ?2 `extra` unless 0); NotFound, naming
  // `what` and the command that lists the ids, when no row has that id.
  std::expected<void, JournalError> updateById(const char* sql, std::uint64_t id, std::string_view doing,
                                               std::string_view what, std::string_view listCommand,
                                               std::int64_t extra = 0);
  // The conflicts a SELECT of the conflicts' columns returns (its ?1 bound to `parameter` if any).
  std::expected<std::vector<ParkedConflict>, JournalError> conflicts(const char* sql,
                                                                     std::optional<std::int64_t> parameter,
                                                                     const char* doing);
};

namespace journal_detail {

// Microseconds since the Unix epoch, wall clock: stored times survive restarts.
std::int64_t nowUs();

// Resets a statement when leaving the scope that used it, so it holds no read snapshot.
class StatementUse {
 public:
  explicit StatementUse(Statement& s) : m_s(s) {}
  StatementUse(const StatementUse&) = delete;
  StatementUse& operator=(const StatementUse&) = delete;
  ~StatementUse() { m_s.reset(); }

 private:
  Statement& m_s;
};

}  // namespace journal_detail
}  // namespace ipcsync
