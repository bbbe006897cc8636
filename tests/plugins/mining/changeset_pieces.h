// Test helpers that take SQLite changesets apart at change boundaries: split one into pieces of a
// few changes each (read with the session API's iterator, re-encoded in the changeset format), and
// hand-craft changes that no well-behaved session would produce (for refusal tests).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "crm_source.h"

namespace ipcsync::test {

struct Undefined {};
struct Null {};
using CellValue = std::variant<Undefined, Null, int64_t, double, std::string>;

// Encodes changes in the SQLite changeset format (a table header before each run of one table).
class ChangesetWriter {
 public:
  // op is SQLITE_INSERT / SQLITE_UPDATE / SQLITE_DELETE; pk has one flag per column.
  void add(const std::string& table, const std::vector<bool>& pk, int op, const std::vector<CellValue>& oldValues,
           const std::vector<CellValue>& newValues);
  size_t changeCount() const { return m_changes; }
  const Bytes& bytes() const { return m_bytes; }

 private:
  void putVarint(uint64_t v);
  void putValue(const CellValue& v);
  Bytes m_bytes;
  std::string m_table;
  size_t m_changes = 0;
};

// Splits `changeset` into pieces of `changesPerPiece` changes (the last may hold fewer). An empty
// changeset gives one empty piece.
std::vector<Bytes> splitChangeset(const Bytes& changeset, size_t changesPerPiece);

// How many changes `changeset` holds.
size_t countChanges(const Bytes& changeset);

}  // namespace ipcsync::test
