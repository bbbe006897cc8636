// ChangesetTransform and RowFilter: what travels, what is dropped, and the errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ipcsync/plugin_sdk/changeset.h"
#include "ipcsync/sync/changeset_transform.h"
#include "ipcsync/sync/forward_chain.h"

namespace ipcsync::sync {
namespace {

const char* kAccounts =
    "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, region TEXT NOT NULL, industry TEXT, "
    "updated_at INTEGER NOT NULL)";
const char* kContacts = "CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT)";

SchemaMap schemas(bool produces, bool accepts, const std::string& renamed = "") {
  SchemaMap m;
  auto a = schemaFromSql("accounts", kAccounts);
  auto c = schemaFromSql("contacts", kContacts);
  a->produces = c->produces = produces;
  a->accepts = c->accepts = accepts;
  if (!renamed.empty()) {
    auto r = schemaFromSql(renamed, std::string(kAccounts).replace(13, 8, renamed));
    r->produces = produces;
    r->accepts = accepts;
    m[renamed] = *r;
  }
  m["accounts"] = *a;
  m["contacts"] = *c;
  return m;
}

ipcsync_value integer(std::int64_t v) { return {.type = IPCSYNC_VALUE_INTEGER, .integer = v}; }
ipcsync_value text(const std::string& s) {
  // Stored in a static pool so the pointer outlives the call.
  static std::vector<std::string> pool(1024);
  static std::size_t next = 0;
  std::string& slot = pool[next++ % pool.size()];
  slot = s;
  return {.type = IPCSYNC_VALUE_TEXT, .bytes = slot.data(), .size = slot.size()};
}
const ipcsync_value kUndef{.type = IPCSYNC_VALUE_UNDEFINED};
const ipcsync_value kNull{.type = IPCSYNC_VALUE_NULL};
const unsigned char kPk[5] = {1, 0, 0, 0, 0};

std::vector<unsigned char> insertAccount(plugin_sdk::ChangesetWriter& w, std::int64_t id, const std::string& region,
                                         const std::string& industry) {
  ipcsync_value row[5] = {integer(id), text("n" + std::to_string(id)), text(region), text(industry), integer(7)};
  EXPECT_TRUE(w.add("accounts", 5, kPk, IPCSYNC_OP_INSERT, nullptr, row));
  return w.bytes();
}

std::vector<std::vector<unsigned char>> one(const std::vector<unsigned char>& bytes) { return {bytes}; }

struct Seen {
  std::string table;
  int op;
  std::vector<ipcsync_value_type> types;
  std::vector<std::string> texts;
};

std::vector<Seen> read(const std::vector<unsigned char>& bytes) {
  std::vector<Seen> out;
  if (bytes.empty()) return out;
  auto r = plugin_sdk::ChangesetReader::open(bytes);
  EXPECT_TRUE(r) << r.error();
  ipcsync_change c{};
  c.struct_size = sizeof c;
  while (true) {
    auto more = r->next(c);
    EXPECT_TRUE(more);
    if (!more || !*more) break;
    Seen s{c.table, c.op, {}, {}};
    const ipcsync_value* v = c.new_values ? c.new_values : c.old_values;
    for (int i = 0; i < c.column_count; ++i) {
      s.types.push_back(v[i].type);
      s.texts.push_back(v[i].type == IPCSYNC_VALUE_TEXT ? std::string(static_cast<const char*>(v[i].bytes), v[i].size) : "");
    }
    out.push_back(s);
  }
  return out;
}

TEST(ChangesetTransformTest, DropsTablesTheRouteDoesNotCarry) {
  plugin_sdk::ChangesetWriter w;
  insertAccount(w, 1, "north", "retail");
  ipcsync_value contact[2] = {integer(9), text("x")};
  const unsigned char pk2[2] = {1, 0};
  ASSERT_TRUE(w.add("contacts", 2, pk2, IPCSYNC_OP_INSERT, nullptr, contact));
  std::vector<TableRule> rules = {{.table = "accounts"}};
  auto t = ChangesetTransform::create(rules, schemas(true, false), schemas(false, true));
  ASSERT_TRUE(t) << t.error();
  auto out = t->apply(one(w.bytes()));
  ASSERT_TRUE(out) << out.error();
  EXPECT_EQ(out->changesIn, 2u);
  EXPECT_EQ(out->changesOut, 1u);
  auto seen = read(out->changeset);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].table, "accounts");
  EXPECT_EQ(out->tables, std::vector<std::string>{"accounts"});
}

