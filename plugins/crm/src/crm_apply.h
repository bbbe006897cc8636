// Internal: the apply side of the crm plugin. Incoming change-set pieces are applied with
// sqlite3changeset_apply on crm's own connection; pieces 0..n-2 stay in an open transaction, the
// last one commits together with the route's last applied sequence (so each change-set takes
// effect exactly once). Inside that transaction a row in _ipcsync_applying switches the capture
// triggers off, so applied changes are not captured again (no echo); no other connection sees it.
// Not thread-safe: the host calls it from one thread.
#pragma once

#include <ipcsync/plugin.h>

#include <optional>
#include <string>

#include "sqlite_handle.h"

namespace ipcsync::crm {

class Applier {
 public:
  Applier(Database& db, const ipcsync_host_services& services) : m_db(db), m_services(services) {}

  Result<void> apply(const ipcsync_envelope& envelope, ipcsync_apply_result& result);
  Result<uint64_t> lastApplied(const std::string& route);
  bool transactionOpen() const { return m_open.has_value(); }
  void abandon();  // rolls back a half-applied change-set

 private:
  struct Open {
    std::string route, origin;
    uint64_t sequence = 0;
    uint32_t pieceCount = 0, nextPiece = 0;
    uint64_t conflicts = 0;
  };
  Result<void> checkPiece(const ipcsync_envelope& envelope, const char* timestampColumn, size_t& changes);

  Database& m_db;
  const ipcsync_host_services& m_services;
  std::optional<Open> m_open;
};

}  // namespace ipcsync::crm
