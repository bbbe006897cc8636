#include "changeset_format.h"

#include <fmt/format.h>

#include <cstdint>

namespace ipcsync::plugin_sdk::detail {
namespace {

constexpr uint64_t kMaxColumns = 32767;  // SQLite's hard upper bound (SQLITE_MAX_COLUMN)

class Cursor {
 public:
  explicit Cursor(std::span<const unsigned char> bytes) : m_bytes(bytes) {}
  size_t pos() const { return m_pos; }
  bool atEnd() const { return m_pos >= m_bytes.size(); }
  size_t left() const { return m_bytes.size() - m_pos; }
  bool byte(unsigned char& out) {
    if (atEnd()) return false;
    out = m_bytes[m_pos++];
    return true;
  }
  bool skip(uint64_t n) {
    if (n > left()) return false;
    m_pos += static_cast<size_t>(n);
    return true;
  }
  // SQLite's varint: up to 8 bytes of 7 bits, the ninth gives 8 bits.
  bool varint(uint64_t& out) {
    out = 0;
    for (int i = 0; i < 9; ++i) {
      unsigned char b;
      if (!byte(b)) return false;
      if (i == 8) {
        out = (out << 8) | b;
        return true;
      }
      out = (out << 7) | (b & 0x7f);
      if (!(b & 0x80)) return true;
    }
    return true;
  }
  // Advances past a NUL-terminated string; false if there is no NUL. `length` excludes the NUL.
  bool cstring(size_t& length) {
    for (size_t i = m_pos; i < m_bytes.size(); ++i)
      if (m_bytes[i] == 0) {
        length = i - m_pos;
        m_pos = i + 1;
        return true;
      }
    return false;
  }

 private:
  std::span<const unsigned char> m_bytes;
  size_t m_pos = 0;
};

}  // namespace

std::expected<void, std::string> validateChangeset(std::span<const unsigned char> bytes) {
  Cursor in(bytes);
  uint64_t columns = 0;
  size_t changes = 0, changesOfTable = 0;
  size_t headerAt = 0;
  auto fail = [&](size_t at, std::string_view what) {
    return std::unexpected(fmt::format("malformed changeset at byte {} (change {}): {}", at, changes, what));
  };
  while (!in.atEnd()) {
    const size_t at = in.pos();
    unsigned char kind = 0;
    in.byte(kind);
    if (kind == 'P') return fail(at, "a patchset table header; only changesets are accepted");
    if (kind == 'T') {
      if (columns != 0 && changesOfTable == 0) return fail(headerAt, "a table header with no change after it");
      headerAt = at;
      if (!in.varint(columns)) return fail(at, "truncated column count");
      if (columns == 0 || columns > kMaxColumns) return fail(at, fmt::format("column count {} out of range", columns));
      if (!in.skip(columns)) return fail(at, "truncated primary-key flags");
      size_t nameLength = 0;
      if (!in.cstring(nameLength)) return fail(at, "table name without its terminating NUL");
      if (nameLength == 0) return fail(at, "empty table name");
      changesOfTable = 0;
      continue;
    }
    if (columns == 0) return fail(at, "a change before any table header");
    if (kind != 18 && kind != 9 && kind != 23) return fail(at, fmt::format("unknown operation byte {}", kind));
    unsigned char indirect = 0;
    if (!in.byte(indirect)) return fail(at, "truncated change (no indirect flag)");
    if (indirect > 1) return fail(at + 1, fmt::format("indirect flag {} is neither 0 nor 1", indirect));
    const int records = kind == 23 ? 2 : 1;
    for (int r = 0; r < records; ++r) {
      for (uint64_t c = 0; c < columns; ++c) {
        const size_t valueAt = in.pos();
        unsigned char type = 0;
        if (!in.byte(type)) return fail(valueAt, "truncated record");
        switch (type) {
          case 0:
          case 5: break;
          case 1:
          case 2:
            if (!in.skip(8)) return fail(valueAt, "truncated number");
            break;
          case 3:
          case 4: {
            uint64_t length = 0;
            if (!in.varint(length)) return fail(valueAt, "truncated length");
            if (length > 0x7fffffff) return fail(valueAt, fmt::format("value length {} out of range", length));
            if (!in.skip(length)) return fail(valueAt, fmt::format("value of {} bytes runs past the end", length));
            break;
          }
          default: return fail(valueAt, fmt::format("unknown value type {}", type));
        }
      }
    }
    ++changes;
    ++changesOfTable;
  }
  if (columns != 0 && changesOfTable == 0) return fail(headerAt, "a table header with no change after it");
  return {};
}

}  // namespace ipcsync::plugin_sdk::detail
