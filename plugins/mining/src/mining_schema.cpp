#include "mining_schema.h"

namespace ipcsync::mining {

const char* const kMiningSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS accounts (
  id     INTEGER PRIMARY KEY,
  name   TEXT NOT NULL,
  region TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
  id               INTEGER PRIMARY KEY,
  account_id       INTEGER NOT NULL,
  product          TEXT    NOT NULL,
  quantity         INTEGER NOT NULL,
  unit_price_cents INTEGER NOT NULL,
  ordered_at       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sales_by_region (
  region        TEXT,
  order_count   INTEGER NOT NULL,
  units         INTEGER NOT NULL,
  revenue_cents INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS sales_by_region_key ON sales_by_region (region IS NULL, ifnull(region, ''));
CREATE TABLE IF NOT EXISTS sales_by_product (
  product       TEXT PRIMARY KEY,
  order_count   INTEGER NOT NULL,
  units         INTEGER NOT NULL,
  revenue_cents INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sales_by_customer (
  account_id    INTEGER PRIMARY KEY,
  order_count   INTEGER NOT NULL,
  units         INTEGER NOT NULL,
  revenue_cents INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sales_by_customer_revenue ON sales_by_customer (revenue_cents DESC, account_id);
CREATE TABLE IF NOT EXISTS sales_by_day (
  day           TEXT,
  order_count   INTEGER NOT NULL,
  units         INTEGER NOT NULL,
  revenue_cents INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS sales_by_day_key ON sales_by_day (day IS NULL, ifnull(day, ''));
CREATE TABLE IF NOT EXISTS applied_routes (
  route          TEXT PRIMARY KEY,
  last_sequence  INTEGER NOT NULL,
  origin         TEXT,
  commit_time_us INTEGER
);
)sql";

std::string topCustomersViewSql(int64_t limit) {
  return "DROP VIEW IF EXISTS top_customers;\n"
         "CREATE VIEW top_customers AS\n"
         "  SELECT c.account_id, a.name, a.region, c.order_count, c.units, c.revenue_cents\n"
         "  FROM sales_by_customer AS c LEFT JOIN accounts AS a ON a.id = c.account_id\n"
         "  ORDER BY c.revenue_cents DESC, c.account_id ASC\n"
         "  LIMIT " +
         std::to_string(limit) + ";";
}

}  // namespace ipcsync::mining
