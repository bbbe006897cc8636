// The two CRM tables mining accepts (plugins/crm/schema.sql is the contract): their CREATE TABLE
// statements for the plugin descriptor, the check that a change has their shape, and the decoding
// of a change's values into the columns mining keeps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "changeset_reader.h"
#include "error.h"

namespace ipcsync::mining {

enum class CrmTable { Accounts, Orders };

// CREATE TABLE statements exactly as in plugins/crm/schema.sql.
extern const char* const kAccountsSchemaSql;
extern const char* const kOrdersSchemaSql;

struct AccountRow {
  int64_t id = 0;
  std::string name;
  std::string region;
};

struct OrderRow {
  int64_t id = 0;
  int64_t accountId = 0;
  std::string product;
  int64_t quantity = 0;
  int64_t unitPriceCents = 0;
  int64_t orderedAt = 0;
};

// Which accepted table `change` is for. Unsupported names a table mining does not accept; Schema
// names the table and how its column count or primary key differs from the CRM schema.
Expected<CrmTable> classify(const Change& change);

// The row's primary key (column 0) from the values that carry it; Schema if it is not an integer.
Expected<int64_t> primaryKeyOf(const Change& change);

// A whole row from an insert's new values or a delete's old values; Schema names a column whose
// value has the wrong type for what mining computes.
Expected<AccountRow> accountFrom(const Change& change, const std::vector<Value>& values);
Expected<OrderRow> orderFrom(const Change& change, const std::vector<Value>& values);

// Overwrites the columns an update defines; leaves the others.
Expected<> applyUpdate(const Change& change, AccountRow& row);
Expected<> applyUpdate(const Change& change, OrderRow& row);

// True when every defined value in `values` among the kept columns equals the row's.
bool matches(const AccountRow& row, const std::vector<Value>& values);
bool matches(const OrderRow& row, const std::vector<Value>& values);

}  // namespace ipcsync::mining
