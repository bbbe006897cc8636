// The mining database's own schema (version kMiningSchemaVersion, kept in PRAGMA user_version):
// copies of the CRM rows it needs, the aggregate tables, the route table, and the top-customers
// view. docs/plugins/mining.md states what each table means as SQL over the source tables.
#pragma once

#include <cstdint>
#include <string>

namespace ipcsync::mining {

inline constexpr int64_t kMiningSchemaVersion = 1;

// Creates every table and index that is missing; safe to run on an existing database.
extern const char* const kMiningSchemaSql;

// The UTC date ('YYYY-MM-DD') of ?1 microseconds since the epoch, rounding toward the past, or NULL
// outside SQLite's date range (years 0000-9999): the key of sales_by_day.
inline constexpr const char* kDaySql = "SELECT date(?1 / 1000000 - (?1 % 1000000 < 0), 'unixepoch')";

// DROP + CREATE of the top_customers view listing the `limit` customers with the most revenue.
std::string topCustomersViewSql(int64_t limit);

}  // namespace ipcsync::mining
