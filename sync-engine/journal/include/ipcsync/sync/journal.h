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
// busy timeout of 3 s, then Busy). Never carry a Journal across fork(): open a new one in the child.
// Schema, retention rules and measured rates: docs/design/journal.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <map>
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

// A route's first snapshot as the sync engine took it, kept so that a restarted engine still knows
// what the snapshot holds: entries of `source` whose origin sequence is at or below a table's
// as_of are in it already and must not travel again (docs/design/sync-engine.md, "Snapshot").
struct SnapshotFloors {
  std::string route, subscriber;
  std::string source;      // the instance snapshotted
  std::uint64_t head = 0;  // the journal head read before the snapshot; it is applied as 2 * head + 1
  std::map<std::string, std::uint64_t> tableAsOf;  // each source table's as_of (its snapshot point)
  std::int64_t takenAtUs = 0;                      // 0 on input: now

  std::uint64_t lowestAsOf() const;   // the smallest as_of (0 without tables)
  std::uint64_t highestAsOf() const;  // the largest as_of (0 without tables)
};

// What the connection actually runs with (for logs, `ipcsync status` and tests).
struct JournalSettings {
  std::string journalMode;  // "wal"
  std::string synchronous;  // "full", "normal" or "off", from config.durability
  std::chrono::milliseconds busyTimeout{0};
  std::uint32_t schemaVersion = 0;  // of the file
};

struct JournalUsage {
  std::uint64_t entries = 0, bytes = 0;  // change-sets held and their payload bytes (sum of piece sizes)
  std::uint64_t head = 0;                // last sequence appended (0: none)
  std::uint64_t maxBytes = 0;            // the configured bound
  bool nearlyFull = false;               // at or beyond warnAtPercent
};

// Whether `diskFreeBytes` is less than the journal may still grow by before its bound: then the
// disk fills first, and appends fail with "the file system ... is full" instead of holding the
// sources back.
inline bool diskFillsFirst(const JournalUsage& u, std::uint64_t diskFreeBytes) {
  return diskFreeBytes < u.maxBytes - (u.bytes < u.maxBytes ? u.bytes : u.maxBytes);
}

class Journal {
 public:
  // Opens or creates the journal file (WAL, synchronous per config.durability), creating its
  // directory if missing. Refuses (Corrupt) a file that is not a journal or has a newer schema,
  // leaving it untouched; InvalidArgument for an empty path or a zero bound.
  static std::expected<std::unique_ptr<Journal>, JournalError> open(const JournalConfig& config);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Appends in one transaction (group commit: pass everything that is waiting). Entries whose
  // (origin, originSequence) is already journaled are skipped and return that earlier sequence.
  // Their `sequence` and `journaledAtUs` fields are ignored on input. Full when the bound would be
  // passed: the caller pushes back on the source and retries after retention made room.
  // All or nothing: on any error nothing of the batch is stored. InvalidArgument for an empty
  // origin, originSequence 0, no pieces, an empty piece, an empty table name, or an entry larger
  // than the whole bound. Pieces above config.pieceBytes are accepted (one row may exceed it). An empty provenance is stored as {origin}. A duplicate of
  // a change-set that prune() already removed returns the sequence of the last removed entry of
  // that origin (one every cursor had passed): origins must number their change-sets increasingly.
  std::expected<std::vector<std::uint64_t>, JournalError> append(std::span<const JournalEntry> entries);

  // The highest originSequence journaled for `origin` (0: none): where a restarted source resumes.
  std::expected<std::uint64_t, JournalError> journaledThrough(const std::string& origin);

  // Up to `limit` entries with sequence > after, in order, that touch any of `tables` (empty: all)
  // and whose provenance does not contain `excludeNode` (loop prevention; empty: no exclusion).
  // One consistent snapshot. Each entry's tables come back sorted, without repeats.
  std::expected<std::vector<JournalEntry>, JournalError> read(std::uint64_t after, std::size_t limit,
                                                              std::span<const std::string> tables = {},
                                                              const std::string& excludeNode = {});

