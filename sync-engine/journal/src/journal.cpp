// Journal: opening, settings, usage. Entries, cursors and the operator tables live in their own
// files (journal_entries.cpp, journal_cursors.cpp, journal_operator.cpp).
#include <fmt/format.h>
#include <sys/statvfs.h>

#include <chrono>
#include <system_error>

#include "ipcsync/sync/journal.h"
#include "journal_impl.h"
#include "journal_schema.h"

namespace ipcsync {

using journal_detail::Statement;
using journal_detail::StatementUse;

namespace journal_detail {
std::int64_t nowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace journal_detail

namespace {

constexpr int kBusyTimeoutMs = 3000;

const char* synchronousPragma(Durability d) {
  switch (d) {
    case Durability::Full: return "PRAGMA synchronous = FULL";
    case Durability::Normal: return "PRAGMA synchronous = NORMAL";
    case Durability::Off: return "PRAGMA synchronous = OFF";
  }
  return "PRAGMA synchronous = FULL";
}

std::expected<void, JournalError> checkConfig(const JournalConfig& c) {
  auto invalid = [&](std::string what) {
    return std::unexpected(JournalError{JournalError::Kind::InvalidArgument, std::move(what)});
  };
  if (c.path.empty())
    return invalid("journal path is empty; resolve it (the default is <state dir>/journal.db) before opening");
  if (c.maxBytes == 0)
    return invalid(fmt::format("journal {}: the bound maxBytes is 0, so nothing could ever be journaled; give it a "
                               "size in bytes (default 1 GiB)",
                               c.path.string()));
  if (c.warnAtPercent == 0 || c.warnAtPercent > 100)
    return invalid(fmt::format("journal {}: warnAtPercent is {}, expected 1 to 100 (default 80)", c.path.string(),
                               c.warnAtPercent));
  if (c.pieceBytes == 0)
    return invalid(fmt::format("journal {}: pieceBytes is 0; give the largest piece in bytes (default 256 KiB)",
                               c.path.string()));
  return {};
}

}  // namespace

std::expected<journal_detail::Statement*, JournalError> Journal::Impl::statement(const char* sql,
                                                                                  std::string_view doing) {
  auto it = statements.find(sql);
  if (it == statements.end()) {
    Statement s;
    if (int rc = db.prepare(sql, s); rc != SQLITE_OK) return std::unexpected(error(rc, doing));
    it = statements.emplace(sql, std::move(s)).first;
  }
  it->second.reset();
  return &it->second;
}

JournalError Journal::Impl::error(int code, std::string_view doing) const {
  return journal_detail::sqliteError(file, code, doing, db.errorMessage());
}

JournalError Journal::Impl::error(JournalError::Kind kind, std::string_view what) const {
  return {kind, fmt::format("journal {}: {}", file.string(), what)};
}

Journal::Journal(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Journal::~Journal() = default;

std::expected<std::unique_ptr<Journal>, JournalError> Journal::open(const JournalConfig& config) {
  if (auto ok = checkConfig(config); !ok) return std::unexpected(ok.error());
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->file = config.path;

  if (std::error_code ec; !impl->file.parent_path().empty() && !std::filesystem::exists(impl->file.parent_path(), ec))
    if (std::filesystem::create_directories(impl->file.parent_path(), ec); ec)
      return std::unexpected(JournalError{
          JournalError::Kind::Io, fmt::format("cannot create the directory of journal {}: {}; create it or choose "
                                              "another journal path",
                                              impl->file.string(), ec.message())});

  if (int rc = impl->db.open(impl->file); rc != SQLITE_OK) return std::unexpected(impl->error(rc, "open it"));
  if (sqlite3_db_readonly(impl->db.get(), "main") == 1)
    return std::unexpected(impl->error(SQLITE_READONLY, "open it for writing"));
  sqlite3_busy_timeout(impl->db.get(), kBusyTimeoutMs);

  // WAL first: every later statement, including the schema check, runs in it.
  {
    Statement mode;
    int rc = impl->db.prepare("PRAGMA journal_mode = WAL", mode);
    if (rc == SQLITE_OK) rc = mode.step();
    if (rc != SQLITE_ROW) return std::unexpected(impl->error(rc, "switch it to write-ahead logging"));
    if (mode.text(0) != "wal")
      return std::unexpected(impl->error(
          JournalError::Kind::Io,
          fmt::format("SQLite refused write-ahead logging (journal_mode is '{}'); the journal needs a local file "
                      "system that supports shared memory (not NFS)",
                      mode.text(0))));
  }
  if (int rc = impl->db.exec(synchronousPragma(config.durability)); rc != SQLITE_OK)
    return std::unexpected(impl->error(rc, "set its durability"));

  auto version = journal_detail::prepareSchema(impl->db, impl->file);
  if (!version) return std::unexpected(version.error());
  impl->schemaVersion = *version;
  return std::unique_ptr<Journal>(new Journal(std::move(impl)));
}

const std::filesystem::path& Journal::path() const noexcept { return m_impl->file; }

std::expected<JournalSettings, JournalError> Journal::settings() {
  auto read = [this](const char* sql) -> std::expected<Statement*, JournalError> {
    auto s = m_impl->statement(sql, "read its settings");
    if (!s) return s;
    if (int rc = (*s)->step(); rc != SQLITE_ROW) return std::unexpected(m_impl->error(rc, "read its settings"));
    return s;
  };
  JournalSettings out;
  out.schemaVersion = static_cast<std::uint32_t>(m_impl->schemaVersion);
  auto mode = read("PRAGMA journal_mode");
  if (!mode) return std::unexpected(mode.error());
  out.journalMode = (*mode)->text(0);
  (*mode)->reset();
  auto sync = read("PRAGMA synchronous");
  if (!sync) return std::unexpected(sync.error());
  static constexpr const char* kLevels[] = {"off", "normal", "full", "extra"};
  const std::int64_t level = (*sync)->integer(0);
  out.synchronous = level >= 0 && level <= 3 ? kLevels[level] : "unknown";
  (*sync)->reset();
  auto busy = read("PRAGMA busy_timeout");
  if (!busy) return std::unexpected(busy.error());
  out.busyTimeout = std::chrono::milliseconds((*busy)->integer(0));
  (*busy)->reset();
  return out;
}

std::expected<JournalUsage, JournalError> Journal::usage() {
  static constexpr const char* kSql = "SELECT head, entries, bytes FROM journal_state WHERE id = 1";
  auto s = m_impl->statement(kSql, "read its usage");
  if (!s) return std::unexpected(s.error());
  StatementUse use(**s);
  if (int rc = (*s)->step(); rc != SQLITE_ROW) return std::unexpected(m_impl->error(rc, "read its usage"));
  JournalUsage u;
  u.head = static_cast<std::uint64_t>((*s)->integer(0));
  u.entries = static_cast<std::uint64_t>((*s)->integer(1));
  u.bytes = static_cast<std::uint64_t>((*s)->integer(2));
  u.maxBytes = m_impl->config.maxBytes;
  const std::uint64_t warn = m_impl->config.warnAtPercent;
  u.nearlyFull = u.bytes >= u.maxBytes / 100 * warn + u.maxBytes % 100 * warn / 100;
  return u;
}

std::optional<std::uint64_t> Journal::diskFreeBytes() const {
  const auto dir = m_impl->file.has_parent_path() ? m_impl->file.parent_path() : std::filesystem::path(".");
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
}

}  // namespace ipcsync
