#include "crm_tables.h"

#include <array>
#include <optional>
#include <string_view>

namespace ipcsync::mining {

const char* const kAccountsSchemaSql =
    "CREATE TABLE IF NOT EXISTS accounts (\n"
    "  id         INTEGER PRIMARY KEY,\n"
    "  name       TEXT    NOT NULL,\n"
    "  region     TEXT    NOT NULL,\n"
    "  industry   TEXT,\n"
    "  updated_at INTEGER NOT NULL\n"
    ")";

const char* const kOrdersSchemaSql =
    "CREATE TABLE IF NOT EXISTS orders (\n"
    "  id               INTEGER PRIMARY KEY,\n"
    "  account_id       INTEGER NOT NULL,\n"
    "  product          TEXT    NOT NULL,\n"
    "  quantity         INTEGER NOT NULL,\n"
    "  unit_price_cents INTEGER NOT NULL,\n"
    "  ordered_at       INTEGER NOT NULL,\n"
    "  updated_at       INTEGER NOT NULL\n"
    ")";

namespace {

constexpr std::array<std::string_view, 5> kAccountColumns = {"id", "name", "region", "industry", "updated_at"};
constexpr std::array<std::string_view, 7> kOrderColumns = {"id",        "account_id", "product",   "quantity",
                                                           "unit_price_cents", "ordered_at", "updated_at"};
enum AccountCol { kAId = 0, kAName = 1, kARegion = 2 };
enum OrderCol { kOId = 0, kOAccount = 1, kOProduct = 2, kOQuantity = 3, kOPrice = 4, kOOrderedAt = 5 };

template <size_t N>
std::string columnList(const std::array<std::string_view, N>& columns) {
  std::string out;
  for (auto c : columns) out += (out.empty() ? "" : ", ") + std::string(c);
  return out;
}

template <size_t N>
Expected<> checkShape(const Change& change, const std::array<std::string_view, N>& columns) {
  const size_t count = change.primaryKey.size();
  if (count != N)
    return fail(ErrorKind::Schema, "change #" + std::to_string(change.index) + " (" + opName(change.op) +
                                       ") of table '" + change.table + "' has " + std::to_string(count) +
                                       " columns, but the CRM schema (plugins/crm/schema.sql) has " + std::to_string(N) +
                                       ": " + columnList(columns) +
                                       "; the source table must match the schema exactly");
  for (size_t i = 0; i < N; ++i) {
    if (change.primaryKey[i] == (i == 0)) continue;
    return fail(ErrorKind::Schema, "change #" + std::to_string(change.index) + " of table '" + change.table +
                                       "': column " + std::to_string(i) + " (" + std::string(columns[i]) + ") is " +
                                       (change.primaryKey[i] ? "" : "not ") +
                                       "part of the primary key, but the CRM schema's primary key is (id) alone; "
                                       "the source table must match the schema exactly");
  }
  return {};
}

std::string where(const Change& change, std::string_view column) {
  return "table '" + change.table + "' change #" + std::to_string(change.index) + " (" + opName(change.op) +
         "), column " + std::string(column);
}

// The column's value as an integer; nullopt when undefined (an update leaving it as it is).
Expected<std::optional<int64_t>> integerAt(const Change& change, const std::vector<Value>& values, size_t column,
                                           std::string_view name) {
  const Value& v = values.at(column);
  if (std::holds_alternative<Undefined>(v)) return std::optional<int64_t>{};
  if (const auto* i = std::get_if<int64_t>(&v)) return std::optional<int64_t>{*i};
  return fail(ErrorKind::Schema, where(change, name) + " is " + describe(v) +
                                     "; the CRM schema declares it INTEGER NOT NULL and mining sums it, so it must be "
                                     "an integer; correct the source row");
}

Expected<std::optional<std::string>> textAt(const Change& change, const std::vector<Value>& values, size_t column,
                                            std::string_view name) {
  const Value& v = values.at(column);
  if (std::holds_alternative<Undefined>(v)) return std::optional<std::string>{};
  if (const auto* s = std::get_if<std::string>(&v)) return std::optional<std::string>{*s};
  return fail(ErrorKind::Schema, where(change, name) + " is " + describe(v) +
                                     "; the CRM schema declares it TEXT NOT NULL and mining groups by it, so it must be "
                                     "text; correct the source row");
}

Expected<int64_t> required(Expected<std::optional<int64_t>> v, const Change& change, std::string_view name) {
  if (!v) return std::unexpected(v.error());
  if (!*v)
    return fail(ErrorKind::Schema, where(change, name) + " carries no value, but a whole row was expected");
  return **v;
}

Expected<std::string> required(Expected<std::optional<std::string>> v, const Change& change, std::string_view name) {
  if (!v) return std::unexpected(v.error());
  if (!*v)
    return fail(ErrorKind::Schema, where(change, name) + " carries no value, but a whole row was expected");
  return std::move(**v);
}

template <typename T>
bool sameAs(const Value& v, const T& kept) {
  if (std::holds_alternative<Undefined>(v)) return true;
  const auto* x = std::get_if<T>(&v);
  return x && *x == kept;
}

}  // namespace

Expected<CrmTable> classify(const Change& change) {
  if (change.table == "accounts") {
    if (auto ok = checkShape(change, kAccountColumns); !ok) return std::unexpected(ok.error());
    return CrmTable::Accounts;
  }
  if (change.table == "orders") {
    if (auto ok = checkShape(change, kOrderColumns); !ok) return std::unexpected(ok.error());
    return CrmTable::Orders;
  }
  return fail(ErrorKind::Unsupported, "change #" + std::to_string(change.index) + " is for table '" + change.table +
                                          "', which mining does not accept (it accepts 'accounts' and 'orders'); "
                                          "route only those tables to mining");
}

Expected<int64_t> primaryKeyOf(const Change& change) {
  const auto& values = change.op == Op::Insert ? change.newValues : change.oldValues;
  return required(integerAt(change, values, 0, "id"), change, "id");
}

Expected<AccountRow> accountFrom(const Change& change, const std::vector<Value>& values) {
  auto id = required(integerAt(change, values, kAId, "id"), change, "id");
  if (!id) return std::unexpected(id.error());
  auto name = required(textAt(change, values, kAName, "name"), change, "name");
  if (!name) return std::unexpected(name.error());
  auto region = required(textAt(change, values, kARegion, "region"), change, "region");
  if (!region) return std::unexpected(region.error());
  return AccountRow{*id, std::move(*name), std::move(*region)};
}

Expected<OrderRow> orderFrom(const Change& change, const std::vector<Value>& values) {
  OrderRow row;
  std::array<int64_t*, 5> ints = {&row.id, &row.accountId, &row.quantity, &row.unitPriceCents, &row.orderedAt};
  std::array<size_t, 5> cols = {kOId, kOAccount, kOQuantity, kOPrice, kOOrderedAt};
  for (size_t i = 0; i < ints.size(); ++i) {
    auto v = required(integerAt(change, values, cols[i], kOrderColumns[cols[i]]), change, kOrderColumns[cols[i]]);
    if (!v) return std::unexpected(v.error());
    *ints[i] = *v;
  }
  auto product = required(textAt(change, values, kOProduct, "product"), change, "product");
  if (!product) return std::unexpected(product.error());
  row.product = std::move(*product);
  return row;
}

Expected<> applyUpdate(const Change& change, AccountRow& row) {
  const auto& values = change.newValues;
  if (!std::holds_alternative<Undefined>(values.at(kAId)) && !sameAs(values[kAId], row.id))
    return fail(ErrorKind::Schema, where(change, "id") + " changes the primary key in an update; the session "
                                                         "extension records that as a delete and an insert");
  auto name = textAt(change, values, kAName, "name");
  if (!name) return std::unexpected(name.error());
  auto region = textAt(change, values, kARegion, "region");
  if (!region) return std::unexpected(region.error());
  if (*name) row.name = std::move(**name);
  if (*region) row.region = std::move(**region);
  return {};
}

Expected<> applyUpdate(const Change& change, OrderRow& row) {
  const auto& values = change.newValues;
  if (!std::holds_alternative<Undefined>(values.at(kOId)) && !sameAs(values[kOId], row.id))
    return fail(ErrorKind::Schema, where(change, "id") + " changes the primary key in an update; the session "
                                                         "extension records that as a delete and an insert");
  std::array<int64_t*, 4> ints = {&row.accountId, &row.quantity, &row.unitPriceCents, &row.orderedAt};
  std::array<size_t, 4> cols = {kOAccount, kOQuantity, kOPrice, kOOrderedAt};
  for (size_t i = 0; i < ints.size(); ++i) {
    auto v = integerAt(change, values, cols[i], kOrderColumns[cols[i]]);
    if (!v) return std::unexpected(v.error());
    if (*v) *ints[i] = **v;
  }
  auto product = textAt(change, values, kOProduct, "product");
  if (!product) return std::unexpected(product.error());
  if (*product) row.product = std::move(**product);
  return {};
}

bool matches(const AccountRow& row, const std::vector<Value>& values) {
  return sameAs(values.at(kAId), row.id) && sameAs(values.at(kAName), row.name) &&
         sameAs(values.at(kARegion), row.region);
}

bool matches(const OrderRow& row, const std::vector<Value>& values) {
  return sameAs(values.at(kOId), row.id) && sameAs(values.at(kOAccount), row.accountId) &&
         sameAs(values.at(kOProduct), row.product) && sameAs(values.at(kOQuantity), row.quantity) &&
         sameAs(values.at(kOPrice), row.unitPriceCents) && sameAs(values.at(kOOrderedAt), row.orderedAt);
}

}  // namespace ipcsync::mining
