#include "crm_values.h"

#include <cstring>
#include <string_view>

namespace ipcsync::crm {
namespace {

ipcsync_value make(int type, sqlite3_int64 integer, double real, const void* bytes, int size) {
  ipcsync_value out{};
  switch (type) {
    case SQLITE_INTEGER: out.type = IPCSYNC_VALUE_INTEGER; out.integer = integer; break;
    case SQLITE_FLOAT: out.type = IPCSYNC_VALUE_FLOAT; out.real = real; break;
    case SQLITE_TEXT: out.type = IPCSYNC_VALUE_TEXT; out.bytes = bytes; out.size = static_cast<size_t>(size); break;
    case SQLITE_BLOB: out.type = IPCSYNC_VALUE_BLOB; out.bytes = bytes; out.size = static_cast<size_t>(size); break;
    default: out.type = IPCSYNC_VALUE_NULL; break;
  }
  return out;
}

int rank(const ipcsync_value& v) {
  switch (v.type) {
    case IPCSYNC_VALUE_INTEGER:
    case IPCSYNC_VALUE_FLOAT: return 1;
    case IPCSYNC_VALUE_TEXT: return 2;
    case IPCSYNC_VALUE_BLOB: return 3;
    default: return 0;
  }
}

std::string_view bytesOf(const ipcsync_value& v) {
  return v.size ? std::string_view(static_cast<const char*>(v.bytes), v.size) : std::string_view();
}

}  // namespace

ipcsync_value fromSqliteValue(sqlite3_value* v) {
  if (v == nullptr) return ipcsync_value{};
  const int type = sqlite3_value_type(v);
  const void* bytes = type == SQLITE_TEXT ? static_cast<const void*>(sqlite3_value_text(v))
                      : type == SQLITE_BLOB ? sqlite3_value_blob(v) : nullptr;
  return make(type, sqlite3_value_int64(v), sqlite3_value_double(v), bytes, sqlite3_value_bytes(v));
}

ipcsync_value fromColumn(sqlite3_stmt* stmt, int column) {
  const int type = sqlite3_column_type(stmt, column);
  const void* bytes = type == SQLITE_TEXT ? static_cast<const void*>(sqlite3_column_text(stmt, column))
                      : type == SQLITE_BLOB ? sqlite3_column_blob(stmt, column) : nullptr;
  return make(type, sqlite3_column_int64(stmt, column), sqlite3_column_double(stmt, column), bytes,
              sqlite3_column_bytes(stmt, column));
}

bool sameValue(const ipcsync_value& a, const ipcsync_value& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case IPCSYNC_VALUE_INTEGER: return a.integer == b.integer;
    case IPCSYNC_VALUE_FLOAT: return std::memcmp(&a.real, &b.real, sizeof a.real) == 0;
    case IPCSYNC_VALUE_TEXT:
    case IPCSYNC_VALUE_BLOB: return bytesOf(a) == bytesOf(b);
    default: return true;
  }
}

nlohmann::json toJson(const ipcsync_value& v) {
  switch (v.type) {
    case IPCSYNC_VALUE_INTEGER: return v.integer;
    case IPCSYNC_VALUE_FLOAT: return v.real;
    case IPCSYNC_VALUE_TEXT: return std::string(bytesOf(v));
    case IPCSYNC_VALUE_BLOB: {
      static const char* digits = "0123456789abcdef";
      std::string hex;
      for (unsigned char c : bytesOf(v)) {
        hex += digits[c >> 4];
        hex += digits[c & 15];
      }
      return nlohmann::json{{"$blob", hex}};
    }
    default: return nullptr;
  }
}

int compareValues(const ipcsync_value& a, const ipcsync_value& b) {
  const int ra = rank(a), rb = rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  if (ra == 0) return 0;
  if (ra == 1) {
    if (a.type == IPCSYNC_VALUE_INTEGER && b.type == IPCSYNC_VALUE_INTEGER)
      return a.integer < b.integer ? -1 : a.integer > b.integer ? 1 : 0;
    const double x = a.type == IPCSYNC_VALUE_INTEGER ? static_cast<double>(a.integer) : a.real;
    const double y = b.type == IPCSYNC_VALUE_INTEGER ? static_cast<double>(b.integer) : b.real;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const int c = bytesOf(a).compare(bytesOf(b));
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

}  // namespace ipcsync::crm
