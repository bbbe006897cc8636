// JournalReader: the sync journal's dead letters and parked conflicts, read for the console.
//
// Opens the journal file READ-ONLY (SQLITE_OPEN_READONLY) and never writes it; the sync engine
// keeps it in WAL mode, so reading does not block the engine's appends. A read takes one
// consistent snapshot. refresh() reads at most once per `minInterval` (1 s) and otherwise returns
// the last contents. At most the first (oldest) 1000 dead letters and 1000 open conflicts are
// read, which bounds a read's cost. Each conflict's parked change is decoded into its base, source
// and target values side by side (conflict_values.h).
//
// A read may wait: while another connection holds a lock that keeps readers out (an exclusive
// locking mode, a WAL recovery), SQLite's busy handler retries for up to `busyWait`. AdminPoller
// therefore calls refresh() on a worker thread, never on the GUI thread. When the wait runs out
// the contents keep the last rows read, with `busy` set and the error text saying so; when the
// file cannot be opened or read for another reason, the error text and no rows.
//
// Not thread-safe, except cancel(), which any thread may call to cut a busy wait short (the
// console's shutdown). Use one JournalReader from one thread at a time.
#pragma once

#include <QString>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "ipcsync/admin/conflict_values.h"

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
  ConflictSides sides;  // base, source and target values per column, decoded from the parked change
  // Change-sets the subscriber itself journaled to this table after this conflict's change-set
  // (its row may have moved on since it was parked); -1 when the subscriber is no journaled source.
  std::int64_t targetChangesSince = -1;
  friend bool operator==(const ConflictRow&, const ConflictRow&) = default;
};

struct JournalContents {
  std::filesystem::path path;
  QString error;  // empty when the last read succeeded
  bool busy = false;          // the last read gave up waiting for a lock: the rows are from readAtUs
  std::int64_t readAtUs = 0;  // CLOCK_REALTIME of the read the rows come from (0: none yet)
  std::uint64_t reads = 0;    // successful reads so far (for tests and "has anything changed")
  std::vector<DeadLetterRow> deadLetters;
  std::vector<ConflictRow> conflicts;  // not yet resolved, oldest first
};

// "open", "take source requested", "take target requested", "resolved".
QString resolutionText(int resolution);

class JournalReader {
 public:
  explicit JournalReader(std::chrono::milliseconds minInterval = std::chrono::seconds(1),
                         std::chrono::milliseconds busyWait = std::chrono::milliseconds(20));
  ~JournalReader();
  JournalReader(const JournalReader&) = delete;
  JournalReader& operator=(const JournalReader&) = delete;

  // Reads `path` when the interval passed (or the path changed, or `force`). An empty path clears.
  const JournalContents& refresh(const std::filesystem::path& path, bool force = false);
  const JournalContents& contents() const noexcept { return m_contents; }
  // Makes a read waiting for a lock give up now, and every later one at once. Thread-safe.
  void cancel() noexcept { m_cancelled.store(true, std::memory_order_relaxed); }

 private:
  bool read();
  void close();
  static int onBusy(void* self, int attempts);

  std::chrono::milliseconds m_minInterval;
  std::chrono::milliseconds m_busyWait;
  std::chrono::steady_clock::time_point m_busySince{};
  std::atomic<bool> m_cancelled{false};
  std::chrono::steady_clock::time_point m_lastRead{};
  bool m_read = false;
  sqlite3* m_db = nullptr;
  JournalContents m_contents;
};

}  // namespace ipcsync::admin
