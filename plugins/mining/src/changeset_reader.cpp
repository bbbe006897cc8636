#include "changeset_reader.h"

#include "ipcsync/plugin_sdk/changeset.h"

#include <charconv>
#include <climits>
#include <utility>

namespace ipcsync::mining {
namespace {

Value copyValue(sqlite3_value* v) {
  if (!v) return Undefined{};
  switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER: return static_cast<int64_t>(sqlite3_value_int64(v));
    case SQLITE_FLOAT: return sqlite3_value_double(v);
    case SQLITE_TEXT: {
      const auto* text = sqlite3_value_text(v);
      return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(sqlite3_value_bytes(v)));
    }
    case SQLITE_BLOB: {
      const auto* bytes = static_cast<const unsigned char*>(sqlite3_value_blob(v));
      Blob blob;
      blob.bytes.assign(bytes, bytes + sqlite3_value_bytes(v));
      return blob;
    }
    default: return Null{};
  }
}

std::string malformed(size_t index, int rc) {
  return "the change-set bytes are malformed at change #" + std::to_string(index) + " (" + sqlite3_errstr(rc) +
         "); the sender must send a valid SQLite session changeset";
}

}  // namespace

std::string describe(const Value& value) {
  struct Visitor {
    std::string operator()(Undefined) const { return "undefined"; }
    std::string operator()(Null) const { return "NULL"; }
    std::string operator()(int64_t v) const { return "INTEGER " + std::to_string(v); }
    std::string operator()(double v) const {
      char buf[32];
      const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
      return "REAL " + (ec == std::errc() ? std::string(buf, end) : std::string("?"));
    }
    std::string operator()(const std::string& v) const {
      return "TEXT '" + (v.size() > 40 ? v.substr(0, 40) + "..." : v) + "'";
    }
    std::string operator()(const Blob& v) const { return "BLOB of " + std::to_string(v.bytes.size()) + " bytes"; }
  };
  return std::visit(Visitor{}, value);
}

const char* opName(Op op) {
  switch (op) {
    case Op::Insert: return "insert";
    case Op::Update: return "update";
    case Op::Delete: return "delete";
  }
  return "?";
}

Expected<ChangesetReader> ChangesetReader::open(const void* data, size_t size) {
  if (size > static_cast<size_t>(INT_MAX))
    return fail(ErrorKind::InvalidArgument, "a change-set piece of " + std::to_string(size) +
                                                " bytes is larger than SQLite reads at once (2 GiB); split it into pieces");
  if (size > 0 && !data) return fail(ErrorKind::InvalidArgument, "the envelope has size > 0 but data is NULL");
  // SQLite 3.40's iterator loops forever on some truncated table headers: the SDK's reader checks
  // the whole structure first, so only a well-formed changeset reaches SQLite.
  if (auto checked = plugin_sdk::ChangesetReader::open({static_cast<const unsigned char*>(data), size}); !checked)
    return fail(ErrorKind::InvalidArgument, "malformed change-set: " + checked.error());
  sqlite3_changeset_iter* iter = nullptr;
  const int rc = sqlite3changeset_start(&iter, static_cast<int>(size), const_cast<void*>(data));
  if (rc != SQLITE_OK) return fail(ErrorKind::InvalidArgument, malformed(0, rc));
  return ChangesetReader(iter);
}

ChangesetReader::~ChangesetReader() {
  if (m_iter) sqlite3changeset_finalize(m_iter);
}

Expected<std::optional<Change>> ChangesetReader::next() {
  const int rc = sqlite3changeset_next(m_iter);
  if (rc == SQLITE_DONE) return std::optional<Change>{};
  if (rc != SQLITE_ROW) return fail(ErrorKind::InvalidArgument, malformed(m_count, rc));

  const char* table = nullptr;
  int columns = 0, op = 0, indirect = 0;
  if (const int r = sqlite3changeset_op(m_iter, &table, &columns, &op, &indirect); r != SQLITE_OK)
    return fail(ErrorKind::InvalidArgument, malformed(m_count, r));
  unsigned char* pk = nullptr;
  int pkColumns = 0;
  if (const int r = sqlite3changeset_pk(m_iter, &pk, &pkColumns); r != SQLITE_OK)
    return fail(ErrorKind::InvalidArgument, malformed(m_count, r));

  Change change;
  change.index = m_count++;
  change.table = table ? table : "";
  change.op = op == SQLITE_INSERT ? Op::Insert : op == SQLITE_DELETE ? Op::Delete : Op::Update;
  for (int i = 0; i < pkColumns; ++i) change.primaryKey.push_back(pk[i] != 0);
  for (int i = 0; i < columns; ++i) {
    sqlite3_value* v = nullptr;
    if (change.op != Op::Insert) {
      if (const int r = sqlite3changeset_old(m_iter, i, &v); r != SQLITE_OK)
        return fail(ErrorKind::InvalidArgument, malformed(change.index, r));
      change.oldValues.push_back(copyValue(v));
    }
    if (change.op != Op::Delete) {
      if (const int r = sqlite3changeset_new(m_iter, i, &v); r != SQLITE_OK)
        return fail(ErrorKind::InvalidArgument, malformed(change.index, r));
      change.newValues.push_back(copyValue(v));
    }
  }
  return std::optional<Change>{std::move(change)};
}

}  // namespace ipcsync::mining
