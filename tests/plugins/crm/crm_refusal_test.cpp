// Bad input of every kind: a clear error (what, where, what to do) and nothing lost.
#include <cstring>

#include "crm_fixture.h"

namespace ipcsync::test {
namespace {

using CrmRefusalTest = CrmTest;

TEST_F(CrmRefusalTest, AnExistingDatabaseWhoseTableDiffersFromTheSchemaIsRefused) {
  {
    SqliteDb conn(path("old.db"));
    conn.exec("CREATE TABLE accounts(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO accounts VALUES (1, 'kept');");
  }
  TestHost again(IPCSYNC_CRM_PLUGIN, {{"database", path("old.db")}}, m_dir / "old-data");
  EXPECT_EQ(again.create(), IPCSYNC_ESCHEMA);
  EXPECT_NE(again.lastError().find("table 'accounts' differs from crm's schema.sql: it has (id INTEGER pk1, name TEXT)"),
            std::string::npos) << again.lastError();
  EXPECT_NE(again.lastError().find(path("old.db")), std::string::npos);
  SqliteDb conn(path("old.db"));
  EXPECT_EQ(conn.table("accounts"), std::vector<std::string>{"i:1|t:'kept'"});
  EXPECT_TRUE(conn.rows("SELECT name FROM sqlite_schema WHERE name LIKE '_ipcsync%'").empty()) << "crm left objects behind";
}

TEST_F(CrmRefusalTest, ATableWithoutAPrimaryKeyIsRefused) {
  {
    SqliteDb conn(path("nopk.db"));
    conn.exec("CREATE TABLE orders(id INTEGER, account_id INTEGER NOT NULL, product TEXT NOT NULL, quantity INTEGER NOT NULL,"
              " unit_price_cents INTEGER NOT NULL, ordered_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)");
  }
  TestHost host(IPCSYNC_CRM_PLUGIN, {{"database", path("nopk.db")}}, m_dir / "nopk-data");
  EXPECT_EQ(host.create(), IPCSYNC_ESCHEMA);
  EXPECT_NE(host.lastError().find("table 'orders' has no PRIMARY KEY"), std::string::npos) << host.lastError();
}

TEST_F(CrmRefusalTest, BadSettingsAreRefusedNamingTheSetting) {
  for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"max_piece_bytes", "abc"}, {"max_piece_bytes", "0"}, {"batch_rows", "-5"}, {"batch_rows", "10k"}}) {
    TestHost host(IPCSYNC_CRM_PLUGIN, {{"database", path("s.db")}, {key, value}}, m_dir / "s-data");
    EXPECT_EQ(host.create(), IPCSYNC_EINVAL) << key << "=" << value;
    EXPECT_NE(host.lastError().find("setting '" + key + "' is '" + value + "': expected a positive whole number"),
              std::string::npos) << host.lastError();
  }
  TestHost unwritable(IPCSYNC_CRM_PLUGIN, {{"database", path("missing-dir/x.db")}}, m_dir / "u-data");
  EXPECT_EQ(unwritable.create(), IPCSYNC_EIO);
  EXPECT_NE(unwritable.lastError().find("cannot open the database"), std::string::npos) << unwritable.lastError();
}

TEST_F(CrmRefusalTest, TheDatabaseDefaultsToCrmDbInTheDataDirectory) {
  TestHost host(IPCSYNC_CRM_PLUGIN, {}, m_dir / "default-data");
  ASSERT_EQ(host.create(), IPCSYNC_OK) << host.lastError();
  EXPECT_TRUE(std::filesystem::exists(m_dir / "default-data" / "crm.db"));
  ASSERT_EQ(host.descriptor().table_count, 4u);
  EXPECT_STREQ(host.descriptor().tables[0].name, "accounts");
  EXPECT_NE(std::string(host.descriptor().tables[3].schema_sql).find("CREATE TABLE orders"), std::string::npos);
}

