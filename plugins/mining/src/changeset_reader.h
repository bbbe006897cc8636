// Reads a SQLite session changeset (the ipcsync change-set format) change by change, copying each
// change's values out of SQLite so that a Change outlives the iterator's next step.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "error.h"

namespace ipcsync::mining {

struct Undefined {};  // "not part of this change": an unchanged column of an update
struct Null {};
struct Blob {
  std::vector<unsigned char> bytes;
};
using Value = std::variant<Undefined, Null, int64_t, double, std::string, Blob>;

// "INTEGER 42", "TEXT 'north'", "NULL", ... for messages.
std::string describe(const Value& value);

enum class Op { Insert, Update, Delete };
const char* opName(Op op);

struct Change {
  std::string table;
  Op op = Op::Insert;
  std::vector<bool> primaryKey;  // one flag per column
  std::vector<Value> oldValues;  // empty for an insert
  std::vector<Value> newValues;  // empty for a delete
  size_t index = 0;              // 0-based position in its changeset, for messages
};

class ChangesetReader {
 public:
  // Starts reading `size` bytes at `data`; the bytes must outlive the reader. Fails (InvalidArgument)
  // when the bytes are too many for SQLite or the iterator cannot start.
  static Expected<ChangesetReader> open(const void* data, size_t size);

  ChangesetReader(ChangesetReader&& other) noexcept
      : m_iter(std::exchange(other.m_iter, nullptr)), m_count(other.m_count) {}
  ChangesetReader& operator=(ChangesetReader&&) = delete;
  ChangesetReader(const ChangesetReader&) = delete;
  ChangesetReader& operator=(const ChangesetReader&) = delete;
  ~ChangesetReader();

  // The next change; nullopt at the end; InvalidArgument when the bytes are malformed.
  Expected<std::optional<Change>> next();

 private:
  explicit ChangesetReader(sqlite3_changeset_iter* iter) : m_iter(iter) {}
  sqlite3_changeset_iter* m_iter = nullptr;
  size_t m_count = 0;
};

}  // namespace ipcsync::mining