TEST(ChangesetTransformTest, RowFilterKeepsOnlyRowsItIsTrueFor) {
  plugin_sdk::ChangesetWriter w;
  insertAccount(w, 1, "north", "retail");
  insertAccount(w, 2, "south", "retail");
  insertAccount(w, 3, "north", "mining");
  std::vector<TableRule> rules = {{.table = "accounts", .rowFilter = "region = 'north' AND id <> 3"}};
  auto t = ChangesetTransform::create(rules, schemas(true, false), schemas(false, true));
  ASSERT_TRUE(t) << t.error();
  auto out = t->apply(one(w.bytes()));
  ASSERT_TRUE(out) << out.error();
  auto seen = read(out->changeset);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].texts[1], "n1");
}

TEST(ChangesetTransformTest, UpdateWhoseFilterDependsOnAnUncarriedColumnIsKept) {
  plugin_sdk::ChangesetWriter w;
  // Only `name` changed: region is not in the update, so the filter reads NULL and the update stays.
  ipcsync_value oldV[5] = {integer(1), text("a"), kUndef, kUndef, kUndef};
  ipcsync_value newV[5] = {kUndef, text("b"), kUndef, kUndef, kUndef};
  ASSERT_TRUE(w.add("accounts", 5, kPk, IPCSYNC_OP_UPDATE, oldV, newV));
  // A region change to 'south' is carried and judged: dropped.
  ipcsync_value oldR[5] = {integer(2), kUndef, text("north"), kUndef, kUndef};
  ipcsync_value newR[5] = {kUndef, kUndef, text("south"), kUndef, kUndef};
  ASSERT_TRUE(w.add("accounts", 5, kPk, IPCSYNC_OP_UPDATE, oldR, newR));
  std::vector<TableRule> rules = {{.table = "accounts", .rowFilter = "region = 'north'"}};
  auto t = ChangesetTransform::create(rules, schemas(true, false), schemas(false, true));
  ASSERT_TRUE(t);
  auto out = t->apply(one(w.bytes()));
  ASSERT_TRUE(out) << out.error();
  auto seen = read(out->changeset);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].texts[1], "b");
}

// An update carrying the whole old row (crm's) that changes region and name of account `id`.
void moveAccount(plugin_sdk::ChangesetWriter& w, std::int64_t id, const std::string& from, const std::string& to) {
  ipcsync_value oldV[5] = {integer(id), text("old" + std::to_string(id)), text(from), text("retail"), integer(7)};
  ipcsync_value newV[5] = {kUndef, text("new" + std::to_string(id)), from == to ? kUndef : text(to), kUndef, kUndef};
  ASSERT_TRUE(w.add("accounts", 5, kPk, IPCSYNC_OP_UPDATE, oldV, newV));
}

struct Full {
  int op;
  std::vector<ipcsync_value_type> oldTypes, newTypes;
  std::vector<std::string> oldTexts, newTexts;
};

std::vector<Full> readFull(const std::vector<unsigned char>& bytes) {
  std::vector<Full> out;
  if (bytes.empty()) return out;
  auto r = plugin_sdk::ChangesetReader::open(bytes);
  EXPECT_TRUE(r) << r.error();
  ipcsync_change c{};
  c.struct_size = sizeof c;
  auto textOf = [](const ipcsync_value& v) {
    return v.type == IPCSYNC_VALUE_TEXT ? std::string(static_cast<const char*>(v.bytes), v.size) : "";
  };
  while (true) {
    auto more = r->next(c);
    EXPECT_TRUE(more);
    if (!more || !*more) break;
    Full f{c.op, {}, {}, {}, {}};
    for (int i = 0; i < c.column_count; ++i) {
      if (c.old_values) f.oldTypes.push_back(c.old_values[i].type), f.oldTexts.push_back(textOf(c.old_values[i]));
      if (c.new_values) f.newTypes.push_back(c.new_values[i].type), f.newTexts.push_back(textOf(c.new_values[i]));
    }
    out.push_back(f);
  }
  return out;
}

