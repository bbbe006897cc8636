// Test helper: owned ipcsync_values (the ABI struct only borrows bytes) and their comparison.
#pragma once

#include <ipcsync/plugin.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace ipcsync::test {

// A column value that owns its bytes; view() gives the ABI struct pointing into it.
struct OwnedValue {
  ipcsync_value_type type = IPCSYNC_VALUE_UNDEFINED;
  int64_t integer = 0;
  double real = 0;
  std::string bytes;

  static OwnedValue undefined() { return {}; }
  static OwnedValue null() { return {IPCSYNC_VALUE_NULL, 0, 0, {}}; }
  static OwnedValue of(int64_t v) { return {IPCSYNC_VALUE_INTEGER, v, 0, {}}; }
  static OwnedValue real_(double v) { return {IPCSYNC_VALUE_FLOAT, 0, v, {}}; }
  static OwnedValue text(std::string v) { return {IPCSYNC_VALUE_TEXT, 0, 0, std::move(v)}; }
  static OwnedValue blob(std::string v) { return {IPCSYNC_VALUE_BLOB, 0, 0, std::move(v)}; }
  static OwnedValue from(const ipcsync_value& v) {
    OwnedValue o;
    o.type = v.type;
    o.integer = v.type == IPCSYNC_VALUE_INTEGER ? v.integer : 0;
    o.real = v.type == IPCSYNC_VALUE_FLOAT ? v.real : 0;
    if (v.type == IPCSYNC_VALUE_TEXT || v.type == IPCSYNC_VALUE_BLOB)
      o.bytes.assign(static_cast<const char*>(v.bytes), v.size);
    return o;
  }
  ipcsync_value view() const {
    ipcsync_value v{};
    v.type = type;
    v.integer = integer;
    v.real = real;
    v.bytes = bytes.data();
    v.size = bytes.size();
    return v;
  }
  bool operator==(const OwnedValue&) const = default;
};

inline std::vector<ipcsync_value> views(const std::vector<OwnedValue>& values) {
  std::vector<ipcsync_value> out;
  for (const auto& v : values) out.push_back(v.view());
  return out;
}

inline std::string show(const OwnedValue& v) {
  switch (v.type) {
    case IPCSYNC_VALUE_UNDEFINED: return "undefined";
    case IPCSYNC_VALUE_INTEGER: return "i" + std::to_string(v.integer);
    case IPCSYNC_VALUE_FLOAT: return "f" + std::to_string(v.real);
    case IPCSYNC_VALUE_TEXT: return "t'" + v.bytes + "'";
    case IPCSYNC_VALUE_BLOB: return "b[" + std::to_string(v.bytes.size()) + "]";
    case IPCSYNC_VALUE_NULL: return "null";
  }
  return "?";
}

// One change read back, owned.
struct OwnedChange {
  std::string table;
  int op = 0;
  std::vector<unsigned char> primaryKey;
  std::vector<OwnedValue> oldValues, newValues;
  bool operator==(const OwnedChange&) const = default;

  static OwnedChange from(const ipcsync_change& c) {
    OwnedChange o;
    o.table = c.table;
    o.op = c.op;
    o.primaryKey.assign(c.primary_key, c.primary_key + c.column_count);
    for (int i = 0; i < c.column_count; ++i) {
      if (c.old_values) o.oldValues.push_back(OwnedValue::from(c.old_values[i]));
      if (c.new_values) o.newValues.push_back(OwnedValue::from(c.new_values[i]));
    }
    return o;
  }
};

inline std::ostream& operator<<(std::ostream& os, const OwnedChange& c) {
  os << c.table << " op " << c.op << " old(";
  for (const auto& v : c.oldValues) os << show(v) << ' ';
  os << ") new(";
  for (const auto& v : c.newValues) os << show(v) << ' ';
  return os << ")";
}

}  // namespace ipcsync::test
