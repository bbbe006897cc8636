// NamespaceSnapshot: everything the console shows of a namespace at one instant.
//
// Plain value, produced by AdminPoller on every tick and handed to the models. When the engine
// is offline, `online` is false, `problem` says why and the lists are empty (an engine that
// ends disconnects every client, so an empty registry is the truth, not a loss of data).
#pragma once

#include <QString>

#include <cstdint>
#include <utility>
#include <vector>

#include "ipcsync/admin/journal_reader.h"
#include "ipcsync/admin/plugins_status.h"
#include "ipcsync/admin/sync_status.h"
#include "ipcsync/ipccore/admin_segment.h"
#include "ipcsync/ipccore/process_record.h"

namespace ipcsync::admin {

struct NamespaceSnapshot {
  QString ns;
  bool online = false;
  QString problem;                 // why offline: what was found, and that the console waits
  EngineIdentity engine;           // valid when online
  std::uint32_t capacity = 0;      // registry slots
  std::uint64_t heartbeatNs = 0;   // engine's last tick, CLOCK_REALTIME
  std::uint64_t takenAtNs = 0;     // CLOCK_REALTIME when this snapshot was read
  std::uint64_t monotonicNs = 0;   // CLOCK_MONOTONIC when read: for rates
  std::uint64_t readCostNs = 0;    // how long reading the segment and plugins.json took
  std::vector<std::pair<std::uint32_t, ProcessRecord>> records;  // not Free, in slot order
  std::vector<CacheRecord> caches;
  PluginsStatus plugins;
  SyncStatus sync;         // sync.json: journal usage and routes (present false: no sync engine)
  JournalContents journal; // dead letters and open conflicts, read from sync.journal.path at most once a second
};

}  // namespace ipcsync::admin