TEST_F(CrmRefusalTest, BadEnvelopesAreRefusedAndNothingIsApplied) {
  auto dst = crm("dst");
  SqliteDb conn(path("dst.db"));
  auto good = crmChangeset("", "INSERT INTO accounts VALUES (1, 'Acme', 'north', NULL, 1);");
  ipcsync_apply_result result{};
  struct Case {
    const char* name;
    ipcsync_envelope envelope;
    int status;
    const char* message;
  };
  auto e = [&](auto&&... args) { return envelopeFor(good, args...); };
  std::vector<unsigned char> garbage{'T', 5, 1, 0};
  std::vector<Case> cases = {
      {"no route", e(1, nullptr), IPCSYNC_EINVAL, "the envelope has no route"},
      {"piece beyond count", e(1, "r", 2u, 2u), IPCSYNC_EINVAL, "piece_index must be below piece_count"},
      {"later piece first", e(1, "r", 1u, 2u), IPCSYNC_EINVAL, "pieces 0..0 of this change-set were not delivered"},
      {"lww without column", e(1, "r", 0u, 1u, IPCSYNC_CONFLICT_LAST_WRITER_WINS, nullptr), IPCSYNC_EINVAL,
       "last_writer_wins needs a timestamp column"},
      {"lww unknown column", e(1, "r", 0u, 1u, IPCSYNC_CONFLICT_LAST_WRITER_WINS, "modified"), IPCSYNC_EINVAL,
       "compares column 'modified', which table 'accounts' does not have"},
      {"unknown policy", e(1, "r"), IPCSYNC_EINVAL, "unknown conflict policy 9"},
      {"garbage", envelopeFor(garbage, 1, "r"), IPCSYNC_EINVAL, "malformed changeset at byte"},
  };
  const int badPolicy = 9;  // not an enumerator: set the bytes as a C host could
  std::memcpy(&cases[5].envelope.conflict_policy, &badPolicy, sizeof badPolicy);
  for (auto& c : cases) {
    EXPECT_EQ(dst->apply(c.envelope, result), c.status) << c.name;
    EXPECT_NE(dst->lastError().find(c.message), std::string::npos) << c.name << ": " << dst->lastError();
  }
  EXPECT_EQ(conn.scalar("SELECT count(*) FROM accounts"), 0);
  uint64_t last = 9;
  ASSERT_EQ(dst->lastApplied("r", last), IPCSYNC_OK);
  EXPECT_EQ(last, 0u);
}

TEST_F(CrmRefusalTest, AcknowledgingTheUnemittedAndStartingBelowTheAcknowledgedAreRefused) {
  auto src = crm("src");
  SqliteDb conn(path("src.db"));
  conn.exec("INSERT INTO accounts VALUES (1, 'a', 'north', NULL, 0)");
  pollAll(*src);
  conn.exec("INSERT INTO accounts VALUES (2, 'b', 'north', NULL, 0)");
  pollAll(*src);
  EXPECT_EQ(src->acknowledge(3), IPCSYNC_EINVAL);
  EXPECT_NE(src->lastError().find("change-set 3 was never emitted"), std::string::npos) << src->lastError();
  ASSERT_EQ(src->acknowledge(2), IPCSYNC_OK);
  src->destroy();
  TestHost again(IPCSYNC_CRM_PLUGIN, {{"database", path("src.db")}}, m_dir / "src-data");
  ASSERT_EQ(again.create(), IPCSYNC_OK) << again.lastError();
  EXPECT_EQ(again.start(1), IPCSYNC_EINVAL);
  EXPECT_NE(again.lastError().find("the change-sets 2..2 are lost to the journal"), std::string::npos) << again.lastError();
  EXPECT_EQ(again.start(2), IPCSYNC_OK) << again.lastError();
  uint64_t asOf = 0;
  EXPECT_EQ(again.snapshot("invoices", "r", 1000, asOf), IPCSYNC_EUNSUPPORTED);
  EXPECT_NE(again.lastError().find("crm has no table 'invoices'"), std::string::npos) << again.lastError();
}

}  // namespace
}  // namespace ipcsync::test
