// Encodes changes in the SQLite session changeset format (see sqlite3session.h and the comment
// "CHANGESET FORMAT" in sqlite's ext/session/sqlite3session.c):
//   changeset := { table-header change+ }*
//   table-header := 'T' varint(column count) pk-flag{column count} table-name NUL
//   change := op-byte indirect-byte record-for-op
//     INSERT (18): new record; DELETE (9): old record; UPDATE (23): old record, new record
//   record := value{column count}
//   value := 0x00 (undefined) | 0x05 (null) | 0x01 int64-big-endian | 0x02 ieee754-big-endian
//          | 0x03 varint(n) utf8[n] | 0x04 varint(n) bytes[n]
// Varints are SQLite's: 7 bits a byte, most significant first, high bit = more; a ninth byte
// carries 8 bits.
#include "ipcsync/plugin_sdk/changeset.h"

#include <bit>
#include <climits>
#include <cstring>
#include <fmt/format.h>

namespace ipcsync::plugin_sdk {
namespace {

void putVarint(std::vector<unsigned char>& out, uint64_t v) {
  unsigned char buf[10];
  if (v & (uint64_t{0xff000000} << 32)) {
    unsigned char p[9];
    p[8] = static_cast<unsigned char>(v);
    v >>= 8;
    for (int i = 7; i >= 0; --i) {
      p[i] = static_cast<unsigned char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out.insert(out.end(), p, p + 9);
    return;
  }
  int n = 0;
  do {
    buf[n++] = static_cast<unsigned char>((v & 0x7f) | 0x80);
    v >>= 7;
  } while (v != 0);
  buf[0] &= 0x7f;
  for (int j = n - 1; j >= 0; --j) out.push_back(buf[j]);
}

void putBigEndian(std::vector<unsigned char>& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<unsigned char>(v >> shift));
}

const char* opName(int op) {
  switch (op) {
    case IPCSYNC_OP_INSERT: return "insert";
    case IPCSYNC_OP_UPDATE: return "update";
    case IPCSYNC_OP_DELETE: return "delete";
    default: return "unknown op";
  }
}

// Checks one value; `allowUndefined` says whether UNDEFINED may appear in this position.
std::expected<void, std::string> checkValue(const ipcsync_value& v, bool allowUndefined, std::string_view table,
                                            int column, const char* side, int op) {
  auto fail = [&](std::string_view what) {
    return std::unexpected(fmt::format("table '{}', {} column {} ({} values): {}", table, opName(op), column, side, what));
  };
  switch (v.type) {
    case IPCSYNC_VALUE_UNDEFINED:
      if (!allowUndefined) return fail("UNDEFINED is not allowed here; give the column's value (or NULL)");
      return {};
    case IPCSYNC_VALUE_INTEGER:
    case IPCSYNC_VALUE_FLOAT:
    case IPCSYNC_VALUE_NULL: return {};
    case IPCSYNC_VALUE_TEXT:
    case IPCSYNC_VALUE_BLOB:
      if (v.size > static_cast<size_t>(INT_MAX)) return fail(fmt::format("{} bytes is beyond SQLite's limit", v.size));
      if (v.size > 0 && v.bytes == nullptr) return fail("bytes is null but size is not 0");
      return {};
  }
  return fail(fmt::format("unknown value type {}", static_cast<int>(v.type)));
}

void putValue(std::vector<unsigned char>& out, const ipcsync_value& v) {
  out.push_back(static_cast<unsigned char>(v.type));
  switch (v.type) {
    case IPCSYNC_VALUE_INTEGER: putBigEndian(out, static_cast<uint64_t>(v.integer)); break;
    case IPCSYNC_VALUE_FLOAT: putBigEndian(out, std::bit_cast<uint64_t>(v.real)); break;
    case IPCSYNC_VALUE_TEXT:
    case IPCSYNC_VALUE_BLOB: {
      putVarint(out, v.size);
      const auto* p = static_cast<const unsigned char*>(v.bytes);
      if (v.size > 0) out.insert(out.end(), p, p + v.size);
      break;
    }
    default: break;
  }
}

}  // namespace

std::expected<void, std::string> ChangesetWriter::add(std::string_view table, int columnCount,
                                                      const unsigned char* primaryKey, int op,
                                                      const ipcsync_value* oldValues, const ipcsync_value* newValues) {
  if (table.empty() || table.find('\0') != std::string_view::npos)
    return std::unexpected("table name is empty or holds a NUL character");
  if (columnCount <= 0) return std::unexpected(fmt::format("table '{}': column count {} must be positive", table, columnCount));
  if (primaryKey == nullptr) return std::unexpected(fmt::format("table '{}': primary-key flags are missing", table));
  bool anyKey = false;
  for (int i = 0; i < columnCount; ++i) anyKey = anyKey || primaryKey[i] != 0;
  if (!anyKey) return std::unexpected(fmt::format("table '{}' has no primary-key column; changesets need one", table));

  const bool needOld = op == IPCSYNC_OP_DELETE || op == IPCSYNC_OP_UPDATE;
  const bool needNew = op == IPCSYNC_OP_INSERT || op == IPCSYNC_OP_UPDATE;
  if (!needOld && !needNew) return std::unexpected(fmt::format("table '{}': op {} is not insert (18), update (23) or delete (9)", table, op));
  if (needOld != (oldValues != nullptr))
    return std::unexpected(fmt::format("table '{}', {}: old values must be {}", table, opName(op), needOld ? "given" : "null"));
  if (needNew != (newValues != nullptr))
    return std::unexpected(fmt::format("table '{}', {}: new values must be {}", table, opName(op), needNew ? "given" : "null"));

  bool anyChanged = false;
  for (int i = 0; i < columnCount; ++i) {
    const bool key = primaryKey[i] != 0;
    if (op == IPCSYNC_OP_UPDATE) {
      const bool changed = newValues[i].type != IPCSYNC_VALUE_UNDEFINED;
      anyChanged = anyChanged || changed;
      if (key && changed)
        return std::unexpected(fmt::format("table '{}', update column {}: a primary-key column cannot change in an "
                                           "update; send a delete and an insert", table, i));
      if ((key || changed) && oldValues[i].type == IPCSYNC_VALUE_UNDEFINED)
        return std::unexpected(fmt::format("table '{}', update column {}: old value is UNDEFINED but the column is {}",
                                           table, i, key ? "part of the primary key" : "changed"));
      if (auto r = checkValue(oldValues[i], true, table, i, "old", op); !r) return r;
      if (auto r = checkValue(newValues[i], true, table, i, "new", op); !r) return r;
    } else {
      const ipcsync_value& v = needOld ? oldValues[i] : newValues[i];
      if (auto r = checkValue(v, false, table, i, needOld ? "old" : "new", op); !r) return r;
    }
  }
  if (op == IPCSYNC_OP_UPDATE && !anyChanged)
    return std::unexpected(fmt::format("table '{}': an update must change at least one column", table));

  auto [it, inserted] = m_shapes.try_emplace(std::string(table));
  if (inserted) {
    it->second.columnCount = columnCount;
    it->second.primaryKey.assign(primaryKey, primaryKey + columnCount);
  } else if (it->second.columnCount != columnCount ||
             !std::equal(it->second.primaryKey.begin(), it->second.primaryKey.end(), primaryKey)) {
    return std::unexpected(fmt::format("table '{}' was added with {} columns and other primary-key flags before; "
                                       "one changeset holds one shape per table", table, it->second.columnCount));
  }

  if (!m_hasTable || m_currentTable != table) {
    m_bytes.push_back('T');
    putVarint(m_bytes, static_cast<uint64_t>(columnCount));
    m_bytes.insert(m_bytes.end(), primaryKey, primaryKey + columnCount);
    m_bytes.insert(m_bytes.end(), table.begin(), table.end());
    m_bytes.push_back(0);
    m_currentTable.assign(table);
    m_hasTable = true;
  }
  m_bytes.push_back(static_cast<unsigned char>(op));
  m_bytes.push_back(0);  // not indirect
  if (needOld)
    for (int i = 0; i < columnCount; ++i) putValue(m_bytes, oldValues[i]);
  if (needNew)
    for (int i = 0; i < columnCount; ++i) putValue(m_bytes, newValues[i]);
  return {};
}

void ChangesetWriter::clear() {
  m_bytes.clear();
  m_currentTable.clear();
  m_hasTable = false;
  m_shapes.clear();
}

std::string describeValue(const ipcsync_value& v) {
  switch (v.type) {
    case IPCSYNC_VALUE_UNDEFINED: return "undefined";
    case IPCSYNC_VALUE_INTEGER: return fmt::format("integer {}", v.integer);
    case IPCSYNC_VALUE_FLOAT: return fmt::format("float {}", v.real);
    case IPCSYNC_VALUE_TEXT:
      return fmt::format("text '{}'", std::string_view(static_cast<const char*>(v.bytes), v.bytes ? v.size : 0));
    case IPCSYNC_VALUE_BLOB: return fmt::format("blob of {} bytes", v.size);
    case IPCSYNC_VALUE_NULL: return "null";
  }
  return "unknown";
}

}  // namespace ipcsync::plugin_sdk
