// Splits a changeset at change boundaries: each change is re-encoded with ChangesetWriter (which
// reproduces SQLite's bytes) and pieces are closed before a change would push them past the limit.
#include <fmt/format.h>

#include "ipcsync/plugin_sdk/changeset.h"

namespace ipcsync::plugin_sdk {
namespace {

// Bytes of a table header for `table` with `columnCount` columns.
size_t headerSize(std::string_view table, int columnCount) {
  size_t varint = 1;
  for (auto v = static_cast<uint64_t>(columnCount) >> 7; v != 0; v >>= 7) ++varint;
  return 1 + varint + static_cast<size_t>(columnCount) + table.size() + 1;
}

}  // namespace

std::expected<std::vector<std::vector<unsigned char>>, std::string> splitChangeset(
    std::span<const unsigned char> bytes, size_t maxPieceBytes) {
  if (maxPieceBytes == 0) return std::unexpected("maximum piece size must be at least 1 byte");
  auto reader = ChangesetReader::open(bytes);
  if (!reader) return std::unexpected(reader.error());

  std::vector<std::vector<unsigned char>> pieces;
  ChangesetWriter piece, one;
  std::string pieceTable;
  ipcsync_change change{};
  for (;;) {
    auto more = reader->next(change);
    if (!more) return std::unexpected(more.error());
    if (!*more) break;
    one.clear();
    if (auto r = one.add(change.table, change.column_count, change.primary_key, change.op, change.old_values,
                         change.new_values);
        !r)
      return std::unexpected(fmt::format("cannot re-encode a change: {}", r.error()));
    size_t needed = one.bytes().size();
    if (!piece.empty() && pieceTable == change.table) needed -= headerSize(change.table, change.column_count);
    if (!piece.empty() && piece.bytes().size() + needed > maxPieceBytes) {
      pieces.push_back(piece.bytes());
      piece.clear();
    }
    if (auto r = piece.add(change.table, change.column_count, change.primary_key, change.op, change.old_values,
                           change.new_values);
        !r)
      return std::unexpected(fmt::format("cannot re-encode a change: {}", r.error()));
    pieceTable = change.table;
  }
  if (!piece.empty()) pieces.push_back(piece.bytes());
  return pieces;
}

}  // namespace ipcsync::plugin_sdk
