// Internal: conversions between SQLite values, the ABI's ipcsync_value and JSON (for conflicts).
#pragma once

#include <ipcsync/plugin.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>

namespace ipcsync::crm {

// nullptr (SQLite's "not part of this change") becomes UNDEFINED. Bytes point into `v`.
ipcsync_value fromSqliteValue(sqlite3_value* v);
// Column `column` of the current row of `stmt`. Bytes point into the statement's row.
ipcsync_value fromColumn(sqlite3_stmt* stmt, int column);
// true if both hold the same type and value (what decides whether an update changed a column).
bool sameValue(const ipcsync_value& a, const ipcsync_value& b);
// A value as JSON: numbers, strings, null; a blob as {"$blob": "<hex>"}.
nlohmann::json toJson(const ipcsync_value& v);
// SQLite's ordering: NULL/undefined < numbers < text < blob; -1, 0 or 1.
int compareValues(const ipcsync_value& a, const ipcsync_value& b);

}  // namespace ipcsync::crm