// With the whole old row an update is judged on both rows: moving in is an INSERT of the whole new
// row, moving out a DELETE of the old row, staying in the UPDATE, staying out nothing. The route
// also renames the table and excludes `industry`, which must stay NULL/unchanged throughout.
TEST(ChangesetTransformTest, UpdatesMovingAcrossTheFilterBecomeInsertsAndDeletes) {
  plugin_sdk::ChangesetWriter w;
  moveAccount(w, 1, "south", "north");  // in
  moveAccount(w, 2, "north", "south");  // out
  moveAccount(w, 3, "north", "north");  // stays in (only the name changes)
  moveAccount(w, 4, "south", "west");   // stays out
  std::vector<TableRule> rules = {{.table = "accounts",
                                   .renameTo = "north_accounts",
                                   .excludeColumns = {"industry"},
                                   .rowFilter = "region = 'north'"}};
  auto t = ChangesetTransform::create(rules, schemas(true, false), schemas(false, true, "north_accounts"));
  ASSERT_TRUE(t) << t.error();
  auto out = t->apply(one(w.bytes()));
  ASSERT_TRUE(out) << out.error();
  EXPECT_EQ(out->changesIn, 4u);
  EXPECT_EQ(out->changesOut, 3u);
  EXPECT_EQ(out->tables, std::vector<std::string>{"north_accounts"});
  auto seen = readFull(out->changeset);
  ASSERT_EQ(seen.size(), 3u);

  EXPECT_EQ(seen[0].op, IPCSYNC_OP_INSERT) << "moving in: the target never had the row";
  EXPECT_EQ(seen[0].newTexts[1], "new1");
  EXPECT_EQ(seen[0].newTexts[2], "north");
  EXPECT_EQ(seen[0].newTypes[3], IPCSYNC_VALUE_NULL) << "excluded column";
  EXPECT_EQ(seen[0].newTypes[4], IPCSYNC_VALUE_INTEGER) << "unchanged column taken from the old row";

  EXPECT_EQ(seen[1].op, IPCSYNC_OP_DELETE) << "moving out: the target must forget the row";
  EXPECT_EQ(seen[1].oldTexts[1], "old2");
  EXPECT_EQ(seen[1].oldTexts[2], "north");
  EXPECT_EQ(seen[1].oldTypes[3], IPCSYNC_VALUE_NULL) << "excluded column, as the target holds it";

  EXPECT_EQ(seen[2].op, IPCSYNC_OP_UPDATE);
  EXPECT_EQ(seen[2].newTexts[1], "new3");
  // Reduced to the key and the changed columns: conflict detection stays as for sqlite3session.
  EXPECT_EQ(seen[2].oldTypes, (std::vector<ipcsync_value_type>{IPCSYNC_VALUE_INTEGER, IPCSYNC_VALUE_TEXT,
                                                               IPCSYNC_VALUE_UNDEFINED, IPCSYNC_VALUE_UNDEFINED,
                                                               IPCSYNC_VALUE_UNDEFINED}));
}

// A filter on a column the route does not carry still decides membership from the source row.
TEST(ChangesetTransformTest, FilterOnAnExcludedColumnJudgesBothRows) {
  plugin_sdk::ChangesetWriter w;
  ipcsync_value oldV[5] = {integer(1), text("a"), text("north"), text("retail"), integer(7)};
  ipcsync_value newV[5] = {kUndef, kUndef, kUndef, text("mining"), kUndef};
  ASSERT_TRUE(w.add("accounts", 5, kPk, IPCSYNC_OP_UPDATE, oldV, newV));
  std::vector<TableRule> rules = {{.table = "accounts", .excludeColumns = {"industry"}, .rowFilter = "industry = 'mining'"}};
  auto t = ChangesetTransform::create(rules, schemas(true, false), schemas(false, true));
  ASSERT_TRUE(t) << t.error();
  auto out = t->apply(one(w.bytes()));
  ASSERT_TRUE(out) << out.error();
  auto seen = readFull(out->changeset);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].op, IPCSYNC_OP_INSERT);
  EXPECT_EQ(seen[0].newTexts[1], "a");
  EXPECT_EQ(seen[0].newTypes[3], IPCSYNC_VALUE_NULL);
}

