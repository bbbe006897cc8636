// One instance of the mining plugin behind the C ABI: settings, the store, the lifecycle flags and
// the change-set transaction that stays open across the pieces of one sequence. Every method
// returns an Error instead of throwing (the boundary in plugin_entry.cpp still catches).
// Owned by the host through ipcsync_plugin*; called from one thread at a time.
#pragma once

#include <ipcsync/plugin.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "error.h"
#include "settings.h"
#include "store.h"

namespace ipcsync::mining {

struct ApplyOutcome {
  ipcsync_apply_status status = IPCSYNC_APPLIED;
  uint64_t changesApplied = 0;
  uint64_t conflicts = 0;
};

class MiningPlugin {
 public:
  // Reads the settings and opens the database; `services` must outlive the plugin.
  static Expected<std::unique_ptr<MiningPlugin>> create(const ipcsync_host_services& services);

  Expected<> start(const ipcsync_start_args& args);
  Expected<> poll();
  Expected<ApplyOutcome> apply(const ipcsync_envelope& envelope);
  Expected<uint64_t> lastApplied(const char* route);
  Expected<> acknowledge(uint64_t sequence);
  Expected<> stop();

 private:
  struct OpenTransaction {
    std::string route, origin;
    uint64_t sequence = 0;
    uint32_t nextPiece = 0, pieceCount = 0;
    int64_t commitTimeUs = 0;
    uint64_t conflicts = 0;
    std::string firstConflict;
  };

  MiningPlugin(const ipcsync_host_services& services, Settings settings, std::unique_ptr<Store> store)
      : m_services(services), m_settings(std::move(settings)), m_store(std::move(store)) {}
  void log(int level, const std::string& message) const;
  // Opens, continues or refuses the transaction `envelope` belongs to.
  Expected<> enterTransaction(const ipcsync_envelope& envelope);
  Expected<> applyPiece(const ipcsync_envelope& envelope, ApplyOutcome& outcome);
  void abandon();

  const ipcsync_host_services& m_services;
  Settings m_settings;
  std::unique_ptr<Store> m_store;
  std::optional<OpenTransaction> m_open;
  bool m_started = false;
};

}  // namespace ipcsync::mining
