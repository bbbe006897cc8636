#include <gtest/gtest.h>

#include <random>

#include "changeset_values.h"
#include "ipcsync/plugin_sdk/changeset.h"
#include "sqlite_test_db.h"

namespace ipcsync::plugin_sdk {
namespace {

using test::OwnedChange;
using test::OwnedValue;
using test::SqliteDb;

std::vector<OwnedChange> readAll(std::span<const unsigned char> bytes) {
  auto reader = ChangesetReader::open(bytes);
  EXPECT_TRUE(reader) << reader.error();
  std::vector<OwnedChange> out;
  ipcsync_change change{};
  for (;;) {
    auto more = reader->next(change);
    EXPECT_TRUE(more) << more.error();
    if (!more || !*more) break;
    out.push_back(OwnedChange::from(change));
  }
  return out;
}

void add(ChangesetWriter& w, const OwnedChange& c) {
  auto o = test::views(c.oldValues);
  auto n = test::views(c.newValues);
  auto r = w.add(c.table, static_cast<int>(c.primaryKey.size()), c.primaryKey.data(), c.op,
                 c.oldValues.empty() ? nullptr : o.data(), c.newValues.empty() ? nullptr : n.data());
  ASSERT_TRUE(r) << r.error();
}

std::vector<unsigned char> sessionChangeset(sqlite3* db, const std::function<void()>& changes) {
  sqlite3_session* session = nullptr;
  EXPECT_EQ(sqlite3session_create(db, "main", &session), SQLITE_OK);
  EXPECT_EQ(sqlite3session_attach(session, nullptr), SQLITE_OK);
  changes();
  int size = 0;
  void* data = nullptr;
  EXPECT_EQ(sqlite3session_changeset(session, &size, &data), SQLITE_OK);
  std::vector<unsigned char> out(static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
  sqlite3_free(data);
  sqlite3session_delete(session);
  return out;
}

const std::vector<unsigned char> kPk1{1, 0, 0, 0};

TEST(ChangesetTest, RoundTripsEveryValueTypeAndOperationThroughWriterAndReader) {
  const std::string nul("a\0b", 3);
  std::vector<OwnedChange> changes = {
      {"t", IPCSYNC_OP_INSERT, kPk1, {}, {OwnedValue::of(1), OwnedValue::real_(2.5), OwnedValue::text("héllo"), OwnedValue::blob(nul)}},
      {"t", IPCSYNC_OP_INSERT, kPk1, {}, {OwnedValue::of(-9223372036854775807LL - 1), OwnedValue::null(), OwnedValue::text(""), OwnedValue::blob("")}},
      {"t", IPCSYNC_OP_UPDATE, kPk1, {OwnedValue::of(1), OwnedValue::real_(2.5), OwnedValue::undefined(), OwnedValue::undefined()},
       {OwnedValue::undefined(), OwnedValue::real_(-0.125), OwnedValue::undefined(), OwnedValue::undefined()}},
      {"u", IPCSYNC_OP_INSERT, {0, 1, 2}, {}, {OwnedValue::text(std::string(300, 'x')), OwnedValue::text("k"), OwnedValue::of(7)}},
      {"t", IPCSYNC_OP_DELETE, kPk1, {OwnedValue::of(1), OwnedValue::real_(-0.125), OwnedValue::text("héllo"), OwnedValue::blob(nul)}, {}},
  };
  ChangesetWriter writer;
  for (const auto& c : changes) add(writer, c);
  EXPECT_EQ(readAll(writer.bytes()), changes);
  writer.clear();
  EXPECT_TRUE(writer.empty());
  EXPECT_TRUE(readAll(writer.bytes()).empty());
}

TEST(ChangesetTest, GroupsConsecutiveChangesOfOneTableUnderOneHeader) {
  ChangesetWriter writer;
  const std::vector<OwnedValue> row{OwnedValue::of(1), OwnedValue::null(), OwnedValue::null(), OwnedValue::null()};
  add(writer, {"t", IPCSYNC_OP_INSERT, kPk1, {}, row});
  const size_t afterFirst = writer.bytes().size();
  add(writer, {"t", IPCSYNC_OP_DELETE, kPk1, row, {}});
  const size_t record = 2 + 9 + 3;  // op, indirect, integer, three nulls
  EXPECT_EQ(writer.bytes().size(), afterFirst + record);
  EXPECT_EQ(writer.bytes()[0], 'T');
  EXPECT_EQ(std::count(writer.bytes().begin(), writer.bytes().end(), 'T'), 1);
}

TEST(ChangesetTest, WriterChangesetAppliedBySqliteEqualsTheSameChangesMadeDirectly) {
  const auto seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  SqliteDb direct, replica;
  const char* ddl = "CREATE TABLE t(id INTEGER PRIMARY KEY, a, b, c)";
  direct.exec(ddl);
  replica.exec(ddl);

  auto randomValue = [&]() -> OwnedValue {
    switch (rng() % 5) {
      case 0: return OwnedValue::of(static_cast<int64_t>(rng()) - (1LL << 31));
      case 1: return OwnedValue::real_(static_cast<double>(rng() % 100000) / 7.0);
      case 2: return OwnedValue::text(std::string(rng() % 40, static_cast<char>('a' + rng() % 26)));
      case 3: return OwnedValue::blob(std::string(rng() % 40, static_cast<char>(rng() % 256)));
      default: return OwnedValue::null();
    }
  };
  auto bind = [](sqlite3_stmt* s, int index, const OwnedValue& v) {
    switch (v.type) {
      case IPCSYNC_VALUE_INTEGER: sqlite3_bind_int64(s, index, v.integer); break;
      case IPCSYNC_VALUE_FLOAT: sqlite3_bind_double(s, index, v.real); break;
      case IPCSYNC_VALUE_TEXT: sqlite3_bind_text(s, index, v.bytes.data(), static_cast<int>(v.bytes.size()), SQLITE_TRANSIENT); break;
      case IPCSYNC_VALUE_BLOB: sqlite3_bind_blob(s, index, v.bytes.data(), static_cast<int>(v.bytes.size()), SQLITE_TRANSIENT); break;
      default: sqlite3_bind_null(s, index); break;
    }
  };
  auto run = [&](const std::string& sql, const std::vector<OwnedValue>& params) {
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(direct.get(), sql.c_str(), -1, &s, nullptr), SQLITE_OK);
    for (size_t i = 0; i < params.size(); ++i) bind(s, static_cast<int>(i + 1), params[i]);
    ASSERT_EQ(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
  };

  std::map<int64_t, std::vector<OwnedValue>> rows;
  ChangesetWriter writer;
  int64_t nextId = 1;
  for (int i = 0; i < 2000; ++i) {
    const auto choice = static_cast<unsigned>(rng() % 3);
    if (rows.empty() || choice == 0) {
      std::vector<OwnedValue> row{OwnedValue::of(nextId++), randomValue(), randomValue(), randomValue()};
      run("INSERT INTO t VALUES(?,?,?,?)", row);
      add(writer, {"t", IPCSYNC_OP_INSERT, kPk1, {}, row});
      rows[row[0].integer] = row;
      continue;
    }
    auto it = rows.begin();
    std::advance(it, static_cast<long>(rng() % rows.size()));
    if (choice == 1) {
      std::vector<OwnedValue> oldV(4), newV(4);
      oldV[0] = it->second[0];
      bool any = false;
      for (size_t c = 1; c < 4; ++c) {
        if (rng() % 2 == 0) continue;
        OwnedValue v = randomValue();
        if (v == it->second[c]) continue;
        oldV[c] = it->second[c];
        newV[c] = v;
        any = true;
      }
      if (!any) continue;
      for (size_t c = 1; c < 4; ++c)
        if (newV[c].type != IPCSYNC_VALUE_UNDEFINED) {
          run("UPDATE t SET " + std::string(1, static_cast<char>('a' + c - 1)) + " = ? WHERE id = ?", {newV[c], oldV[0]});
          it->second[c] = newV[c];
        }
      add(writer, {"t", IPCSYNC_OP_UPDATE, kPk1, oldV, newV});
    } else {
      run("DELETE FROM t WHERE id = ?", {it->second[0]});
      add(writer, {"t", IPCSYNC_OP_DELETE, kPk1, it->second, {}});
      rows.erase(it);
    }
  }
  replica.apply(writer.bytes());
  EXPECT_EQ(replica.table("t"), direct.table("t"));
  EXPECT_EQ(static_cast<size_t>(replica.scalar("SELECT count(*) FROM t")), rows.size());
}

TEST(ChangesetTest, ReadsAChangesetCapturedBySqliteSessionAndReencodesItByteForByte) {
  SqliteDb db;
  db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, a, b, c);"
          "CREATE TABLE u(k1 TEXT, v, k2 INTEGER, PRIMARY KEY(k1, k2));"
          "INSERT INTO t VALUES(1, 'one', 1.5, x'01'), (2, 'two', NULL, 2), (3, 'three', 3, 3);"
          "INSERT INTO u VALUES('a', 'va', 1), ('b', 'vb', 2);");
  auto bytes = sessionChangeset(db.get(), [&] {
    db.exec("INSERT INTO t VALUES(4, 'four', x'ff00', -4);"
            "UPDATE t SET b = 'changed' WHERE id = 1;"
            "DELETE FROM t WHERE id = 2;"
            "UPDATE u SET v = NULL WHERE k1 = 'b';"
            "INSERT INTO u VALUES('c', 3.25, 3);");
  });
  auto changes = readAll(bytes);
  ASSERT_EQ(changes.size(), 5u);
  std::map<std::pair<std::string, int>, int> ops;
  for (const auto& c : changes) ++ops[{c.table, c.op}];
  EXPECT_EQ((ops[{"t", IPCSYNC_OP_INSERT}]), 1);
  EXPECT_EQ((ops[{"t", IPCSYNC_OP_UPDATE}]), 1);
  EXPECT_EQ((ops[{"t", IPCSYNC_OP_DELETE}]), 1);
  EXPECT_EQ((ops[{"u", IPCSYNC_OP_UPDATE}]), 1);
  EXPECT_EQ((ops[{"u", IPCSYNC_OP_INSERT}]), 1);
  for (const auto& c : changes) {
    if (c.table == "u") {
      EXPECT_EQ(c.primaryKey, (std::vector<unsigned char>{1, 0, 2}));
    }
    if (c.table == "t" && c.op == IPCSYNC_OP_UPDATE) {
      EXPECT_EQ(c.oldValues[0], OwnedValue::of(1));
      EXPECT_EQ(c.oldValues[1], OwnedValue::undefined());
      EXPECT_EQ(c.oldValues[2], OwnedValue::real_(1.5));
      EXPECT_EQ(c.newValues[2], OwnedValue::text("changed"));
      EXPECT_EQ(c.newValues[0], OwnedValue::undefined());
    }
    if (c.table == "t" && c.op == IPCSYNC_OP_DELETE) {
      EXPECT_EQ(c.oldValues, (std::vector<OwnedValue>{OwnedValue::of(2), OwnedValue::text("two"), OwnedValue::null(), OwnedValue::of(2)}));
    }
  }
  ChangesetWriter writer;
  for (const auto& c : changes) add(writer, c);
  EXPECT_EQ(writer.bytes(), bytes);
}

TEST(ChangesetTest, SplitPiecesStayWithinTheLimitAndAppliedInOrderEqualTheWhole) {
  SqliteDb source;
  const char* ddl = "CREATE TABLE t(id INTEGER PRIMARY KEY, a, b, c); CREATE TABLE u(k TEXT PRIMARY KEY, v);";
  source.exec(ddl);
  auto whole = sessionChangeset(source.get(), [&] {
    for (int i = 0; i < 300; ++i) {
      source.exec("INSERT INTO t VALUES(" + std::to_string(i) + ", 'row " + std::to_string(i) + "', " + std::to_string(i * 3) + ", NULL)");
      source.exec("INSERT INTO u VALUES('k" + std::to_string(i) + "', zeroblob(" + std::to_string(i % 50) + "))");
    }
    source.exec("INSERT INTO u VALUES('huge', zeroblob(5000))");
  });
  for (size_t limit : {size_t{1}, size_t{64}, size_t{500}, size_t{4096}, size_t{1} << 20}) {
    auto pieces = splitChangeset(whole, limit);
    ASSERT_TRUE(pieces) << pieces.error();
    std::vector<OwnedChange> joined;
    SqliteDb replica;
    replica.exec(ddl);
    for (const auto& piece : *pieces) {
      auto changes = readAll(piece);
      ASSERT_FALSE(changes.empty());
      if (changes.size() > 1) {
        EXPECT_LE(piece.size(), limit) << "limit " << limit;
      }
      joined.insert(joined.end(), changes.begin(), changes.end());
      replica.apply(piece);
    }
    EXPECT_EQ(joined, readAll(whole)) << "limit " << limit;
    EXPECT_EQ(replica.table("t"), source.table("t"));
    EXPECT_EQ(replica.table("u"), source.table("u"));
    if (limit == 1) {
      EXPECT_EQ(pieces->size(), 601u);
    }
    if (limit == (size_t{1} << 20)) {
      EXPECT_EQ(pieces->size(), 1u);
    }
  }
  auto none = splitChangeset({}, 100);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  auto zero = splitChangeset(whole, 0);
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().find("at least 1 byte"), std::string::npos);
}

