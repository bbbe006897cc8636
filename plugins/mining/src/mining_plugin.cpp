#include "mining_plugin.h"

#include <cstddef>
#include <limits>

#include "changeset_reader.h"
#include "crm_tables.h"

namespace ipcsync::mining {
namespace {

std::string describeEnvelope(const ipcsync_envelope& e) {
  return "route '" + std::string(e.route) + "' sequence " + std::to_string(e.sequence) + " piece " +
         std::to_string(e.piece_index + 1) + "/" + std::to_string(e.piece_count);
}

Expected<> checkEnvelope(const ipcsync_envelope& e) {
  if (e.struct_size < offsetof(ipcsync_envelope, conflict_policy))
    return fail(ErrorKind::InvalidArgument, "the envelope's struct_size " + std::to_string(e.struct_size) +
                                                " is too small to hold its data fields; the host must fill struct_size");
  if (!e.route || *e.route == '\0')
    return fail(ErrorKind::InvalidArgument, "the envelope has no route; apply() needs the route to record what it "
                                            "applied");
  if (e.piece_count == 0 || e.piece_index >= e.piece_count)
    return fail(ErrorKind::InvalidArgument, "route '" + std::string(e.route) + "' sequence " +
                                                std::to_string(e.sequence) + ": piece_index " +
                                                std::to_string(e.piece_index) + " with piece_count " +
                                                std::to_string(e.piece_count) +
                                                " is impossible; piece_index must be below piece_count >= 1");
  if (e.sequence > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return fail(ErrorKind::InvalidArgument, "route '" + std::string(e.route) + "': sequence " +
                                                std::to_string(e.sequence) +
                                                " is above 2^63-1, which the mining database cannot store");
  return {};
}

}  // namespace

Expected<std::unique_ptr<MiningPlugin>> MiningPlugin::create(const ipcsync_host_services& services) {
  auto settings = readSettings(services);
  if (!settings) return std::unexpected(settings.error());
  auto store = Store::open(settings->databasePath, settings->topCustomers);
  if (!store) return std::unexpected(store.error());
  std::unique_ptr<MiningPlugin> plugin(new MiningPlugin(services, std::move(*settings), std::move(*store)));
  plugin->log(IPCSYNC_LOG_INFO, "aggregating into '" + plugin->m_settings.databasePath + "' (top_customers " +
                                    std::to_string(plugin->m_settings.topCustomers) + ")");
  return plugin;
}

void MiningPlugin::log(int level, const std::string& message) const {
  if (m_services.log) m_services.log(m_services.host, level, message.c_str());
}

Expected<> MiningPlugin::start(const ipcsync_start_args& /*args*/) {
  if (m_started) return fail(ErrorKind::InvalidArgument, "start() called twice without stop() in between");
  // Mining captures nothing, so there is nothing to resume from journaled_through.
  m_started = true;
  return {};
}

Expected<> MiningPlugin::poll() {
  if (!m_started) return fail(ErrorKind::InvalidArgument, "poll() called before start() (or after stop())");
  return {};  // mining produces no change-sets: nothing to capture or emit
}

Expected<> MiningPlugin::stop() {
  m_started = false;
  return {};
}

Expected<> MiningPlugin::acknowledge(uint64_t sequence) {
  if (sequence == 0) return {};
  return fail(ErrorKind::InvalidArgument, "acknowledge(" + std::to_string(sequence) +
                                              "): mining emits no change-sets, so there is nothing up to that "
                                              "sequence to acknowledge; the host confused its plugins");
}

Expected<uint64_t> MiningPlugin::lastApplied(const char* route) {
  if (!route || *route == '\0') return fail(ErrorKind::InvalidArgument, "last_applied() needs a route name");
  return m_store->lastApplied(route);
}

void MiningPlugin::abandon() {
  m_store->rollback();
  m_open.reset();
}

Expected<> MiningPlugin::enterTransaction(const ipcsync_envelope& e) {
  const std::string route = e.route;
  if (m_open) {
    const bool continues = m_open->route == route && m_open->sequence == e.sequence &&
                           m_open->nextPiece == e.piece_index && m_open->pieceCount == e.piece_count;
    if (continues) return {};
    const std::string was = "route '" + m_open->route + "' sequence " + std::to_string(m_open->sequence) +
                            " (expecting piece " + std::to_string(m_open->nextPiece + 1) + "/" +
                            std::to_string(m_open->pieceCount) + ")";
    abandon();
    if (e.piece_index != 0)
      return fail(ErrorKind::InvalidArgument, describeEnvelope(e) + " does not continue the open transaction of " + was +
                                                  "; all its pieces were rolled back; resend the change-set from piece 1");
    log(IPCSYNC_LOG_WARN, "abandoned the unfinished transaction of " + was + ": " + describeEnvelope(e) +
                              " starts a new one; its pieces were rolled back");
  } else if (e.piece_index != 0) {
    return fail(ErrorKind::InvalidArgument, describeEnvelope(e) +
                                                " arrived, but no transaction is open for it (its earlier pieces were "
                                                "never applied or were rolled back); resend the change-set from piece 1");
  }
  if (auto ok = m_store->begin(); !ok) return ok;
  m_open = OpenTransaction{route, e.origin ? e.origin : "", e.sequence, 0, e.piece_count, e.commit_time_us, 0, {}};
  return {};
}

Expected<> MiningPlugin::applyPiece(const ipcsync_envelope& e, ApplyOutcome& outcome) {
  auto reader = ChangesetReader::open(e.data, e.size);
  if (!reader) return std::unexpected(reader.error());
  for (;;) {
    auto change = reader->next();
    if (!change) return std::unexpected(change.error());
    if (!*change) return {};
    auto table = classify(**change);
    if (!table) return std::unexpected(table.error());
    auto result = m_store->ledger().apply(**change, *table);
    if (!result) return std::unexpected(result.error());
    if (*result != Outcome::NotFound) ++outcome.changesApplied;
    if (isConflict(*result)) {
      ++outcome.conflicts;
      if (m_open->conflicts++ == 0) {
        auto id = primaryKeyOf(**change);
        m_open->firstConflict = (*change)->table + " id=" + (id ? std::to_string(*id) : "?") + " " +
                                opName((*change)->op) + ": " + conflictKind(*result);
      }
    }
  }
}

Expected<ApplyOutcome> MiningPlugin::apply(const ipcsync_envelope& e) {
  if (auto ok = checkEnvelope(e); !ok) return std::unexpected(ok.error());
  auto last = m_store->lastApplied(e.route);
  if (!last) return std::unexpected(last.error());
  ApplyOutcome outcome;
  if (e.sequence <= *last) {
    outcome.status = IPCSYNC_DUPLICATE;
    return outcome;
  }
  if (auto ok = enterTransaction(e); !ok) return std::unexpected(ok.error());
  if (auto ok = applyPiece(e, outcome); !ok) {
    abandon();
    Error error = withContext(ok.error(), describeEnvelope(e));
    error.message += "; nothing of this change-set was applied";
    return std::unexpected(std::move(error));
  }
  if (e.piece_index + 1 < e.piece_count) {
    ++m_open->nextPiece;
    return outcome;
  }
  const OpenTransaction done = *m_open;
  if (auto ok = m_store->commit(done.route, done.sequence, done.origin, done.commitTimeUs); !ok) {
    abandon();
    return std::unexpected(withContext(ok.error(), describeEnvelope(e) + ": committing failed, nothing was applied"));
  }
  m_open.reset();
  if (done.conflicts > 0) {
    outcome.status = IPCSYNC_CONFLICTS;
    log(IPCSYNC_LOG_WARN, "route '" + done.route + "' sequence " + std::to_string(done.sequence) + ": " +
                              std::to_string(done.conflicts) + " conflict(s), resolved with the source winning (first: " +
                              done.firstConflict + ")");
  }
  return outcome;
}

}  // namespace ipcsync::mining
