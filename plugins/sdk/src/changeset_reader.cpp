// Checks a changeset's structure (changeset_format.h), then walks it with SQLite's own iterator (sqlite3changeset_start / _next / _op / _pk /
// _old / _new), which checks every length against the buffer, and converts each change into
// the ABI's ipcsync_change.
#include <sqlite3.h>

#include <climits>
#include <fmt/format.h>

#include "changeset_format.h"
#include "ipcsync/plugin_sdk/changeset.h"

namespace ipcsync::plugin_sdk {
namespace {

ipcsync_value toValue(sqlite3_value* v) {
  ipcsync_value out{};
  if (v == nullptr) {
    out.type = IPCSYNC_VALUE_UNDEFINED;
    return out;
  }
  switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
      out.type = IPCSYNC_VALUE_INTEGER;
      out.integer = sqlite3_value_int64(v);
      break;
    case SQLITE_FLOAT:
      out.type = IPCSYNC_VALUE_FLOAT;
      out.real = sqlite3_value_double(v);
      break;
    case SQLITE_TEXT:
      out.type = IPCSYNC_VALUE_TEXT;
      out.bytes = sqlite3_value_text(v);
      out.size = static_cast<size_t>(sqlite3_value_bytes(v));
      break;
    case SQLITE_BLOB:
      out.type = IPCSYNC_VALUE_BLOB;
      out.bytes = sqlite3_value_blob(v);
      out.size = static_cast<size_t>(sqlite3_value_bytes(v));
      break;
    default: out.type = IPCSYNC_VALUE_NULL; break;
  }
  return out;
}

}  // namespace

void ChangesetReader::IterDeleter::operator()(sqlite3_changeset_iter* iter) const { sqlite3changeset_finalize(iter); }

std::expected<ChangesetReader, std::string> ChangesetReader::open(std::span<const unsigned char> bytes) {
  if (bytes.size() > static_cast<size_t>(INT_MAX))
    return std::unexpected(fmt::format("changeset of {} bytes is beyond SQLite's limit of {} bytes", bytes.size(), INT_MAX));
  if (auto valid = detail::validateChangeset(bytes); !valid) return std::unexpected(valid.error());
  sqlite3_changeset_iter* iter = nullptr;
  // SQLite only reads the buffer; the API takes a non-const pointer for historic reasons.
  const int rc = sqlite3changeset_start(&iter, static_cast<int>(bytes.size()),
                                        const_cast<unsigned char*>(bytes.data()));
  if (rc != SQLITE_OK) {
    sqlite3changeset_finalize(iter);
    return std::unexpected(fmt::format("cannot read the changeset: {}", sqlite3_errstr(rc)));
  }
  ChangesetReader reader;
  reader.m_iter.reset(iter);
  return reader;
}

std::expected<bool, std::string> ChangesetReader::next(ipcsync_change& change) {
  if (!m_error.empty()) return std::unexpected(m_error);
  if (m_done) return false;
  auto fail = [&](int rc, std::string_view what) -> std::expected<bool, std::string> {
    m_error = fmt::format("malformed changeset at change {}: {} ({})", m_index, what, sqlite3_errstr(rc));
    return std::unexpected(m_error);
  };
  const int rc = sqlite3changeset_next(m_iter.get());
  if (rc == SQLITE_DONE) {
    m_done = true;
    return false;
  }
  if (rc != SQLITE_ROW) return fail(rc, "cannot decode the next change");

  const char* table = nullptr;
  int columnCount = 0, op = 0, indirect = 0;
  if (int r = sqlite3changeset_op(m_iter.get(), &table, &columnCount, &op, &indirect); r != SQLITE_OK)
    return fail(r, "cannot read the change's table and operation");
  unsigned char* pk = nullptr;
  int pkColumns = 0;
  if (int r = sqlite3changeset_pk(m_iter.get(), &pk, &pkColumns); r != SQLITE_OK)
    return fail(r, "cannot read the primary-key flags");
  if (columnCount <= 0 || pkColumns != columnCount) return fail(SQLITE_CORRUPT, "bad column count");
  if (op != SQLITE_INSERT && op != SQLITE_UPDATE && op != SQLITE_DELETE) return fail(SQLITE_CORRUPT, "unknown operation");

  m_primaryKey.assign(pk, pk + columnCount);
  m_old.assign(static_cast<size_t>(columnCount), ipcsync_value{});
  m_new.assign(static_cast<size_t>(columnCount), ipcsync_value{});
  for (int i = 0; i < columnCount; ++i) {
    sqlite3_value* v = nullptr;
    if (op != SQLITE_INSERT) {
      if (int r = sqlite3changeset_old(m_iter.get(), i, &v); r != SQLITE_OK) return fail(r, "cannot read an old value");
      m_old[static_cast<size_t>(i)] = toValue(v);
    }
    if (op != SQLITE_DELETE) {
      v = nullptr;
      if (int r = sqlite3changeset_new(m_iter.get(), i, &v); r != SQLITE_OK) return fail(r, "cannot read a new value");
      m_new[static_cast<size_t>(i)] = toValue(v);
    }
  }
  change = {};
  change.struct_size = sizeof change;
  change.table = table;
  change.op = op;
  change.column_count = columnCount;
  change.primary_key = m_primaryKey.data();
  change.old_values = op == SQLITE_INSERT ? nullptr : m_old.data();
  change.new_values = op == SQLITE_DELETE ? nullptr : m_new.data();
  ++m_index;
  return true;
}

}  // namespace ipcsync::plugin_sdk
