// SyncStatus: the sync engine's sync.json (docs/design/sync-engine.md, "Status file"), as the
// console shows it: the journal's usage, the sources and every route's delivery.
//
// SyncFile reads <runtime-dir>/<namespace>/sync.json (beside plugins.json), re-parsing only when
// the file changed (inode, size, modification time; the engine replaces it by rename every 200 ms).
// A document that does not parse keeps the last good content and says what was wrong and where.
// Not thread-safe; plain values otherwise.
#pragma once

#include <QByteArray>
#include <QString>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "ipcsync/admin/file_stamp.h"

namespace ipcsync::admin {

struct SyncJournal {
  QString path;
  std::uint64_t entries = 0, bytes = 0, head = 0, maxBytes = 0;
  bool nearlyFull = false;
  friend bool operator==(const SyncJournal&, const SyncJournal&) = default;
};

struct SyncSource {
  QString instance;
  bool connected = false;
  std::uint64_t emitted = 0, journaled = 0;
  friend bool operator==(const SyncSource&, const SyncSource&) = default;
};

struct SyncRoute {
  QString route, source, subscriber;
  bool connected = false;
  std::uint64_t cursor = 0, lagChangesets = 0, lagMs = 0, applied = 0, rows = 0;
  double appliedPerS = 0, rowsPerS = 0;
  std::uint64_t duplicates = 0, conflicts = 0, errors = 0, deadLetters = 0;
  QString lastError, problem;
  friend bool operator==(const SyncRoute&, const SyncRoute&) = default;
};

struct SyncStatus {
  std::filesystem::path path;  // where it was (or would be) read
  bool present = false;        // the file exists
  QString error;               // empty when the last read parsed; else what was wrong, where, what to do
  std::int64_t pid = 0;
  SyncJournal journal;
  std::vector<SyncSource> sources;
  std::vector<SyncRoute> routes;
};

// Parses a sync.json document. On failure returns nothing and sets `error` to a message naming
// the byte offset or the JSON path of the bad field (e.g. "routes[2].lag_ms").
std::optional<SyncStatus> parseSyncJson(const QByteArray& document, QString& error);

class SyncFile {
 public:
  // Reads `path` if it changed since the last call. A missing file empties the content (no sync
  // engine runs); an unreadable or malformed one keeps the last good content and sets `error`.
  const SyncStatus& refresh(const std::filesystem::path& path);
  void clear();
  const SyncStatus& status() const noexcept { return m_status; }

 private:
  SyncStatus m_status;
  FileStamp m_stamp;
};

}  // namespace ipcsync::admin
