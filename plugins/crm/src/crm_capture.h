// Internal: the capture side of the crm plugin. Triggers (crm_schema.h) log every committed write
// to the CRM tables into the change log; Capture cuts that log into change-sets (a cut is taken
// under the write lock, so it always falls between transactions), records each change-set's
// range in _ipcsync_emitted before emitting it (so a restart re-emits the same change-sets under
// the same sequences), and emits them in pieces. Not thread-safe: the host calls it from one
// thread.
#pragma once

#include <ipcsync/plugin.h>

#include <optional>
#include <string>
#include <vector>

#include "crm_schema.h"
#include "sqlite_handle.h"

namespace ipcsync::crm {

struct Settings {
  std::string database;
  size_t maxPieceBytes = 256 * 1024;
  int64_t batchRows = 10000;
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
  Result<void> poll(bool applyOpen);
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
  std::optional<Pending> m_pending;
  bool m_started = false;
};

}  // namespace ipcsync::crm
