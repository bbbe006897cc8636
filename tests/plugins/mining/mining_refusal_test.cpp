// Bad input is refused with a message that says what was wrong, where and what to do, and leaves
// the mining database exactly as it was.
#include <sqlite3.h>

#include "changeset_pieces.h"
#include "crm_workload.h"
#include "mining_fixture.h"

namespace ipcsync::test {
namespace {

class MiningRefusalTest : public MiningTest {
 protected:
  void SetUp() override {
    MiningTest::SetUp();
    CrmWorkload workload(m_source, 21);
    applyOk(m_source.capture([&] {
      for (int i = 0; i < 30; ++i) workload.step();
    }),
            "r", 1);
    m_before = everything();
  }
  // Applies `data` as sequence 2 and expects `status` with every fragment in the message, and no change.
  void expectRefused(const Bytes& data, int status, std::initializer_list<const char*> fragments) {
    ipcsync_apply_result result{};
    EXPECT_EQ(apply(data, "r", 2, result), status) << host->lastError();
    for (const char* f : fragments) EXPECT_NE(host->lastError().find(f), std::string::npos) << host->lastError();
    EXPECT_EQ(everything(), m_before) << "a refused change-set changed the mining database";
    uint64_t last = 0;
    EXPECT_EQ(host->lastApplied("r", last), IPCSYNC_OK);
    EXPECT_EQ(last, 1u);
  }
  // An order insert (7 columns, id the key) carrying `values`.
  static Bytes orderInsert(std::vector<CellValue> values) {
    ChangesetWriter w;
    w.add("orders", {true, false, false, false, false, false, false}, SQLITE_INSERT, {}, values);
    return w.bytes();
  }
  CrmSource m_source;
  Rows m_before;
};

TEST_F(MiningRefusalTest, AChangesetForATableMiningDoesNotAcceptIsRefusedNamingIt) {
  const Bytes data = m_source.capture([&] {
    m_source.run("INSERT INTO orders VALUES (5000, 1, 'widget', 2, 300, 0, 0)");
    m_source.run("INSERT INTO contacts (id, account_id, name, updated_at) VALUES (1, 1, 'Ann', 0)");
  });
  expectRefused(data, IPCSYNC_EUNSUPPORTED, {"table 'contacts'", "accepts 'accounts' and 'orders'", "route only"});
}

TEST_F(MiningRefusalTest, AnOrdersTableWithAColumnTooFewIsASchemaMismatch) {
  CrmSource other(
      "CREATE TABLE orders (id INTEGER PRIMARY KEY, account_id INTEGER, product TEXT, quantity INTEGER,"
      " unit_price_cents INTEGER, ordered_at INTEGER);",
      false);
  const Bytes data = other.capture([&] { other.run("INSERT INTO orders VALUES (1, 1, 'widget', 2, 300, 0)"); });
  expectRefused(data, IPCSYNC_ESCHEMA,
                {"table 'orders' has 6 columns", "the CRM schema (plugins/crm/schema.sql) has 7", "updated_at"});
}

TEST_F(MiningRefusalTest, AnAccountsTableWithAnotherPrimaryKeyIsASchemaMismatch) {
  CrmSource other(
      "CREATE TABLE accounts (id INTEGER, name TEXT, region TEXT, industry TEXT, updated_at INTEGER,"
      " PRIMARY KEY (id, region));",
      false);
  const Bytes data = other.capture([&] { other.run("INSERT INTO accounts VALUES (1, 'a', 'east', NULL, 0)"); });
  expectRefused(data, IPCSYNC_ESCHEMA, {"table 'accounts'", "column 2 (region) is part of the primary key", "(id) alone"});
}

TEST_F(MiningRefusalTest, AValueOfTheWrongTypeIsASchemaMismatchNamingTheColumn) {
  const Bytes text = m_source.capture(
      [&] { m_source.run("INSERT INTO orders VALUES (6000, 1, 'widget', 'lots', 300, 0, 0)"); });
  expectRefused(text, IPCSYNC_ESCHEMA, {"table 'orders'", "column quantity is TEXT 'lots'", "must be an integer"});
  expectRefused(orderInsert({int64_t{6001}, int64_t{1}, Null{}, int64_t{1}, int64_t{1}, int64_t{0}, int64_t{0}}),
                IPCSYNC_ESCHEMA, {"column product is NULL", "must be text"});
  expectRefused(orderInsert({int64_t{6002}, int64_t{1}, std::string("w"), 2.5, int64_t{1}, int64_t{0}, int64_t{0}}),
                IPCSYNC_ESCHEMA, {"column quantity is REAL 2.5;"});
}

TEST_F(MiningRefusalTest, ARevenueThatOverflows64BitsIsRefused) {
  const int64_t big = int64_t{1} << 40;
  expectRefused(orderInsert({int64_t{7000}, int64_t{1}, std::string("w"), big, big, int64_t{0}, int64_t{0}}),
                IPCSYNC_EINVAL, {"orders row id=7000", "overflows a 64-bit integer", "correct the source row"});
  // Each order fits, but their sum does not.
  ChangesetWriter w;
  const int64_t half = std::numeric_limits<int64_t>::max() / 2 + 1;
  for (int64_t id : {7001, 7002})
    w.add("orders", {true, false, false, false, false, false, false}, SQLITE_INSERT, {},
          {id, int64_t{1}, std::string("w"), int64_t{1}, half, int64_t{0}, int64_t{0}});
  expectRefused(w.bytes(), IPCSYNC_EINVAL, {"sales total would overflow", "limits"});
}

TEST_F(MiningRefusalTest, MalformedChangesetBytesAreRefused) {
  Bytes data = m_source.capture([&] { m_source.run("INSERT INTO orders VALUES (8000, 1, 'widget', 2, 300, 0, 0)"); });
  data.resize(data.size() - 5);
  expectRefused(data, IPCSYNC_EINVAL, {"malformed change-set"});
}

// SQLite 3.40's own iterator never returns on some changesets cut inside the table header; the
// plugin must refuse every cut, wherever it falls, and answer.
TEST_F(MiningRefusalTest, AChangesetCutAnywhereIsRefusedWithoutHanging) {
  const Bytes whole = m_source.capture([&] { m_source.run("INSERT INTO orders VALUES (8100, 1, 'widget', 2, 300, 0, 0)"); });
  for (std::size_t cut = 1; cut < whole.size(); ++cut) {
    SCOPED_TRACE("cut after " + std::to_string(cut) + " of " + std::to_string(whole.size()) + " bytes");
    expectRefused(Bytes(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(cut)), IPCSYNC_EINVAL, {"malformed change-set"});
  }
}

TEST_F(MiningRefusalTest, AnEnvelopeWithoutARouteOrWithImpossiblePiecesIsRefused) {
  const Bytes data = m_source.capture([&] { m_source.run("INSERT INTO orders VALUES (9000, 1, 'w', 2, 3, 0, 0)"); });
  ipcsync_apply_result result{};
  ipcsync_envelope e = envelopeFor(data, "r", 2);
  e.route = nullptr;
  EXPECT_EQ(host->apply(e, result), IPCSYNC_EINVAL);
  EXPECT_NE(host->lastError().find("no route"), std::string::npos) << host->lastError();
  e = envelopeFor(data, "r", 2, 3, 3);
  EXPECT_EQ(host->apply(e, result), IPCSYNC_EINVAL);
  EXPECT_NE(host->lastError().find("piece_index 3 with piece_count 3 is impossible"), std::string::npos)
      << host->lastError();
  e = envelopeFor(data, "r", 2, 0, 0);
  EXPECT_EQ(host->apply(e, result), IPCSYNC_EINVAL);
  e = envelopeFor(data, "r", uint64_t{1} << 63);
  EXPECT_EQ(host->apply(e, result), IPCSYNC_EINVAL);
  EXPECT_NE(host->lastError().find("above 2^63-1"), std::string::npos) << host->lastError();
  e = envelopeFor(data, "r", 2);
  e.struct_size = 8;
  EXPECT_EQ(host->apply(e, result), IPCSYNC_EINVAL);
  EXPECT_NE(host->lastError().find("struct_size 8"), std::string::npos) << host->lastError();
  EXPECT_EQ(everything(), m_before);
}

TEST_F(MiningRefusalTest, ADatabaseLockedByAnotherWriterAnswersBusyAndChangesNothing) {
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(databasePath().c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  const Bytes data = m_source.capture([&] { m_source.run("INSERT INTO orders VALUES (9100, 1, 'w', 2, 3, 0, 0)"); });
  ipcsync_apply_result result{};
  EXPECT_EQ(apply(data, "r", 2, result), IPCSYNC_EBUSY);
  EXPECT_NE(host->lastError().find("try again later"), std::string::npos) << host->lastError();
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_EQ(everything(), m_before);
  applyOk(data, "r", 2);  // and once the lock is gone, the same change-set goes through
  expectMatchesSource(m_source, "after the lock was released");
}

class MiningSettingsTest : public ::testing::Test {
 protected:
  // create() with `settings`: its status, and the message in `message`.
  int create(std::map<std::string, std::string> settings, std::string& message) {
    TestHost h(IPCSYNC_MINING_PLUGIN, std::move(settings), dir.path() / "data");
    const int status = h.create();
    message = h.lastError();
    return status;
  }
  TempDir dir;
};

TEST_F(MiningSettingsTest, ABadTopCustomersSettingIsRefusedNamingTheValue) {
  std::string message;
  for (const char* bad : {"0", "-3", "ten", "10x", "", "1000001"}) {
    EXPECT_EQ(create({{"top_customers", bad}}, message), IPCSYNC_EINVAL) << bad;
    EXPECT_NE(message.find("setting 'top_customers' is '" + std::string(bad) + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("from 1 to 1000000"), std::string::npos) << message;
  }
}

TEST_F(MiningSettingsTest, ADatabaseThatCannotBeOpenedIsRefusedNamingThePath) {
  std::string message;
  EXPECT_EQ(create({{"database", ""}}, message), IPCSYNC_EINVAL);
  EXPECT_NE(message.find("setting 'database' is empty"), std::string::npos) << message;
  const std::string missing = (dir.path() / "no-such-dir" / "m.db").string();
  EXPECT_EQ(create({{"database", missing}}, message), IPCSYNC_EIO);
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_NE(message.find("check the 'database' setting"), std::string::npos) << message;
}

TEST_F(MiningSettingsTest, ADatabaseFromANewerMiningIsRefused) {
  std::string message;
  const std::string path = (dir.path() / "newer.db").string();
  ASSERT_EQ(create({{"database", path}}, message), IPCSYNC_OK) << message;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 2", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(create({{"database", path}}, message), IPCSYNC_ESCHEMA);
  EXPECT_NE(message.find("schema version 2, newer than this plugin's 1"), std::string::npos) << message;
}

TEST_F(MiningSettingsTest, ARelativeDatabasePathIsUnderTheDataDirectory) {
  std::string message;
  ASSERT_EQ(create({{"database", "sales.db"}}, message), IPCSYNC_OK) << message;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "data" / "sales.db"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "data" / "mining.db"));
}

}  // namespace
}  // namespace ipcsync::test
