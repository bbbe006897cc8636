// Internal: the capture side of the crm plugin. Triggers (crm_schema.h) log every committed write
// to the CRM tables into the change log; Capture cuts that log into change-sets (a cut is taken
// under the write lock, so it always falls between transactions), records each change-set's
// range in _ipcsync_emitted before emitting it (so a restart re-emits the same change-sets under
// the same sequences), and emits them in pieces. Not thread-safe: the host calls it from one
// thread.
#pragma once

#include <ipcsync/plugin.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "crm_schema.h"
#include "sqlite_handle.h"

namespace ipcsync::crm {

// Watches the database's write-ahead log with inotify so the host can wake crm on a commit by
// another process (host service set_wake_fd, ABI 1.1): a commit in WAL mode (crm's connections
// keep the file in it) writes the -wal file, IN_MODIFY; the main file is written only by
// checkpoints, which are not watched. The directory is watched for the -wal file being created
// again (SQLite deletes it when the last connection closes). The events say only "something may
// have changed": capture still reads the change log.
//
// A commit writes its frames (the event) before it makes them visible, after an fsync under
// synchronous=FULL, so a poll woken by the event may find nothing yet. Rather than block the
// host's thread, crm then asks to be polled again shortly: the descriptor handed to the host is
// an epoll set of the inotify descriptor and a timer (retryIn).
class WalWatch {
 public:
  // The descriptors watching `database`; an error if inotify is unavailable (the periodic poll
  // then suffices).
  static Result<WalWatch> open(const std::string& database);
  WalWatch(WalWatch&& other) noexcept;
  WalWatch& operator=(WalWatch&&) = delete;
  WalWatch(const WalWatch&) = delete;
  WalWatch& operator=(const WalWatch&) = delete;
  ~WalWatch();

  // The descriptor for set_wake_fd: readable on an event or when the retry timer expires.
  int fd() const noexcept { return m_epoll; }
  // Reads every pending event; true if there was one. Re-watches a -wal file created anew.
  bool drain();
  // Reads the retry timer's expiry (poll() does; reading the events of crm's own commits must not
  // swallow it).
  void readTimer();
  // Makes fd() readable after `delay` (replacing an earlier retry); cancelRetry() disarms it.
  void retryIn(std::chrono::microseconds delay);
  void cancelRetry();

 private:
  WalWatch(int epoll, int inotify, int timer, std::string wal, std::string walName)
      : m_epoll(epoll), m_inotify(inotify), m_timer(timer), m_wal(std::move(wal)), m_walName(std::move(walName)) {}
  int m_epoll = -1;
  int m_inotify = -1;
  int m_timer = -1;
  std::string m_wal;      // <database>-wal
  std::string m_walName;  // its name within the directory
};

struct Settings {
  std::string database;
  size_t maxPieceBytes = 256 * 1024;
  int64_t batchRows = 10000;
  bool wakeOnCommit = true;  // give the host a wake descriptor (ABI 1.1) when it offers set_wake_fd
};

class Capture {
 public:
  Capture(Database& db, const ipcsync_host_services& services, const Settings& settings)
      : m_db(db), m_services(services), m_settings(settings) {}

  Result<void> load();  // reads the persisted state; call once after installSchema
  Result<void> start(uint64_t journaledThrough);
  void stop();
  // Cuts what was committed since the last cut and emits what is not emitted yet. While an
  // incoming change-set is half applied (`applyOpen`), only re-emits: no new cut is taken.
  // With a wake watch, reads it empty after its own writes and looks again if it had events, so
  // the watch is readable after poll() only for a commit made after it last looked.
  Result<void> poll(bool applyOpen);
  // The watch poll() reads empty (owned by the caller; nullptr: none).
  void setWakeWatch(WalWatch* watch) noexcept { m_wake = watch; }
  // Reads the events crm's own commit outside poll() (an apply, an acknowledgement, a snapshot)
  // just caused, so they do not wake the host. A commit by another process at the same moment
  // may be read with them: the periodic poll finds it.
  void readOwnWakeEvents();
  Result<void> acknowledge(uint64_t sequence, bool applyOpen);
  // Cuts up to now and emits `table` whole as inserts through emit_snapshot; returns as_of.
  Result<uint64_t> snapshot(const TableInfo& table, const std::string& route, size_t maxPieceBytes);

 private:
  struct Pending {
    uint64_t sequence = 0;
    int64_t commitTimeUs = 0;
    std::vector<std::vector<unsigned char>> pieces;
    size_t next = 0;
  };
  Result<void> pollOnce(bool applyOpen);
  Result<void> cutInTransaction();  // a BEGIN IMMEDIATE transaction must be open
  Result<void> cut();
  Result<Pending> build(uint64_t sequence);
  Result<bool> emitPending();  // false: the host pushed back (IPCSYNC_EBUSY)
  Result<void> acknowledgeNow(uint64_t sequence);
  Result<void> saveState();

  Database& m_db;
  const ipcsync_host_services& m_services;
  const Settings& m_settings;
  uint64_t m_lastSequence = 0;  // last change-set cut (persisted)
  // PRAGMA data_version when the last cut began: it moves only when another connection commits,
  // so an idle database costs a poll one pragma instead of a write lock.
  std::optional<int64_t> m_dataVersionAtCut;
  int64_t m_lastChange = 0;     // change-log seq it ends at (persisted)
  uint64_t m_acked = 0;         // acknowledged through (persisted)
  uint64_t m_emittedThrough = 0;
  std::optional<uint64_t> m_deferredAck;
  // Since when a wake-up event waits for its commit to become visible, and the next retry.
  std::optional<std::chrono::steady_clock::time_point> m_unexplainedSince;
  std::chrono::microseconds m_retryDelay{0};
  std::optional<Pending> m_pending;
  bool m_started = false;
  WalWatch* m_wake = nullptr;
};

}  // namespace ipcsync::crm
