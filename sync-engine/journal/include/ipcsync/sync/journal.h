// Journal: the sync engine's durable record of every captured change-set, in a SQLite WAL file.
//
// A change-set is appended (with its origin's own sequence, so a source that re-emits after a
// restart is recognised and not stored twice) before it is acknowledged to its source. Each
// (route, subscriber) pair has a cursor that advances only when the subscriber confirms it applied
// everything up to it; retention then removes what every cursor has passed. Change-sets that keep
// failing move to the dead letters; conflicts parked by a plugin wait in the conflicts table until
// an operator resolves them. The CLI (`ipcsync deadletter`, `ipcsync conflicts`) opens the same
// file while the sync engine runs.
//
// Thread safety: one Journal per thread; several processes may open one file (SQLite WAL locking,
// busy timeout).
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ipcsync/sync/topology.h"

namespace ipcsync {

struct JournalError {
  enum class Kind { Io, Corrupt, Full, NotFound, InvalidArgument, Busy } kind;
  std::string message;  // names the file, what failed and what to do
};

// One captured change-set as the journal keeps it.
struct JournalEntry {
  std::uint64_t sequence = 0;           // the journal's own, increasing, no gaps at append time
  std::string origin;                   // plugin instance that captured it
  std::uint64_t originSequence = 0;     // the origin's capture sequence
  std::int64_t commitTimeUs = 0;        // when the source committed it
  std::int64_t journaledAtUs = 0;       // when it reached the journal
  std::vector<std::string> provenance;  // instances it passed through, origin first
  std::vector<std::string> tables;      // tables it touches
  std::vector<std::vector<unsigned char>> pieces;  // the changeset, in pieces (each a valid changeset)
};

struct DeadLetter {
  std::uint64_t id = 0;
  std::string route, subscriber;
  std::uint64_t sequence = 0;  // journal sequence of the change-set
  std::string error;           // the last error the subscriber reported
  std::uint32_t attempts = 0;
  std::int64_t failedAtUs = 0;
  bool replayRequested = false;  // `ipcsync deadletter replay ID` asked for another try
};

enum class ConflictResolution { Open, TakeSourceRequested, TakeTargetRequested, Resolved };

struct ParkedConflict {
  std::uint64_t id = 0;
  std::string route, origin, subscriber, table, kind;
  std::uint64_t sequence = 0;  // journal sequence of the change-set it came from
  std::string keyJson, sourceJson, targetJson;
  std::vector<unsigned char> change;  // the single change, as a changeset, to replay on "take source"
  ConflictResolution resolution = ConflictResolution::Open;
  std::int64_t parkedAtUs = 0;
};

struct JournalUsage {
  std::uint64_t entries = 0, bytes = 0;  // change-sets held and their payload bytes
  std::uint64_t head = 0;                // last sequence appended (0: none)
  std::uint64_t maxBytes = 0;            // the configured bound
  bool nearlyFull = false;               // at or beyond warnAtPercent
};

class Journal {
 public:
  // Opens or creates the journal file (WAL, synchronous per config.durability).
  static std::expected<std::unique_ptr<Journal>, JournalError> open(const JournalConfig& config);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Appends in one transaction (group commit: pass everything that is waiting). Entries whose
  // (origin, originSequence) is already journaled are skipped and return that earlier sequence.
  // Their `sequence` and `journaledAtUs` fields are ignored on input. Full when the bound would be
  // passed: the caller pushes back on the source and retries after retention made room.
  std::expected<std::vector<std::uint64_t>, JournalError> append(std::span<const JournalEntry> entries);

  // The highest originSequence journaled for `origin` (0: none): where a restarted source resumes.
  std::expected<std::uint64_t, JournalError> journaledThrough(const std::string& origin);

  // Up to `limit` entries with sequence > after, in order, that touch any of `tables` (empty: all)
  // and whose provenance does not contain `excludeNode` (loop prevention; empty: no exclusion).
  std::expected<std::vector<JournalEntry>, JournalError> read(std::uint64_t after, std::size_t limit,
                                                              std::span<const std::string> tables = {},
                                                              const std::string& excludeNode = {});

  // Cursors: the last sequence (route, subscriber) has confirmed; 0 for a new pair.
  std::expected<std::uint64_t, JournalError> cursor(const std::string& route, const std::string& subscriber);
  // Moves a cursor forward (never back: a lower value is ignored).
  std::expected<void, JournalError> advance(const std::string& route, const std::string& subscriber,
                                            std::uint64_t sequence);
  // Forgets a pair (a route removed from the topology), so it no longer holds retention back.
  std::expected<void, JournalError> dropCursor(const std::string& route, const std::string& subscriber);

  // Deletes entries every cursor has passed and older than the retention; how many.
  std::expected<std::uint64_t, JournalError> prune();
  std::expected<JournalUsage, JournalError> usage();

  // Dead letters.
  std::expected<std::uint64_t, JournalError> addDeadLetter(const DeadLetter& letter);
  std::expected<std::vector<DeadLetter>, JournalError> deadLetters();
  std::expected<void, JournalError> requestReplay(std::uint64_t id);  // NotFound for an unknown id
  std::expected<void, JournalError> removeDeadLetter(std::uint64_t id);

  // Parked conflicts.
  std::expected<std::uint64_t, JournalError> park(const ParkedConflict& conflict);
  std::expected<std::vector<ParkedConflict>, JournalError> conflicts(bool openOnly = true);
  // Records the operator's choice (TakeSourceRequested or TakeTargetRequested); NotFound, or
  // InvalidArgument if it was already resolved.
  std::expected<void, JournalError> requestResolution(std::uint64_t id, ConflictResolution take);
  std::expected<void, JournalError> markResolved(std::uint64_t id);

  const std::filesystem::path& path() const noexcept;

 private:
  struct Impl;
  explicit Journal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace ipcsync