struct BadAdd {
  const char* name;
  std::string table;
  int columns;
  std::vector<unsigned char> pk;
  int op;
  std::vector<OwnedValue> oldV, newV;
  bool passOld, passNew;
  const char* expected;
};

TEST(ChangesetTest, WriterRefusesBadChangesWithAMessageAndAppendsNothing) {
  const auto i1 = OwnedValue::of(1);
  const auto u = OwnedValue::undefined();
  std::vector<BadAdd> cases = {
      {"empty table name", "", 2, {1, 0}, IPCSYNC_OP_INSERT, {}, {i1, i1}, false, true, "table name is empty"},
      {"zero columns", "t", 0, {}, IPCSYNC_OP_INSERT, {}, {}, false, true, "must be positive"},
      {"no primary key", "t", 2, {0, 0}, IPCSYNC_OP_INSERT, {}, {i1, i1}, false, true, "no primary-key column"},
      {"unknown op", "t", 2, {1, 0}, 99, {}, {i1, i1}, false, true, "op 99"},
      {"insert with old values", "t", 2, {1, 0}, IPCSYNC_OP_INSERT, {i1, i1}, {i1, i1}, true, true, "old values must be null"},
      {"delete without old values", "t", 2, {1, 0}, IPCSYNC_OP_DELETE, {}, {}, false, false, "old values must be given"},
      {"undefined in an insert", "t", 2, {1, 0}, IPCSYNC_OP_INSERT, {}, {i1, u}, false, true, "column 1 (new values): UNDEFINED"},
      {"key change in an update", "t", 2, {1, 0}, IPCSYNC_OP_UPDATE, {i1, i1}, {OwnedValue::of(2), i1}, true, true, "primary-key column cannot change"},
      {"update without key", "t", 2, {1, 0}, IPCSYNC_OP_UPDATE, {u, i1}, {u, OwnedValue::of(3)}, true, true, "part of the primary key"},
      {"update changing nothing", "t", 2, {1, 0}, IPCSYNC_OP_UPDATE, {i1, u}, {u, u}, true, true, "at least one column"},
      {"bad value type", "t", 2, {1, 0}, IPCSYNC_OP_INSERT, {}, {i1, OwnedValue{static_cast<ipcsync_value_type>(7), 0, 0, {}}}, false, true, "unknown value type 7"},
      {"other shape for a known table", "t", 3, {1, 0, 0}, IPCSYNC_OP_INSERT, {}, {i1, i1, i1}, false, true, "one shape per table"},
  };
  for (const auto& c : cases) {
    ChangesetWriter writer;
    add(writer, {"t", IPCSYNC_OP_INSERT, {1, 0}, {}, {OwnedValue::of(7), OwnedValue::null()}});
    const auto before = writer.bytes();
    auto o = test::views(c.oldV);
    auto n = test::views(c.newV);
    auto r = writer.add(c.table, c.columns, c.pk.empty() ? nullptr : c.pk.data(), c.op, c.passOld ? o.data() : nullptr,
                        c.passNew ? n.data() : nullptr);
    ASSERT_FALSE(r) << c.name;
    EXPECT_NE(r.error().find(c.expected), std::string::npos) << c.name << ": " << r.error();
    EXPECT_EQ(writer.bytes(), before) << c.name;
  }
  ChangesetWriter writer;
  ipcsync_value text{IPCSYNC_VALUE_TEXT, 0, 0, nullptr, 5};
  ipcsync_value key{IPCSYNC_VALUE_INTEGER, 1, 0, nullptr, 0};
  ipcsync_value values[2] = {key, text};
  const unsigned char pk[2] = {1, 0};
  auto r = writer.add("t", 2, pk, IPCSYNC_OP_INSERT, nullptr, values);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("bytes is null but size is not 0"), std::string::npos) << r.error();
  EXPECT_TRUE(writer.empty());
}

}  // namespace
}  // namespace ipcsync::plugin_sdk
