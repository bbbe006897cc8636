// JournalReader: the sync journal's dead letters and parked conflicts, read for the console.
//
// Opens the journal file READ-ONLY (SQLITE_OPEN_READONLY, busy timeout 20 ms) and never writes
// it; the sync engine keeps it in WAL mode, so reading does not block the engine's appends. A
// read takes one consistent snapshot. refresh() reads at most once per `minInterval` (1 s) and
// otherwise returns the last contents, so the GUI thread spends at most a few ms per second here.
// At most the first (oldest) 1000 dead letters and 1000 open conflicts are read, which bounds a
// read's cost. When the file cannot be opened or read, the contents carry the error text and no rows.
// Not thread-safe.
#pragma once

#include <QString>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <vector>

struct sqlite3;

namespace ipcsync::admin {

struct DeadLetterRow {
  std::int64_t id = 0;
  QString route, subscriber;
  std::int64_t sequence = 0, attempts = 0, failedAtUs = 0;
  QString error;
  bool replayRequested = false;
  friend bool operator==(const DeadLetterRow&, const DeadLetterRow&) = default;
};

struct ConflictRow {
  std::int64_t id = 0;
  QString route, origin, subscriber, table, kind;
  std::int64_t sequence = 0;
  QString keyJson, sourceJson, targetJson;
  int resolution = 0;  // 0 open, 1 take source requested, 2 take target requested, 3 resolved
  std::int64_t parkedAtUs = 0;
  friend bool operator==(const ConflictRow&, const ConflictRow&) = default;
};

struct JournalContents {
  std::filesystem::path path;
  QString error;  // empty when the last read succeeded
  std::vector<DeadLetterRow> deadLetters;
  std::vector<ConflictRow> conflicts;  // not yet resolved, oldest first
};

// "open", "take source requested", "take target requested", "resolved".
QString resolutionText(int resolution);

class JournalReader {
 public:
  explicit JournalReader(std::chrono::milliseconds minInterval = std::chrono::seconds(1));
  ~JournalReader();
  JournalReader(const JournalReader&) = delete;
  JournalReader& operator=(const JournalReader&) = delete;

  // Reads `path` when the interval passed (or the path changed, or `force`). An empty path clears.
  const JournalContents& refresh(const std::filesystem::path& path, bool force = false);
  const JournalContents& contents() const noexcept { return m_contents; }

 private:
  bool read();
  void close();

  std::chrono::milliseconds m_minInterval;
  std::chrono::steady_clock::time_point m_lastRead{};
  bool m_read = false;
  sqlite3* m_db = nullptr;
  JournalContents m_contents;
};

}  // namespace ipcsync::admin