  // Cursors: the last sequence (route, subscriber) has confirmed; 0 for a new pair. The first call
  // registers the pair at 0: from then on it holds retention back until it confirms.
  std::expected<std::uint64_t, JournalError> cursor(const std::string& route, const std::string& subscriber);
  // Moves a cursor forward (never back: a lower value is ignored), registering the pair if new.
  // InvalidArgument (nothing changed) for a sequence beyond the head or an empty name.
  std::expected<void, JournalError> advance(const std::string& route, const std::string& subscriber,
                                            std::uint64_t sequence);
  // Every registered pair and its cursor, ordered by route and subscriber.
  struct CursorPosition {
    std::string route, subscriber;
    std::uint64_t sequence = 0;
  };
  std::expected<std::vector<CursorPosition>, JournalError> cursors();
  // Forgets a pair (a route removed from the topology), so it no longer holds retention back, and
  // its snapshot floors with it (one transaction). Forgetting an unknown pair is not an error.
  std::expected<void, JournalError> dropCursor(const std::string& route, const std::string& subscriber);

  // Snapshot floors, one record per (route, subscriber). recordSnapshot stores `floors` in one
  // transaction, replacing the pair's earlier record, and registers the pair's cursor at 0 if it is
  // new (like cursor()), so that the record is always released with it. InvalidArgument (nothing
  // changed) for an empty route, subscriber, source or table name, or a head beyond the journal's.
  std::expected<void, JournalError> recordSnapshot(const SnapshotFloors& floors);
  // The pair's record, or nullopt when it has none.
  std::expected<std::optional<SnapshotFloors>, JournalError> snapshotFloors(const std::string& route,
                                                                            const std::string& subscriber);
  // Removes the pair's record (a snapshot that must be taken again); an unknown pair is not an error.
  std::expected<void, JournalError> dropSnapshotFloors(const std::string& route, const std::string& subscriber);

  // Deletes entries every cursor has passed and older than the retention; how many. An entry is
  // kept while any registered pair has not passed it, while a dead letter names it, and always
  // while no pair is registered at all (nobody has said who reads). Works in batches of short
  // transactions, so appends from another process wait for one batch at most.
  // It first removes the snapshot floors that can no longer matter: the pair's cursor is past the
  // snapshot's head and past every journaled entry of the source with an origin sequence at or
  // below the largest as_of, and the source has journaled through that as_of (so none can still
  // arrive). Entries are counted in the return value, records are not.
  std::expected<std::uint64_t, JournalError> prune();
  std::expected<JournalUsage, JournalError> usage();
  // Free space for this user on the file system holding the journal (statvfs); nullopt if unknown.
  // A system call: for housekeeping, not for every read.
  std::optional<std::uint64_t> diskFreeBytes() const;

  // Dead letters. addDeadLetter returns the letter's id; a second letter for the same (route,
  // subscriber, sequence) updates that one (error, attempts, time) and clears its replay request.
  // InvalidArgument when the journal no longer holds `sequence`. failedAtUs 0: now. The entry a
  // letter names is kept (prune skips it) until the letter is removed.
  std::expected<std::uint64_t, JournalError> addDeadLetter(const DeadLetter& letter);
  std::expected<std::vector<DeadLetter>, JournalError> deadLetters();
  std::expected<void, JournalError> requestReplay(std::uint64_t id);  // NotFound for an unknown id
  std::expected<void, JournalError> removeDeadLetter(std::uint64_t id);  // NotFound for an unknown id

  // Parked conflicts. park() stores it as Open (its id and resolution are ignored; parkedAtUs 0:
  // now) and returns the id. conflicts(true) lists those not yet Resolved (Open and requested).
  std::expected<std::uint64_t, JournalError> park(const ParkedConflict& conflict);
  std::expected<std::vector<ParkedConflict>, JournalError> conflicts(bool openOnly = true);
  // Only those with a resolution requested (TakeSourceRequested, TakeTargetRequested), by id.
  std::expected<std::vector<ParkedConflict>, JournalError> requestedResolutions();
  // Records the operator's choice (TakeSourceRequested or TakeTargetRequested); NotFound, or
  // InvalidArgument if it was already resolved.
  std::expected<void, JournalError> requestResolution(std::uint64_t id, ConflictResolution take);
  std::expected<void, JournalError> markResolved(std::uint64_t id);  // NotFound; idempotent

  std::expected<JournalSettings, JournalError> settings();

  const std::filesystem::path& path() const noexcept;

 private:
  struct Impl;
  explicit Journal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace ipcsync
