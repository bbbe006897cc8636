#include "crm_apply.h"

#include <fmt/format.h>
#include <ipcsync/plugin_sdk/changeset.h>

#include <chrono>
#include <cstddef>
#include <vector>

#include "crm_schema.h"
#include "crm_values.h"

namespace ipcsync::crm {
namespace {

const char* kindName(int conflict) {
  switch (conflict) {
    case SQLITE_CHANGESET_DATA: return "data";
    case SQLITE_CHANGESET_NOTFOUND: return "notfound";
    case SQLITE_CHANGESET_CONFLICT: return "conflict";
    default: return "constraint";
  }
}

const char* policyName(ipcsync_conflict_policy p) {
  switch (p) {
    case IPCSYNC_CONFLICT_SOURCE_WINS: return "source_wins";
    case IPCSYNC_CONFLICT_TARGET_WINS: return "target_wins";
    case IPCSYNC_CONFLICT_LAST_WRITER_WINS: return "last_writer_wins";
    case IPCSYNC_CONFLICT_PARK: return "park";
  }
  return "?";
}

std::string pkColumns(const TableInfo& t, const unsigned char* flags, int n) {
  std::string out;
  for (int i = 0; i < n; ++i)
    if (flags[i]) out += (out.empty() ? "" : ", ") + (i < static_cast<int>(t.columns.size()) ? t.columns[static_cast<size_t>(i)].name : fmt::format("column {}", i));
  return out.empty() ? "none" : out;
}

// What the conflict handler needs; it runs inside sqlite3changeset_apply.
struct ConflictContext {
  const ipcsync_host_services* services = nullptr;
  const ipcsync_envelope* envelope = nullptr;
  ipcsync_conflict_policy policy = IPCSYNC_CONFLICT_SOURCE_WINS;
  const char* timestampColumn = nullptr;
  uint64_t conflicts = 0, omitted = 0;
  std::optional<Error> error;  // set when the handler aborts the apply
};

struct ChangeValues {
  const char* table = nullptr;
  int columns = 0, op = 0;
  std::vector<ipcsync_value> oldV, newV, target;
  bool hasTarget = false;
};

ChangeValues readChange(sqlite3_changeset_iter* it, int conflict) {
  ChangeValues c;
  int indirect = 0;
  sqlite3changeset_op(it, &c.table, &c.columns, &c.op, &indirect);
  c.hasTarget = conflict == SQLITE_CHANGESET_DATA || conflict == SQLITE_CHANGESET_CONFLICT;
  for (int i = 0; i < c.columns; ++i) {
    sqlite3_value* v = nullptr;
    if (c.op != SQLITE_INSERT && sqlite3changeset_old(it, i, &v) == SQLITE_OK) c.oldV.push_back(fromSqliteValue(v));
    v = nullptr;
    if (c.op != SQLITE_DELETE && sqlite3changeset_new(it, i, &v) == SQLITE_OK) c.newV.push_back(fromSqliteValue(v));
    v = nullptr;
    if (c.hasTarget && sqlite3changeset_conflict(it, i, &v) == SQLITE_OK) c.target.push_back(fromSqliteValue(v));
  }
  return c;
}

std::string rowJson(const TableInfo& t, const std::vector<ipcsync_value>& values, const unsigned char* onlyKey,
                    const std::vector<ipcsync_value>* overlay) {
  nlohmann::json out = nlohmann::json::object();
  for (size_t i = 0; i < values.size() && i < t.columns.size(); ++i) {
    if (onlyKey && !onlyKey[i]) continue;
    const ipcsync_value* v = &values[i];
    if (overlay && (*overlay)[i].type != IPCSYNC_VALUE_UNDEFINED) v = &(*overlay)[i];
    if (v->type == IPCSYNC_VALUE_UNDEFINED) continue;
    out[t.columns[i].name] = toJson(*v);
  }
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int park(ConflictContext& ctx, int conflict, sqlite3_changeset_iter* it) {
  ChangeValues c = readChange(it, conflict);
  const TableInfo* t = findCrmTable(c.table);
  const unsigned char* pk = t->primaryKey.data();
  const auto& keySide = c.op == SQLITE_INSERT ? c.newV : c.oldV;
  std::string key = rowJson(*t, keySide, pk, nullptr);
  std::string source = c.op == SQLITE_DELETE ? "null"
                       : c.op == SQLITE_INSERT ? rowJson(*t, c.newV, nullptr, nullptr)
                                               : rowJson(*t, c.oldV, nullptr, &c.newV);
  if (c.op == SQLITE_UPDATE) {  // the key and the changed columns' new values
    std::vector<ipcsync_value> merged(static_cast<size_t>(c.columns));
    for (size_t i = 0; i < merged.size(); ++i) merged[i] = pk[i] ? c.oldV[i] : c.newV[i];
    source = rowJson(*t, merged, nullptr, nullptr);
  }
  std::string target = c.hasTarget ? rowJson(*t, c.target, nullptr, nullptr) : "null";
  plugin_sdk::ChangesetWriter one;
  if (auto r = one.add(c.table, c.columns, pk, c.op, c.op == SQLITE_INSERT ? nullptr : c.oldV.data(),
                       c.op == SQLITE_DELETE ? nullptr : c.newV.data());
      !r) {
    ctx.error = Error{IPCSYNC_EINTERNAL, "cannot encode a parked change: " + r.error()};
    return SQLITE_CHANGESET_ABORT;
  }
  ipcsync_conflict report{};
  report.struct_size = sizeof report;
  report.route = ctx.envelope->route;
  report.origin = ctx.envelope->origin;
  report.sequence = ctx.envelope->sequence;
  report.table = c.table;
  report.kind = kindName(conflict);
  report.key_json = key.c_str();
  report.source_json = source.c_str();
  report.target_json = target.c_str();
  report.change = one.bytes().data();
  report.change_size = one.bytes().size();
  ipcsync_error error{};
  const int status = ctx.services->report_conflict(ctx.services->host, &report, &error);
  if (status != IPCSYNC_OK) {
    ctx.error = Error{status, fmt::format("cannot park a conflict on table '{}' key {}: the host said: {}", c.table, key, error.message)};
    return SQLITE_CHANGESET_ABORT;
  }
  ++ctx.omitted;
  return SQLITE_CHANGESET_OMIT;
}

int onConflict(void* context, int conflict, sqlite3_changeset_iter* it) {
  auto& ctx = *static_cast<ConflictContext*>(context);
  try {
    ++ctx.conflicts;
    if (ctx.policy == IPCSYNC_CONFLICT_PARK) return park(ctx, conflict, it);
    if (conflict == SQLITE_CHANGESET_NOTFOUND) {  // the row is gone: nothing to update or delete
      ++ctx.omitted;
      return SQLITE_CHANGESET_OMIT;
    }
    if (conflict == SQLITE_CHANGESET_DATA || conflict == SQLITE_CHANGESET_CONFLICT) {
      bool sourceWins = ctx.policy == IPCSYNC_CONFLICT_SOURCE_WINS;
      if (ctx.policy == IPCSYNC_CONFLICT_LAST_WRITER_WINS) {
        ChangeValues c = readChange(it, conflict);
        const int i = findCrmTable(c.table)->columnIndex(ctx.timestampColumn);
        const auto idx = static_cast<size_t>(i);
        ipcsync_value source = c.op == SQLITE_DELETE ? c.oldV[idx]
                               : c.newV[idx].type != IPCSYNC_VALUE_UNDEFINED ? c.newV[idx]
                               : c.op == SQLITE_UPDATE ? c.oldV[idx] : c.newV[idx];
        sourceWins = compareValues(source, c.target[idx]) >= 0;
      }
      if (sourceWins) return SQLITE_CHANGESET_REPLACE;
      ++ctx.omitted;
      return SQLITE_CHANGESET_OMIT;
    }
    ChangeValues c = readChange(it, conflict);
    const TableInfo* t = findCrmTable(c.table);
    ctx.error = Error{IPCSYNC_ESCHEMA,
                      fmt::format("change-set {} from '{}': a change to table '{}' key {} violates a constraint of the "
                                  "target table (policy {} cannot resolve that); nothing of the change-set was applied. "
                                  "Use the 'park' policy to set such changes aside",
                                  ctx.envelope->sequence, ctx.envelope->origin ? ctx.envelope->origin : "?", c.table,
                                  rowJson(*t, c.op == SQLITE_INSERT ? c.newV : c.oldV, t->primaryKey.data(), nullptr),
                                  policyName(ctx.policy))};
    return SQLITE_CHANGESET_ABORT;
  } catch (const std::exception& e) {
    ctx.error = Error{IPCSYNC_EINTERNAL, std::string("conflict handler: ") + e.what()};
    return SQLITE_CHANGESET_ABORT;
  }
}

int64_t nowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

void Applier::abandon() {
  if (!m_open) return;
  m_db.rollback();
  m_open.reset();
}

Result<uint64_t> Applier::lastApplied(const std::string& route) {
  auto stmt = m_db.prepare(fmt::format("SELECT sequence FROM {} WHERE route = ?1", kApplied));
  if (!stmt) return std::unexpected(stmt.error());
  stmt->bind(1, route);
  auto row = stmt->step();
  if (!row) return std::unexpected(row.error());
  return *row ? static_cast<uint64_t>(stmt->integer(0)) : 0;
}

Result<void> Applier::checkPiece(const ipcsync_envelope& e, const char* timestampColumn, size_t& changes) {
  auto reader = plugin_sdk::ChangesetReader::open({static_cast<const unsigned char*>(e.data), e.size});
  auto where = [&] { return fmt::format("change-set {} piece {} of {} from '{}'", e.sequence, e.piece_index, e.piece_count, e.origin ? e.origin : "?"); };
  if (!reader) return fail(IPCSYNC_EINVAL, fmt::format("{}: {}", where(), reader.error()));
  ipcsync_change c{};
  changes = 0;
  for (;;) {
    auto more = reader->next(c);
    if (!more) return fail(IPCSYNC_EINVAL, fmt::format("{}: {}", where(), more.error()));
    if (!*more) return {};
    ++changes;
    const TableInfo* t = findCrmTable(c.table);
    if (!t)
      return fail(IPCSYNC_EUNSUPPORTED, fmt::format("{}: table '{}' is not one crm accepts (accounts, contacts, "
                                                    "interactions, orders); route it elsewhere", where(), c.table));
    if (static_cast<size_t>(c.column_count) != t->columns.size())
      return fail(IPCSYNC_ESCHEMA, fmt::format("{}: table '{}' has {} columns in the change-set but {} in crm's database; "
                                               "the source's schema differs from crm's schema.sql",
                                               where(), c.table, c.column_count, t->columns.size()));
    for (int i = 0; i < c.column_count; ++i)
      if ((c.primary_key[i] != 0) != (t->primaryKey[static_cast<size_t>(i)] != 0))
        return fail(IPCSYNC_ESCHEMA, fmt::format("{}: table '{}' has primary key ({}) in the change-set but ({}) in crm's "
                                                 "database; the source's schema differs from crm's schema.sql",
                                                 where(), c.table, pkColumns(*t, c.primary_key, c.column_count),
                                                 pkColumns(*t, t->primaryKey.data(), c.column_count)));
    if (timestampColumn && t->columnIndex(timestampColumn) < 0)
      return fail(IPCSYNC_EINVAL, fmt::format("{}: last_writer_wins compares column '{}', which table '{}' does not have; "
                                              "set the route's timestamp column to one it has (e.g. updated_at)",
                                              where(), timestampColumn, c.table));
  }
}

Result<void> Applier::apply(const ipcsync_envelope& e, ipcsync_apply_result& result) {
  // Validate the envelope before touching anything.
  if (e.struct_size < offsetof(ipcsync_envelope, conflict_policy))
    return fail(IPCSYNC_EINVAL, fmt::format("apply: envelope struct_size {} is too small for ABI 1.0", e.struct_size));
  const bool hasPolicy = e.struct_size >= offsetof(ipcsync_envelope, timestamp_column) + sizeof(const char*);
  const uint32_t rawPolicy = hasPolicy ? e.conflict_policy : static_cast<uint32_t>(IPCSYNC_CONFLICT_SOURCE_WINS);
  const char* timestampColumn = hasPolicy ? e.timestamp_column : nullptr;
  if (!e.route || !*e.route) return fail(IPCSYNC_EINVAL, "apply: the envelope has no route; the host must name it");
  const std::string where = fmt::format("change-set {} piece {} of {} on route '{}'", e.sequence, e.piece_index, e.piece_count, e.route);
  if (e.piece_count == 0 || e.piece_index >= e.piece_count)
    return fail(IPCSYNC_EINVAL, fmt::format("apply {}: piece_index must be below piece_count (>= 1)", where));
  if (!e.data && e.size)
    return fail(IPCSYNC_EINVAL, fmt::format("apply {}: data is null but size is {}", where, e.size));
  if (rawPolicy > static_cast<uint32_t>(IPCSYNC_CONFLICT_PARK))
    return fail(IPCSYNC_EINVAL, fmt::format("apply {}: unknown conflict policy {}", where, rawPolicy));
  const auto policy = static_cast<ipcsync_conflict_policy>(rawPolicy);
  if (policy == IPCSYNC_CONFLICT_LAST_WRITER_WINS && (!timestampColumn || !*timestampColumn))
    return fail(IPCSYNC_EINVAL, fmt::format("apply {}: last_writer_wins needs a timestamp column; set the route's "
                                            "timestamp column (e.g. updated_at)", where));
  const std::string route = e.route;

  // Where does this piece stand against the open transaction?
  if (m_open) {
    const bool same = m_open->route == route && m_open->sequence == e.sequence;
    if (same && e.piece_index == m_open->nextPiece && e.piece_count == m_open->pieceCount) {
      // the expected next piece
    } else if (e.piece_index == 0 && (same || m_open->route == route)) {
      const std::string message = fmt::format("route '{}': change-set {} was left half applied ({} of {} pieces); "
                                              "rolled back, now applying change-set {} from its first piece",
                                              route, m_open->sequence, m_open->nextPiece, m_open->pieceCount, e.sequence);
      m_services.log(m_services.host, IPCSYNC_LOG_WARN, message.c_str());
      abandon();
    } else if (m_open->route != route) {
      return fail(IPCSYNC_EBUSY, fmt::format("apply {}: route '{}' has change-set {} half applied ({} of {} pieces); "
                                             "deliver its remaining pieces first", where, m_open->route, m_open->sequence,
                                             m_open->nextPiece, m_open->pieceCount));
    } else {
      const std::string message = fmt::format("apply {}: expected piece {} of {} of change-set {}; the transaction was "
                                              "rolled back, nothing of it is applied: deliver the change-set again from piece 0",
                                              where, m_open->nextPiece, m_open->pieceCount, m_open->sequence);
      abandon();
      return fail(IPCSYNC_EINVAL, message);
    }
  }
  if (!m_open) {
    auto last = lastApplied(route);
    if (!last) return std::unexpected(last.error());
    if (e.sequence <= *last) {
      result.status = IPCSYNC_DUPLICATE;
      result.changes_applied = 0;
      result.conflicts = 0;
      return {};
    }
    if (e.piece_index != 0)
      return fail(IPCSYNC_EINVAL, fmt::format("apply {}: pieces 0..{} of this change-set were not delivered; deliver it "
                                              "from piece 0", where, e.piece_index - 1));
  }

  size_t changes = 0;
  if (auto r = checkPiece(e, policy == IPCSYNC_CONFLICT_LAST_WRITER_WINS ? timestampColumn : nullptr, changes); !r) {
    abandon();
    return r;
  }

  if (!m_open) {
    if (auto r = m_db.exec(fmt::format("BEGIN IMMEDIATE; INSERT INTO {}(id) VALUES (1);", kGuard)); !r) {
      m_db.rollback();
      return r;
    }
    m_open = Open{route, e.origin ? e.origin : "", e.sequence, e.piece_count, 0, 0};
  }

  ConflictContext ctx;
  ctx.services = &m_services;
  ctx.envelope = &e;
  ctx.policy = policy;
  ctx.timestampColumn = timestampColumn;
  if (e.size > 0) {
    const int rc = sqlite3changeset_apply(m_db.get(), static_cast<int>(e.size), const_cast<void*>(e.data), nullptr,
                                          &onConflict, &ctx);
    if (rc != SQLITE_OK || ctx.error) {
      abandon();
      if (ctx.error) return std::unexpected(*ctx.error);
      return sqliteFailure(m_db.get(), rc, fmt::format("applying {} (rolled back, nothing of it is applied)", where));
    }
  }
  m_open->conflicts += ctx.conflicts;
  ++m_open->nextPiece;
  result.changes_applied = changes - ctx.omitted;
  result.conflicts = ctx.conflicts;
  result.status = IPCSYNC_APPLIED;
  if (m_open->nextPiece < m_open->pieceCount) return {};

  auto record = m_db.prepare(fmt::format("INSERT INTO {}(route, sequence, origin, applied_at) VALUES (?1, ?2, ?3, ?4) "
                                         "ON CONFLICT(route) DO UPDATE SET sequence = excluded.sequence, "
                                         "origin = excluded.origin, applied_at = excluded.applied_at", kApplied));
  Result<void> r = record ? Result<void>{} : std::unexpected(record.error());
  if (r) {
    record->bind(1, route).bind(2, static_cast<int64_t>(e.sequence)).bind(3, m_open->origin).bind(4, nowUs());
    r = record->run();
  }
  if (r) r = m_db.exec(fmt::format("DELETE FROM {}; COMMIT;", kGuard));
  const uint64_t conflicts = m_open->conflicts;
  if (!r) {
    abandon();
    return std::unexpected(Error{r.error().status, fmt::format("committing {}: {} (rolled back)", where, r.error().message)});
  }
  m_open.reset();
  result.status = conflicts ? IPCSYNC_CONFLICTS : IPCSYNC_APPLIED;
  return {};
}

}  // namespace ipcsync::crm