// Without a filter, an update carrying the whole old row is forwarded with old values for the key
// and the changed columns only (a rename forces the transform to re-encode it).
TEST(ChangesetTransformTest, ForwardedUpdatesCarryOldValuesOnlyForKeyAndChangedColumns) {
  plugin_sdk::ChangesetWriter w;
  moveAccount(w, 1, "north", "north");
  std::vector<TableRule> rules = {{.table = "accounts", .renameTo = "north_accounts"}};
  auto t = ChangesetTransform::create(rules, schemas(true, false), schemas(false, true, "north_accounts"));
  ASSERT_TRUE(t) << t.error();
  auto out = t->apply(one(w.bytes()));
  ASSERT_TRUE(out) << out.error();
  auto seen = readFull(out->changeset);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].op, IPCSYNC_OP_UPDATE);
  EXPECT_EQ(seen[0].oldTypes, (std::vector<ipcsync_value_type>{IPCSYNC_VALUE_INTEGER, IPCSYNC_VALUE_TEXT,
                                                               IPCSYNC_VALUE_UNDEFINED, IPCSYNC_VALUE_UNDEFINED,
                                                               IPCSYNC_VALUE_UNDEFINED}));
}

TEST(ChangesetTransformTest, ExcludedColumnsTravelAsNullInInsertsAndUnchangedInUpdates) {
  plugin_sdk::ChangesetWriter w;
  insertAccount(w, 1, "north", "retail");
  ipcsync_value oldV[5] = {integer(1), kUndef, kUndef, text("retail"), kUndef};
  ipcsync_value newV[5] = {kUndef, kUndef, kUndef, text("banking"), kUndef};
  ASSERT_TRUE(w.add("accounts", 5, kPk, IPCSYNC_OP_UPDATE, oldV, newV));  // only industry: dropped
  std::vector<TableRule> rules = {{.table = "accounts", .excludeColumns = {"industry"}}};
  auto t = ChangesetTransform::create(rules, schemas(true, false), schemas(false, true));
  ASSERT_TRUE(t) << t.error();
  auto out = t->apply(one(w.bytes()));
  ASSERT_TRUE(out) << out.error();
  auto seen = read(out->changeset);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].op, IPCSYNC_OP_INSERT);
  EXPECT_EQ(seen[0].types[3], IPCSYNC_VALUE_NULL);
  EXPECT_EQ(seen[0].texts[2], "north");
}

TEST(ChangesetTransformTest, IncludeListKeepsThePrimaryKeyAndRenameChangesTheTable) {
  plugin_sdk::ChangesetWriter w;
  insertAccount(w, 5, "west", "retail");
  std::vector<TableRule> rules = {{.table = "accounts", .renameTo = "clients", .includeColumns = {"name"}}};
  auto t = ChangesetTransform::create(rules, schemas(true, false), schemas(false, true, "clients"));
  ASSERT_TRUE(t) << t.error();
  auto out = t->apply(one(w.bytes()));
  ASSERT_TRUE(out) << out.error();
  auto seen = read(out->changeset);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].table, "clients");
  EXPECT_EQ(seen[0].types[0], IPCSYNC_VALUE_INTEGER);  // id: the key always travels
  EXPECT_EQ(seen[0].texts[1], "n5");
  EXPECT_EQ(seen[0].types[2], IPCSYNC_VALUE_NULL);
  EXPECT_EQ(seen[0].types[4], IPCSYNC_VALUE_NULL);
}

TEST(ChangesetTransformTest, RefusesBadRulesWithMessagesThatNameThem) {
  const auto error = [](std::vector<TableRule> rules) {
    auto t = ChangesetTransform::create(rules, schemas(true, false), schemas(false, true));
    return t ? std::string("(created)") : t.error();
  };
  EXPECT_NE(error({{.table = "nope"}}).find("'nope' is not one the source produces"), std::string::npos);
  EXPECT_NE(error({{.table = "accounts", .excludeColumns = {"id"}}}).find("primary key"), std::string::npos);
  EXPECT_NE(error({{.table = "accounts", .includeColumns = {"colour"}}}).find("'colour'"), std::string::npos);
  EXPECT_NE(error({{.table = "accounts", .rowFilter = "nosuch = 1"}}).find("nosuch"), std::string::npos);
  EXPECT_NE(error({{.table = "accounts", .rowFilter = "1; DROP TABLE x"}}).find("row filter"), std::string::npos);
  EXPECT_NE(error({{.table = "accounts", .renameTo = "clients"}}).find("'clients' is not one the subscriber accepts"),
            std::string::npos);
}

