// Changesets in the SQLite session extension's format, built and read without a database.
//
// ChangesetWriter encodes changes given as ipcsync_value arrays (the ABI's own value type) into
// the exact byte format sqlite3session produces and sqlite3changeset_apply consumes; consecutive
// changes of one table share one table header. ChangesetReader walks any changeset through
// SQLite's own iterator and hands each change back as an ipcsync_change. splitChangeset cuts a
// changeset at change boundaries into pieces that are each a valid changeset.
//
// Thread safety: none of these objects is shared between threads; distinct objects are
// independent. Ownership: the writer owns its bytes; the reader borrows the bytes it was opened
// on (they must outlive it) and owns the values it hands out (valid until its next call).
// Errors are returned as std::expected with a message that says what was wrong and where.
#pragma once

#include <ipcsync/plugin.h>

#include <cstddef>
#include <expected>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3_changeset_iter;

namespace ipcsync::plugin_sdk {

class ChangesetWriter {
 public:
  ChangesetWriter() = default;

  // Appends one change. `primaryKey` holds columnCount flags (non-zero = primary-key column);
  // `op` is IPCSYNC_OP_INSERT, _UPDATE or _DELETE. oldValues/newValues hold columnCount values
  // each: oldValues is null for an insert, newValues null for a delete. For an update, newValues
  // marks unchanged columns IPCSYNC_VALUE_UNDEFINED, and oldValues holds the key columns and the
  // old values of the changed columns (UNDEFINED elsewhere): SQLite's own update encoding.
  // On error (bad op, missing values, a table added again with another shape, ...) nothing is
  // appended and the message names the table and the column.
  std::expected<void, std::string> add(std::string_view table, int columnCount, const unsigned char* primaryKey,
                                       int op, const ipcsync_value* oldValues, const ipcsync_value* newValues);

  const std::vector<unsigned char>& bytes() const { return m_bytes; }  // the changeset so far
  bool empty() const { return m_bytes.empty(); }
  void clear();

 private:
  struct Shape {
    int columnCount = 0;
    std::vector<unsigned char> primaryKey;
  };
  std::vector<unsigned char> m_bytes;
  std::string m_currentTable;           // table of the last header written
  bool m_hasTable = false;
  std::map<std::string, Shape, std::less<>> m_shapes;  // every table seen, to refuse a changed shape
};

class ChangesetReader {
 public:
  // Starts walking `bytes` (which must outlive the reader). Fails, with the byte offset, if the
  // bytes are not a well-formed changeset (truncated, unknown op or value type, a patchset, ...);
  // next() reports what SQLite's iterator still refuses.
  static std::expected<ChangesetReader, std::string> open(std::span<const unsigned char> bytes);

  // true and fills `change` (valid until the next call), false at the end, an error if the
  // changeset is malformed (the message gives the change's index). After an error or the end,
  // further calls repeat it.
  std::expected<bool, std::string> next(ipcsync_change& change);

  ChangesetReader(ChangesetReader&&) noexcept = default;
  ChangesetReader& operator=(ChangesetReader&&) noexcept = default;
  ChangesetReader(const ChangesetReader&) = delete;
  ChangesetReader& operator=(const ChangesetReader&) = delete;
  ~ChangesetReader() = default;

 private:
  struct IterDeleter {
    void operator()(sqlite3_changeset_iter* iter) const;
  };
  ChangesetReader() = default;
  std::unique_ptr<sqlite3_changeset_iter, IterDeleter> m_iter;
  std::vector<ipcsync_value> m_old, m_new;
  std::vector<unsigned char> m_primaryKey;
  size_t m_index = 0;
  std::string m_error;  // sticky
  bool m_done = false;
};

// Splits a changeset at change boundaries into pieces of at most maxPieceBytes (a single change
// larger than that is its own piece); every piece is a valid changeset and applying the pieces in
// order equals applying the whole. An empty changeset gives no pieces. Fails on a malformed
// changeset or maxPieceBytes == 0.
std::expected<std::vector<std::vector<unsigned char>>, std::string> splitChangeset(
    std::span<const unsigned char> bytes, size_t maxPieceBytes);

// The changeset's value as human-readable text for messages ("integer 42", "text 'abc'", ...).
std::string describeValue(const ipcsync_value& value);

}  // namespace ipcsync::plugin_sdk
