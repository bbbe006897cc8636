// AdminSegment: the namespace's administrative memory and its registry of ProcessRecords.
//
// One named POSIX shared-memory object per namespace ("/dev/shm/ipcsync.<namespace>"), created
// by the engine, which alone writes it; observers (the admin console, `ipcsync status`, clients
// looking for the rendezvous socket) open it read-only. It starts with a {magic, layoutVersion,
// size} header checked on every attach, names the engine (pid, start time, socket path) and holds
// `capacity` records, each behind its own sequence lock, so a reader copies a whole record or
// retries and never sees a torn one.
//
// Only the creator unlinks the name (on destruction). A segment left behind by an engine that
// died is recognised by its dead pid and replaced by the next engine.
#pragma once

#include <atomic>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <sys/types.h>
#include <string>
#include <string_view>
#include <vector>

#include "ipcsync/ipccore/error.h"
#include "ipcsync/ipccore/mapping.h"
#include "ipcsync/ipccore/process_record.h"
#include "ipcsync/ipccore/seqlock.h"

namespace ipcsync {

namespace layout {
inline constexpr std::uint32_t kAdminMagic = 0x49505341;  // "IPSA"
inline constexpr std::uint32_t kAdminLayoutVersion = 4;
inline constexpr std::uint32_t kCacheRows = 64;  // topic caches listed for observers
inline constexpr std::size_t kSocketPathCapacity = 108;   // sizeof(sockaddr_un::sun_path)
inline constexpr std::size_t kNamespaceCapacity = 64;

struct AdminHeader {
  std::atomic<std::uint32_t> magic;  // written last by the creator, with release
  std::uint32_t layoutVersion;
  std::uint64_t size;
  std::int32_t enginePid;
  std::uint32_t capacity;
  std::uint64_t engineStartTicks;    // /proc/<pid>/stat start time: tells a reused pid apart
  std::uint64_t startedAtNs;         // CLOCK_REALTIME
  std::uint64_t recordsOffset;
  std::uint64_t recordStride;
  char ns[kNamespaceCapacity];
  char socketPath[kSocketPathCapacity];
  std::uint32_t reserved;
  std::atomic<std::uint64_t> heartbeatNs;  // CLOCK_REALTIME of the engine's last tick
  std::uint64_t cachesOffset;              // of SeqLocked<CacheRecord>[kCacheRows]
};
}  // namespace layout

// One topic cache the engine keeps in its own block, as observers see it.
struct CacheRecord {
  char topic[kNameCapacity] = {};  // empty: unused row
  std::uint32_t entries = 0;       // messages held now
  std::uint32_t depth = 0;         // most it keeps
  std::uint64_t bytes = 0;         // payload bytes held
  std::uint64_t oldestNs = 0;      // CLOCK_REALTIME when the oldest held message was stored
  std::uint64_t hits = 0;          // cached messages handed to late subscribers
  std::string_view topicView() const noexcept;
};
static_assert(sizeof(CacheRecord) % 8 == 0);

// Who serves a namespace, as the header tells it.
struct EngineIdentity {
  std::int32_t pid = 0;
  std::uint64_t startTicks = 0;
  std::string socketPath;
};

// The start time of `pid` in clock ticks since boot, or 0 if no such process. Tells a live
// process apart from a later one that reused its pid.
std::uint64_t processStartTicks(std::int32_t pid) noexcept;

class AdminSegment {
 public:
  // "ipcsync.<ns>". `ns` must already be valid (see validateNamespace).
  static std::string shmName(std::string_view ns);

  // 1..63 characters from [A-Za-z0-9_.-], not starting with '.'; InvalidArgument otherwise.
  static std::expected<void, Error> validateNamespace(std::string_view ns);

  // Engine side: creates the segment for `capacity` records. An existing segment whose engine is
  // dead is replaced; one whose engine lives yields EngineAlreadyRunning naming its pid.
  // `replacedStalePid` is set to the dead engine's pid when a stale segment was replaced.
  static std::expected<std::unique_ptr<AdminSegment>, Error> create(std::string_view ns, std::uint32_t capacity,
                                                                   const EngineIdentity& engine,
                                                                   std::int32_t* replacedStalePid = nullptr);

  // Observer side: opens read-only and checks the header. EngineNotRunning when no segment
  // exists (or its creator died before publishing it); EngineBusy while a live creator has not
  // published it yet; BadSegment when its header does not match this build.
  static std::expected<std::unique_ptr<AdminSegment>, Error> open(std::string_view ns);

  AdminSegment(const AdminSegment&) = delete;
  AdminSegment& operator=(const AdminSegment&) = delete;
  ~AdminSegment();

  std::uint32_t capacity() const noexcept { return m_capacity; }
  EngineIdentity engine() const;
  // True while the engine named in the header is the process that has that pid now.
  bool engineAlive() const noexcept;
  std::uint64_t heartbeatNs() const noexcept;

  // The uid that owns the segment's file: who created it (observers only).
  uid_t ownerUid() const noexcept { return m_ownerUid; }

  // A consistent copy of the record in `slot` (< capacity()); nothing if the record stays
  // half-written (its writer died in the middle of a store).
  std::optional<ProcessRecord> load(std::uint32_t slot) const noexcept;
  // Every record that is not Free, with its slot, in slot order.
  std::vector<std::pair<std::uint32_t, ProcessRecord>> snapshot() const;
  // Every topic cache in use.
  std::vector<CacheRecord> caches() const;
  void storeCache(std::uint32_t row, const CacheRecord& record) noexcept;  // writer side

  // Writer side (the creating engine only). Observers and clients see the segment only after
  // publish(), which the engine calls once its socket listens.
  void publish() noexcept;
  void store(std::uint32_t slot, const ProcessRecord& record) noexcept;
  void beat(std::uint64_t nowNs) noexcept;

 private:
  AdminSegment() = default;
  const layout::AdminHeader& header() const noexcept;
  SeqLocked<ProcessRecord>* records() const noexcept;
  SeqLocked<CacheRecord>* cacheRows() const noexcept;

  std::string m_name;
  Mapping m_mapping;
  std::uint32_t m_capacity = 0;
  bool m_owner = false;
  uid_t m_ownerUid = 0;
};

}  // namespace ipcsync