TEST(ChangesetTransformTest, EmptyRulesCarryEveryTableProducedAndAccepted) {
  SchemaMap sub = schemas(false, true);
  sub.erase("contacts");
  auto t = ChangesetTransform::create({}, schemas(true, false), sub);
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->sourceTables(), std::vector<std::string>{"accounts"});
}

TEST(ChangesetTransformTest, MalformedChangesetIsAnErrorNotACrash) {
  std::vector<TableRule> rules = {{.table = "accounts"}};
  auto t = ChangesetTransform::create(rules, schemas(true, false), schemas(false, true));
  ASSERT_TRUE(t);
  std::vector<unsigned char> junk = {'T', 5, 1, 0, 0};
  auto out = t->apply(one(junk));
  EXPECT_FALSE(out);
}

// a --(accounts renamed north_accounts, north only)--> b --(retail only)--> c: an entry of a
// forwarded to c is taken through a->b's rules first, as b holds it.
struct ForwardSetup {
  std::vector<Hop> hops{{.route = "a-b", .source = "a", .subscriber = "b",
                         .rules = {{.table = "accounts", .renameTo = "north_accounts", .rowFilter = "region = 'north'"}}}};
  SchemaMap a = schemas(true, false), b = schemas(true, true, "north_accounts"),
            c = schemas(false, true, "north_accounts");
  ForwardChain::SchemasOf schemasOf = [this](const std::string& i) -> const SchemaMap* {
    return i == "a" ? &a : i == "b" ? &b : i == "c" ? &c : nullptr;
  };
};

std::vector<Full> throughChainAndRoute(ForwardSetup& s, const std::vector<unsigned char>& entry,
                                       const std::vector<TableRule>& routeRules) {
  auto chain = ForwardChain::create(s.hops, s.schemasOf);
  EXPECT_TRUE(chain) << chain.error().message;
  if (!chain) return {};
  EXPECT_TRUE(chain->transforms());
  EXPECT_EQ(chain->originTables(), std::vector<std::string>{"accounts"});
  const std::vector<std::string> tables{"accounts"};
  auto arrived = chain->apply(one(entry), tables);
  EXPECT_TRUE(arrived) << arrived.error();
  if (!arrived || arrived->changeset.empty()) return {};
  EXPECT_EQ(arrived->tables, std::vector<std::string>{"north_accounts"});
  auto route = ChangesetTransform::create(routeRules, s.b, s.c);
  EXPECT_TRUE(route) << route.error();
  auto out = route->apply(one(arrived->changeset));
  EXPECT_TRUE(out) << out.error();
  return out ? readFull(out->changeset) : std::vector<Full>{};
}

TEST(ForwardChainTest, AForwardedEntryIsRenamedAndFilteredAsTheSourceHoldsIt) {
  ForwardSetup s;
  plugin_sdk::ChangesetWriter w;
  insertAccount(w, 1, "north", "retail");
  insertAccount(w, 2, "south", "retail");  // never reached b: must not reach c
  const auto seen = throughChainAndRoute(s, w.bytes(), {{.table = "north_accounts"}});
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].op, IPCSYNC_OP_INSERT);
  EXPECT_EQ(seen[0].newTexts[2], "north");
}

// The whole old row travels from hop to hop, so a later filter still sees a row move out of it.
TEST(ForwardChainTest, ALaterHopsFilterJudgesTheWholeOldRowTheOriginSent) {
  ForwardSetup s;
  plugin_sdk::ChangesetWriter w;
  ipcsync_value oldV[5] = {integer(1), text("a"), text("north"), text("retail"), integer(7)};
  ipcsync_value newV[5] = {kUndef, kUndef, kUndef, text("mining"), kUndef};
  ASSERT_TRUE(w.add("accounts", 5, kPk, IPCSYNC_OP_UPDATE, oldV, newV));
  const auto seen = throughChainAndRoute(s, w.bytes(), {{.table = "north_accounts", .rowFilter = "industry = 'retail'"}});
  ASSERT_EQ(seen.size(), 1u) << "c holds the row (it was retail) and must forget it";
  EXPECT_EQ(seen[0].op, IPCSYNC_OP_DELETE);
  EXPECT_EQ(seen[0].oldTexts[3], "retail");
}

