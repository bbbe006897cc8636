// Apply: exactly once per (route, sequence), atomic across pieces, no echo, the four conflict
// policies, and schema checks SQLite itself would skip silently.
#include <ipcsync/plugin_sdk/changeset.h>

#include "changeset_values.h"
#include "crm_fixture.h"

namespace ipcsync::test {
namespace {

using CrmApplyTest = CrmTest;

const char* kBase = "INSERT INTO accounts VALUES (1, 'Base', 'north', NULL, 50);";

TEST_F(CrmApplyTest, DoesNotEchoAppliedChangesButStillCapturesLocalOnes) {
  auto dst = crm("dst");
  auto changes = crmChangeset("", "INSERT INTO accounts VALUES (1, 'Acme', 'north', NULL, 1);"
                                  "INSERT INTO orders VALUES (1, 1, 'router', 2, 500, 0, 0);");
  ipcsync_apply_result result{};
  ASSERT_EQ(dst->apply(envelopeFor(changes, 1, "r"), result), IPCSYNC_OK) << dst->lastError();
  EXPECT_EQ(result.status, IPCSYNC_APPLIED);
  EXPECT_EQ(result.changes_applied, 2u);
  pollAll(*dst);
  EXPECT_TRUE(dst->emitted.empty()) << "applied changes were emitted again";
  SqliteDb conn(path("dst.db"));
  EXPECT_EQ(conn.scalar("SELECT count(*) FROM _ipcsync_changes"), 0);
  EXPECT_EQ(conn.scalar("SELECT count(*) FROM _ipcsync_applying"), 0);

  shell(path("dst.db"), "UPDATE orders SET quantity = 3 WHERE id = 1;");
  pollAll(*dst);
  ASSERT_EQ(dst->emitted.size(), 1u) << "a local write after an apply must still be captured";
  EXPECT_EQ(dst->emitted[0].sequence, 1u);
}

TEST_F(CrmApplyTest, ASequenceAtOrBelowTheLastAppliedIsADuplicateAndChangesNothing) {
  auto dst = crm("dst");
  ipcsync_apply_result result{};
  auto first = crmChangeset("", "INSERT INTO accounts VALUES (1, 'First', 'north', NULL, 1);");
  auto other = crmChangeset("", "INSERT INTO accounts VALUES (2, 'Other', 'north', NULL, 1);");
  ASSERT_EQ(dst->apply(envelopeFor(first, 5, "r"), result), IPCSYNC_OK) << dst->lastError();
  SqliteDb conn(path("dst.db"));
  const auto before = conn.table("accounts");
  for (uint64_t sequence : {5u, 3u}) {
    ASSERT_EQ(dst->apply(envelopeFor(other, sequence, "r"), result), IPCSYNC_OK) << dst->lastError();
    EXPECT_EQ(result.status, IPCSYNC_DUPLICATE);
    EXPECT_EQ(result.changes_applied, 0u);
  }
  EXPECT_EQ(conn.table("accounts"), before);
  uint64_t last = 0;
  ASSERT_EQ(dst->lastApplied("r", last), IPCSYNC_OK);
  EXPECT_EQ(last, 5u);
  ASSERT_EQ(dst->apply(envelopeFor(other, 5, "r2"), result), IPCSYNC_OK) << dst->lastError();
  EXPECT_EQ(result.status, IPCSYNC_APPLIED) << "routes count separately";
  ASSERT_EQ(dst->lastApplied("never", last), IPCSYNC_OK);
  EXPECT_EQ(last, 0u);
}

TEST_F(CrmApplyTest, AFailedPieceRollsBackEveryPieceBeforeIt) {
  auto dst = crm("dst");
  std::string inserts;
  for (int i = 1; i <= 30; ++i) inserts += "INSERT INTO accounts VALUES (" + std::to_string(i) + ", 'name', 'east', NULL, 1);";
  auto whole = crmChangeset("", inserts);
  auto pieces = plugin_sdk::splitChangeset(whole, 200);
  ASSERT_TRUE(pieces);
  ASSERT_GE(pieces->size(), 3u);
  const auto count = static_cast<uint32_t>(pieces->size());
  SqliteDb conn(path("dst.db"));
  ipcsync_apply_result result{};
  for (uint32_t i = 0; i + 1 < count; ++i)
    ASSERT_EQ(dst->apply(envelopeFor((*pieces)[i], 1, "r", i, count), result), IPCSYNC_OK) << dst->lastError();
  auto broken = pieces->back();
  broken.resize(broken.size() - 3);
  EXPECT_EQ(dst->apply(envelopeFor(broken, 1, "r", count - 1, count), result), IPCSYNC_EINVAL);
  EXPECT_NE(dst->lastError().find("malformed changeset"), std::string::npos) << dst->lastError();
  EXPECT_EQ(conn.scalar("SELECT count(*) FROM accounts"), 0) << "earlier pieces stayed applied";
  uint64_t last = 9;
  ASSERT_EQ(dst->lastApplied("r", last), IPCSYNC_OK);
  EXPECT_EQ(last, 0u);

  // A piece out of order also rolls back, and says to start again.
  ASSERT_EQ(dst->apply(envelopeFor((*pieces)[0], 1, "r", 0, count), result), IPCSYNC_OK);
  EXPECT_EQ(dst->apply(envelopeFor((*pieces)[2], 1, "r", 2, count), result), IPCSYNC_EINVAL);
  EXPECT_NE(dst->lastError().find("expected piece 1"), std::string::npos) << dst->lastError();
  EXPECT_EQ(conn.scalar("SELECT count(*) FROM accounts"), 0);

  for (uint32_t i = 0; i < count; ++i)
    ASSERT_EQ(dst->apply(envelopeFor((*pieces)[i], 1, "r", i, count), result), IPCSYNC_OK) << dst->lastError();
  EXPECT_EQ(result.status, IPCSYNC_APPLIED);
  EXPECT_EQ(conn.scalar("SELECT count(*) FROM accounts"), 30);
  ASSERT_EQ(dst->lastApplied("r", last), IPCSYNC_OK);
  EXPECT_EQ(last, 1u);
}

class CrmConflictTest : public CrmTest {
 protected:
  // The target holds account 1 as 'Target' updated at 200; the source changed 'Base' to 'Source'.
  std::string applyUpdate(ipcsync_conflict_policy policy, int64_t sourceTime, ipcsync_apply_result& result) {
    dst = crm("dst");
    shell(path("dst.db"), "INSERT INTO accounts VALUES (1, 'Target', 'north', NULL, 200);");
    auto change = crmChangeset(kBase, "UPDATE accounts SET name = 'Source', updated_at = " + std::to_string(sourceTime) +
                                          " WHERE id = 1;");
    EXPECT_EQ(dst->apply(envelopeFor(change, 1, "r", 0, 1, policy, "updated_at"), result), IPCSYNC_OK) << dst->lastError();
    SqliteDb conn(path("dst.db"));
    return conn.rows("SELECT name FROM accounts WHERE id = 1").at(0);
  }
  std::unique_ptr<TestHost> dst;
};

TEST_F(CrmConflictTest, SourceWinsOverwritesTheTargetRow) {
  ipcsync_apply_result result{};
  EXPECT_EQ(applyUpdate(IPCSYNC_CONFLICT_SOURCE_WINS, 100, result), "t:'Source'");
  EXPECT_EQ(result.status, IPCSYNC_CONFLICTS);
  EXPECT_EQ(result.conflicts, 1u);
  EXPECT_EQ(result.changes_applied, 1u);
}

TEST_F(CrmConflictTest, TargetWinsKeepsTheTargetRow) {
  ipcsync_apply_result result{};
  EXPECT_EQ(applyUpdate(IPCSYNC_CONFLICT_TARGET_WINS, 900, result), "t:'Target'");
  EXPECT_EQ(result.status, IPCSYNC_CONFLICTS);
  EXPECT_EQ(result.changes_applied, 0u);
}

TEST_F(CrmConflictTest, LastWriterWinsKeepsTheLaterTimestampEitherWay) {
  ipcsync_apply_result result{};
  EXPECT_EQ(applyUpdate(IPCSYNC_CONFLICT_LAST_WRITER_WINS, 300, result), "t:'Source'");
  EXPECT_EQ(result.status, IPCSYNC_CONFLICTS);
  dst.reset();
  std::filesystem::remove(path("dst.db"));
  std::filesystem::remove(path("dst.db-wal"));
  std::filesystem::remove(path("dst.db-shm"));
  EXPECT_EQ(applyUpdate(IPCSYNC_CONFLICT_LAST_WRITER_WINS, 100, result), "t:'Target'");
  EXPECT_EQ(result.status, IPCSYNC_CONFLICTS);
}

TEST_F(CrmConflictTest, ParkReportsKeySourceTargetAndAReplayableChange) {
  ipcsync_apply_result result{};
  EXPECT_EQ(applyUpdate(IPCSYNC_CONFLICT_PARK, 300, result), "t:'Target'");
  EXPECT_EQ(result.status, IPCSYNC_CONFLICTS);
  ASSERT_EQ(dst->conflicts.size(), 1u);
  const auto& c = dst->conflicts[0];
  EXPECT_EQ(c.table, "accounts");
  EXPECT_EQ(c.kind, "data");
  EXPECT_EQ(c.route, "r");
  EXPECT_EQ(c.sequence, 1u);
  EXPECT_EQ(c.keyJson, R"({"id":1})");
  EXPECT_EQ(c.sourceJson, R"({"id":1,"name":"Source","updated_at":300})");
  EXPECT_EQ(c.targetJson, R"({"id":1,"industry":null,"name":"Target","region":"north","updated_at":200})");
  // "Take source": replay the parked change over the target row.
  SqliteDb conn(path("dst.db"));
  auto replace = [](void*, int, sqlite3_changeset_iter*) { return SQLITE_CHANGESET_REPLACE; };
  ASSERT_EQ(sqlite3changeset_apply(conn.get(), static_cast<int>(c.change.size()), const_cast<unsigned char*>(c.change.data()),
                                   nullptr, replace, nullptr), SQLITE_OK);
  EXPECT_EQ(conn.rows("SELECT name, updated_at FROM accounts").at(0), "t:'Source'|i:300");

  // An insert over an existing key and an update of a missing row are parked too.
  auto insertOverExisting = crmChangeset("", "INSERT INTO accounts VALUES (1, 'Clash', 'west', NULL, 1);");
  ASSERT_EQ(dst->apply(envelopeFor(insertOverExisting, 2, "r", 0, 1, IPCSYNC_CONFLICT_PARK), result), IPCSYNC_OK) << dst->lastError();
  ASSERT_EQ(dst->conflicts.size(), 2u);
  EXPECT_EQ(dst->conflicts[1].kind, "conflict");
  EXPECT_EQ(dst->conflicts[1].sourceJson, R"({"id":1,"industry":null,"name":"Clash","region":"west","updated_at":1})");
  EXPECT_EQ(dst->conflicts[1].keyJson, R"({"id":1})");
  auto missing = crmChangeset("INSERT INTO accounts VALUES (5, 'Gone', 'north', NULL, 1);",
                              "UPDATE accounts SET name = 'Moved' WHERE id = 5;");
  ASSERT_EQ(dst->apply(envelopeFor(missing, 3, "r", 0, 1, IPCSYNC_CONFLICT_PARK), result), IPCSYNC_OK) << dst->lastError();
  ASSERT_EQ(dst->conflicts.size(), 3u);
  EXPECT_EQ(dst->conflicts[2].kind, "notfound");
  EXPECT_EQ(dst->conflicts[2].targetJson, "null");
  EXPECT_EQ(conn.scalar("SELECT count(*) FROM accounts WHERE id = 5"), 0);
}

TEST_F(CrmApplyTest, ASchemaMismatchIsRefusedWithESchemaAndNothingIsApplied) {
  auto dst = crm("dst");
  SqliteDb conn(path("dst.db"));
  auto valid = crmChangeset("", "INSERT INTO contacts VALUES (1, 1, 'Ada', NULL, NULL, 1);");
  auto withBadTable = [&](const std::vector<unsigned char>& pk) {
    plugin_sdk::ChangesetWriter w;
    const std::vector<OwnedValue> row{OwnedValue::of(1), OwnedValue::text("x"), OwnedValue::text("north"), OwnedValue::null(),
                                      OwnedValue::of(1)};
    const std::vector<OwnedValue> used(row.begin(), row.begin() + static_cast<long>(pk.size()));
    auto values = views(used);
    EXPECT_TRUE(w.add("accounts", static_cast<int>(pk.size()), pk.data(), IPCSYNC_OP_INSERT, nullptr, values.data()));
    std::vector<unsigned char> bytes = valid;
    bytes.insert(bytes.end(), w.bytes().begin(), w.bytes().end());
    return bytes;
  };
  ipcsync_apply_result result{};
  EXPECT_EQ(dst->apply(envelopeFor(withBadTable({1, 0, 0, 0}), 1, "r"), result), IPCSYNC_ESCHEMA);
  EXPECT_NE(dst->lastError().find("table 'accounts' has 4 columns in the change-set but 5"), std::string::npos) << dst->lastError();
  EXPECT_EQ(dst->apply(envelopeFor(withBadTable({0, 1, 0, 0, 0}), 1, "r"), result), IPCSYNC_ESCHEMA);
  EXPECT_NE(dst->lastError().find("primary key (name) in the change-set but (id)"), std::string::npos) << dst->lastError();
  EXPECT_EQ(conn.scalar("SELECT count(*) FROM contacts"), 0) << "the valid part of the change-set was applied";

  plugin_sdk::ChangesetWriter unknown;
  const unsigned char pk[1] = {1};
  const ipcsync_value one{IPCSYNC_VALUE_INTEGER, 1, 0, nullptr, 0};
  ASSERT_TRUE(unknown.add("invoices", 1, pk, IPCSYNC_OP_INSERT, nullptr, &one));
  EXPECT_EQ(dst->apply(envelopeFor(unknown.bytes(), 1, "r"), result), IPCSYNC_EUNSUPPORTED);
  EXPECT_NE(dst->lastError().find("table 'invoices' is not one crm accepts"), std::string::npos) << dst->lastError();
  uint64_t last = 9;
  ASSERT_EQ(dst->lastApplied("r", last), IPCSYNC_OK);
  EXPECT_EQ(last, 0u);
  ASSERT_EQ(dst->apply(envelopeFor(valid, 1, "r"), result), IPCSYNC_OK) << "a good change-set still applies afterwards";
  EXPECT_EQ(conn.scalar("SELECT count(*) FROM contacts"), 1);
}

}  // namespace
}  // namespace ipcsync::test
