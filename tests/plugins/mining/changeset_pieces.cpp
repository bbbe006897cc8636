#include "changeset_pieces.h"

#include <sqlite3.h>

#include <bit>
#include <cstring>
#include <stdexcept>

namespace ipcsync::test {
namespace {

CellValue cellOf(sqlite3_value* v) {
  if (!v) return Undefined{};
  switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER: return static_cast<int64_t>(sqlite3_value_int64(v));
    case SQLITE_FLOAT: return sqlite3_value_double(v);
    case SQLITE_TEXT:
      return std::string(reinterpret_cast<const char*>(sqlite3_value_text(v)),
                         static_cast<size_t>(sqlite3_value_bytes(v)));
    case SQLITE_NULL: return Null{};
    default: throw std::runtime_error("splitChangeset: BLOB values are not used by these tests");
  }
}

template <typename Visit>
void forEachChange(const Bytes& changeset, Visit&& visit) {
  sqlite3_changeset_iter* iter = nullptr;
  if (sqlite3changeset_start(&iter, static_cast<int>(changeset.size()), const_cast<unsigned char*>(changeset.data())) !=
      SQLITE_OK)
    throw std::runtime_error("sqlite3changeset_start failed");
  int rc;
  while ((rc = sqlite3changeset_next(iter)) == SQLITE_ROW) {
    const char* table = nullptr;
    int columns = 0, op = 0, indirect = 0;
    sqlite3changeset_op(iter, &table, &columns, &op, &indirect);
    unsigned char* pkFlags = nullptr;
    int pkCount = 0;
    sqlite3changeset_pk(iter, &pkFlags, &pkCount);
    std::vector<bool> pk(pkFlags, pkFlags + pkCount);
    std::vector<CellValue> oldValues, newValues;
    for (int i = 0; i < columns; ++i) {
      sqlite3_value* v = nullptr;
      if (op != SQLITE_INSERT) {
        sqlite3changeset_old(iter, i, &v);
        oldValues.push_back(cellOf(v));
      }
      if (op != SQLITE_DELETE) {
        sqlite3changeset_new(iter, i, &v);
        newValues.push_back(cellOf(v));
      }
    }
    visit(std::string(table), pk, op, oldValues, newValues);
  }
  sqlite3changeset_finalize(iter);
  if (rc != SQLITE_DONE) throw std::runtime_error("malformed changeset");
}

}  // namespace

void ChangesetWriter::putVarint(uint64_t v) {
  // SQLite's varint: big-endian groups of 7 bits, high bit set on all but the last. (Lengths in
  // these tests stay far below 2^56, where SQLite's 9-byte form would differ.)
  unsigned char buf[10];
  int n = 0;
  do {
    const unsigned char continuation = n == 0 ? 0 : 0x80;
    buf[n] = static_cast<unsigned char>((v & 0x7f) | continuation);
    ++n;
    v >>= 7;
  } while (v != 0);
  for (int i = n - 1; i >= 0; --i) m_bytes.push_back(buf[i]);
}

void ChangesetWriter::putValue(const CellValue& v) {
  auto put64 = [this](uint64_t x) {
    for (int shift = 56; shift >= 0; shift -= 8) m_bytes.push_back(static_cast<unsigned char>(x >> shift));
  };
  if (std::holds_alternative<Undefined>(v)) {
    m_bytes.push_back(0);
  } else if (std::holds_alternative<Null>(v)) {
    m_bytes.push_back(SQLITE_NULL);
  } else if (const auto* i = std::get_if<int64_t>(&v)) {
    m_bytes.push_back(SQLITE_INTEGER);
    put64(static_cast<uint64_t>(*i));
  } else if (const auto* d = std::get_if<double>(&v)) {
    m_bytes.push_back(SQLITE_FLOAT);
    put64(std::bit_cast<uint64_t>(*d));
  } else {
    const auto& s = std::get<std::string>(v);
    m_bytes.push_back(SQLITE_TEXT);
    putVarint(s.size());
    m_bytes.insert(m_bytes.end(), s.begin(), s.end());
  }
}

void ChangesetWriter::add(const std::string& table, const std::vector<bool>& pk, int op,
                          const std::vector<CellValue>& oldValues, const std::vector<CellValue>& newValues) {
  if (m_changes == 0 || table != m_table) {
    m_bytes.push_back('T');
    putVarint(pk.size());
    for (size_t i = 0; i < pk.size(); ++i) m_bytes.push_back(pk[i] ? 1 : 0);
    m_bytes.insert(m_bytes.end(), table.begin(), table.end());
    m_bytes.push_back(0);
    m_table = table;
  }
  m_bytes.push_back(static_cast<unsigned char>(op));
  m_bytes.push_back(0);  // not indirect
  if (op != SQLITE_INSERT)
    for (const auto& v : oldValues) putValue(v);
  if (op != SQLITE_DELETE)
    for (const auto& v : newValues) putValue(v);
  ++m_changes;
}

std::vector<Bytes> splitChangeset(const Bytes& changeset, size_t changesPerPiece) {
  std::vector<Bytes> pieces;
  ChangesetWriter current;
  forEachChange(changeset, [&](const std::string& table, const std::vector<bool>& pk, int op,
                               const std::vector<CellValue>& oldValues, const std::vector<CellValue>& newValues) {
    current.add(table, pk, op, oldValues, newValues);
    if (current.changeCount() == changesPerPiece) {
      pieces.push_back(current.bytes());
      current = ChangesetWriter();
    }
  });
  if (current.changeCount() > 0 || pieces.empty()) pieces.push_back(current.bytes());
  return pieces;
}

size_t countChanges(const Bytes& changeset) {
  size_t n = 0;
  forEachChange(changeset, [&](auto&&...) { ++n; });
  return n;
}

}  // namespace ipcsync::test