TEST(ForwardChainTest, HopsThatCarryTablesAsTheyAreNeedNoSchemaAndPassBytesThrough) {
  const std::vector<Hop> hops{{.route = "all", .source = "a", .subscriber = "b"},
                              {.route = "two", .source = "b", .subscriber = "c", .rules = {{.table = "accounts"}, {.table = "contacts"}}}};
  auto chain = ForwardChain::create(hops, [](const std::string&) -> const SchemaMap* { return nullptr; });
  ASSERT_TRUE(chain) << chain.error().message;
  EXPECT_EQ(chain->originTables(), (std::vector<std::string>{"accounts", "contacts"}));
  plugin_sdk::ChangesetWriter w;
  insertAccount(w, 1, "north", "retail");
  const std::vector<std::string> accounts{"accounts"};
  auto same = chain->apply(one(w.bytes()), accounts);
  ASSERT_TRUE(same) << same.error();
  EXPECT_EQ(same->changeset, w.bytes()) << "carried as it is: the bytes pass through";
  // A table the second hop does not carry is dropped, without any schema.
  ipcsync_value order[2] = {integer(5), text("x")};
  const unsigned char pk2[2] = {1, 0};
  ASSERT_TRUE(w.add("orders", 2, pk2, IPCSYNC_OP_INSERT, nullptr, order));
  const std::vector<std::string> both{"accounts", "orders"};
  auto dropped = chain->apply(one(w.bytes()), both);
  ASSERT_TRUE(dropped) << dropped.error();
  EXPECT_EQ(dropped->tables, accounts);
  ASSERT_EQ(read(dropped->changeset).size(), 1u);

  const std::vector<Hop> none{{.route = "all", .source = "a", .subscriber = "b"}};
  auto identity = ForwardChain::create(none, [](const std::string&) -> const SchemaMap* { return nullptr; });
  ASSERT_TRUE(identity);
  EXPECT_FALSE(identity->transforms());
}

TEST(ForwardChainTest, ATransformingHopWaitsForItsEndsToDescribeAndRefusesBadRules) {
  ForwardSetup s;
  auto waiting = ForwardChain::create(s.hops, [&](const std::string& i) { return i == "a" ? &s.a : nullptr; });
  ASSERT_FALSE(waiting);
  EXPECT_EQ(waiting.error().kind, ForwardChain::Error::Kind::NotDescribed);
  EXPECT_NE(waiting.error().message.find("'b'"), std::string::npos) << waiting.error().message;
  EXPECT_NE(waiting.error().message.find("'a-b'"), std::string::npos) << waiting.error().message;
  s.hops[0].rules[0].rowFilter = "no_such_column = 1";
  auto bad = ForwardChain::create(s.hops, s.schemasOf);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, ForwardChain::Error::Kind::Invalid);
  EXPECT_NE(bad.error().message.find("no_such_column"), std::string::npos) << bad.error().message;
}

TEST(RowFilterTest, EvaluatesToTrueFalseOrNull) {
  auto schema = schemaFromSql("accounts", kAccounts);
  ASSERT_TRUE(schema);
  auto f = RowFilter::compile(*schema, "region = 'north'");
  ASSERT_TRUE(f) << f.error();
  std::vector<ipcsync_value> row = {integer(1), text("a"), text("north"), kNull, integer(1)};
  EXPECT_EQ((*f)->evaluate(row).value(), std::optional<bool>(true));
  row[2] = text("south");
  EXPECT_EQ((*f)->evaluate(row).value(), std::optional<bool>(false));
  row[2] = kNull;
  EXPECT_EQ((*f)->evaluate(row).value(), std::optional<bool>());
}

}  // namespace
}  // namespace ipcsync::sync
