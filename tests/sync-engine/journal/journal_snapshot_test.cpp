// Snapshot floors (schema version 2): recording, reading, replacing and removing a route's first
// snapshot; their release by prune() once they can no longer matter; and the upgrade of a journal
// written by the schema-1 library (data/journal_v1.sql, a dump of a real file).
#include <sqlite3.h>

#include <fstream>
#include <iterator>

#include "journal_fixture.h"

namespace ipcsync::test {
namespace {

using SnapshotFloorsTest = JournalTest;

void appendRange(Journal& j, const std::string& origin, std::uint64_t from, std::uint64_t to) {
  std::vector<JournalEntry> batch;
  for (std::uint64_t i = from; i <= to; ++i) batch.push_back(makeEntry(origin, i, {"accounts"}));
  auto r = j.append(batch);
  ASSERT_TRUE(r) << r.error().message;
}

SnapshotFloors floorsOf(std::uint64_t head, std::map<std::string, std::uint64_t> tables,
                        const std::string& route = "snap", const std::string& subscriber = "crm2") {
  return SnapshotFloors{.route = route, .subscriber = subscriber, .source = "crm", .head = head,
                        .tableAsOf = std::move(tables), .takenAtUs = 0};
}

std::optional<SnapshotFloors> read(Journal& j, const std::string& route = "snap", const std::string& subscriber = "crm2") {
  auto r = j.snapshotFloors(route, subscriber);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : std::nullopt;
}

void prune(Journal& j) {
  auto r = j.prune();
  ASSERT_TRUE(r) << r.error().message;
}

TEST_F(SnapshotFloorsTest, ARecordReadsBackAsWrittenAndRegistersTheCursor) {
  auto j = open();
  ASSERT_TRUE(j);
  appendRange(*j, "crm", 1, 4);
  EXPECT_FALSE(read(*j).has_value()) << "no record before one is written";
  auto written = floorsOf(3, {{"accounts", 7}, {"orders", 9}});
  written.takenAtUs = 1'700'000'000'000'000;
  ASSERT_TRUE(j->recordSnapshot(written));
  const auto got = read(*j);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->route, "snap");
  EXPECT_EQ(got->subscriber, "crm2");
  EXPECT_EQ(got->source, "crm");
  EXPECT_EQ(got->head, 3u);
  EXPECT_EQ(got->tableAsOf, (std::map<std::string, std::uint64_t>{{"accounts", 7}, {"orders", 9}}));
  EXPECT_EQ(got->takenAtUs, written.takenAtUs);
  EXPECT_EQ(got->lowestAsOf(), 7u);
  EXPECT_EQ(got->highestAsOf(), 9u);
  EXPECT_EQ(sqlOn(config().path, "SELECT sequence FROM cursors WHERE route = 'snap' AND subscriber = 'crm2'"), "0")
      << "the pair is registered (at 0), so the record is released with its cursor";
  EXPECT_FALSE(read(*j, "snap", "mining").has_value()) << "records are per (route, subscriber)";

  // Reopened (another process, or after a restart): the same record.
  j.reset();
  j = open();
  ASSERT_TRUE(j);
  const auto again = read(*j);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->head, 3u);
  EXPECT_EQ(again->tableAsOf, got->tableAsOf);
}

TEST_F(SnapshotFloorsTest, ANewRecordReplacesTheOldOneWhole) {
  auto j = open();
  ASSERT_TRUE(j);
  appendRange(*j, "crm", 1, 6);
  ASSERT_TRUE(j->recordSnapshot(floorsOf(2, {{"accounts", 7}, {"orders", 9}})));
  ASSERT_TRUE(j->recordSnapshot(floorsOf(6, {{"accounts", 12}})));
  const auto got = read(*j);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->head, 6u);
  EXPECT_EQ(got->tableAsOf, (std::map<std::string, std::uint64_t>{{"accounts", 12}})) << "orders' floor went with it";
  EXPECT_EQ(sqlOn(config().path, "SELECT count(*) FROM snapshot_tables"), "1");
}

TEST_F(SnapshotFloorsTest, ABadRecordIsRefusedAndNothingChanges) {
  auto j = open();
  ASSERT_TRUE(j);
  appendRange(*j, "crm", 1, 3);
  ASSERT_TRUE(j->recordSnapshot(floorsOf(1, {{"accounts", 2}})));
  auto noSource = floorsOf(2, {{"accounts", 5}});
  noSource.source.clear();
  auto noTable = floorsOf(2, {{"", 5}});
  auto noRoute = floorsOf(2, {{"accounts", 5}}, "", "crm2");
  auto beyond = floorsOf(4, {{"accounts", 5}});
  for (const auto& [bad, says] : {std::pair{noSource, "source instance's name is empty"},
                                  std::pair{noTable, "a table name is empty"},
                                  std::pair{noRoute, "needs a route and a subscriber"},
                                  std::pair{beyond, "last sequence journaled is 3"}}) {
    SCOPED_TRACE(says);
    auto r = j->recordSnapshot(bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, JournalError::Kind::InvalidArgument);
    EXPECT_NE(r.error().message.find(says), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(j->path().string()), std::string::npos) << r.error().message;
  }
  const auto got = read(*j);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->head, 1u);
  EXPECT_EQ(got->tableAsOf, (std::map<std::string, std::uint64_t>{{"accounts", 2}}));
}

TEST_F(SnapshotFloorsTest, DroppingTheFloorsOrTheCursorRemovesOnlyThatPairsRecord) {
  auto j = open();
  ASSERT_TRUE(j);
  appendRange(*j, "crm", 1, 3);
  ASSERT_TRUE(j->recordSnapshot(floorsOf(1, {{"accounts", 2}}, "snap", "crm2")));
  ASSERT_TRUE(j->recordSnapshot(floorsOf(2, {{"accounts", 3}}, "snap", "mining")));
  ASSERT_TRUE(j->recordSnapshot(floorsOf(3, {{"orders", 3}}, "other", "crm2")));

  ASSERT_TRUE(j->dropSnapshotFloors("snap", "crm2"));
  EXPECT_FALSE(read(*j, "snap", "crm2").has_value());
  EXPECT_EQ(j->cursor("snap", "crm2").value(), 0u) << "the cursor stays: only the snapshot is to take again";
  ASSERT_TRUE(j->dropSnapshotFloors("snap", "crm2")) << "dropping twice is fine";
  ASSERT_TRUE(j->dropSnapshotFloors("nowhere", "nobody")) << "an unknown pair is fine";

  // A route leaving the topology: its cursor and its floors go together.
  ASSERT_TRUE(j->dropCursor("snap", "mining"));
  EXPECT_FALSE(read(*j, "snap", "mining").has_value());
  EXPECT_EQ(sqlOn(config().path, "SELECT count(*) FROM cursors WHERE route = 'snap' AND subscriber = 'mining'"), "0");

  const auto other = read(*j, "other", "crm2");
  ASSERT_TRUE(other.has_value()) << "another pair's record is untouched";
  EXPECT_EQ(other->tableAsOf, (std::map<std::string, std::uint64_t>{{"orders", 3}}));
  EXPECT_EQ(sqlOn(config().path, "SELECT count(*) FROM snapshot_tables"), "1");
}

// Released once the cursor passed every entry the snapshot holds and none can still arrive:
// kept while the cursor is short of them, and while the source has not journaled through the
// largest as_of yet (entries at or below it may still be on their way).
TEST_F(SnapshotFloorsTest, PruneReleasesARecordOnlyOnceNoEntryItHoldsCanStillBeDelivered) {
  auto c = config();
  c.retention = std::chrono::seconds(3600);  // entries stay: the record is judged on the cursor alone
  auto j = open(c);
  ASSERT_TRUE(j);
  appendRange(*j, "crm", 1, 2);  // sequences 1, 2: before the snapshot
  ASSERT_TRUE(j->cursor("snap", "crm2"));
  ASSERT_TRUE(j->recordSnapshot(floorsOf(2, {{"accounts", 4}, {"orders", 6}})));
  prune(*j);
  EXPECT_TRUE(read(*j).has_value()) << "cursor 0: the snapshot is not even applied";

  appendRange(*j, "crm", 3, 5);   // sequences 3..5, in the snapshot (origin sequence <= 6)
  appendRange(*j, "other", 1, 1);  // sequence 6, another origin
  ASSERT_TRUE(j->advance("snap", "crm2", 2));
  prune(*j);
  EXPECT_TRUE(read(*j).has_value()) << "the cursor is short of entries the snapshot holds";
  ASSERT_TRUE(j->advance("snap", "crm2", 6));
  prune(*j);
  EXPECT_TRUE(read(*j).has_value()) << "'crm' journaled through 5 only: its 6, in the snapshot, may still arrive";

  appendRange(*j, "crm", 6, 7);  // sequences 7 (origin 6, in the snapshot) and 8 (origin 7, not)
  prune(*j);
  EXPECT_TRUE(read(*j).has_value()) << "the cursor (6) is short of 'crm' 6 (sequence 7)";
  ASSERT_TRUE(j->advance("snap", "crm2", 7));
  prune(*j);
  EXPECT_FALSE(read(*j).has_value()) << "past everything the snapshot holds: released";
  EXPECT_EQ(sqlOn(config().path, "SELECT count(*) FROM snapshot_tables"), "0");
  EXPECT_EQ(readAll(*j).size(), 8u) << "entries follow their own retention";
}

TEST_F(SnapshotFloorsTest, PruneKeepsARecordWhoseSnapshotIsNotAppliedEvenWithNothingToSkip) {
  auto j = open();
  ASSERT_TRUE(j);
  // A snapshot of an empty journal and a source that never wrote: head 0, as_of 0. Until the
  // cursor moves, the record is what says whether the snapshot was taken.
  ASSERT_TRUE(j->recordSnapshot(floorsOf(0, {{"accounts", 0}})));
  prune(*j);
  EXPECT_TRUE(read(*j).has_value());
  appendRange(*j, "crm", 1, 1);
  ASSERT_TRUE(j->advance("snap", "crm2", 1));
  prune(*j);
  EXPECT_FALSE(read(*j).has_value());
}

TEST_F(SnapshotFloorsTest, PruneReleasesTheRecordWhenTheEntriesItHeldAreAlreadyPruned) {
  auto c = config();
  c.retention = std::chrono::seconds(0);
  auto j = open(c);
  ASSERT_TRUE(j);
  appendRange(*j, "crm", 1, 3);
  ASSERT_TRUE(j->recordSnapshot(floorsOf(1, {{"accounts", 4}})));
  ASSERT_TRUE(j->advance("snap", "crm2", 3));
  prune(*j);
  EXPECT_TRUE(readAll(*j).empty()) << "every cursor passed them";
  EXPECT_TRUE(read(*j).has_value()) << "'crm' journaled through 3 only: its 4 may still arrive";
  // Its next change-set comes with origin sequence 5 (4 was never emitted): nothing the snapshot
  // holds is left, and none is journaled any more.
  const auto e = makeEntry("crm", 5);
  ASSERT_TRUE(j->append(std::span(&e, 1)));
  prune(*j);
  EXPECT_FALSE(read(*j).has_value());
  EXPECT_EQ(readAll(*j).size(), 1u) << "the cursor has not passed it";
}

std::string fileText(const std::filesystem::path& file) {
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A journal file as the schema-1 library wrote it (data/journal_v1.sql).
void writeV1Journal(const std::filesystem::path& file, const std::string& extraSql = "") {
  const std::string dump = fileText(IPCSYNC_JOURNAL_V1_SQL);
  ASSERT_NE(dump.find("INSERT INTO journal_schema VALUES(1,1,"), std::string::npos) << IPCSYNC_JOURNAL_V1_SQL;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, (dump + extraSql + "PRAGMA journal_mode = WAL;").c_str(), nullptr, nullptr, &err);
  const std::string message = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

TEST_F(SnapshotFloorsTest, AVersionOneJournalIsUpgradedKeepingEverythingItHeld) {
  writeV1Journal(config().path);
  ASSERT_EQ(sqlOn(config().path, "SELECT version FROM journal_schema"), "1");
  auto j = open();
  ASSERT_TRUE(j);
  EXPECT_EQ(j->settings().value().schemaVersion, 2u);
  EXPECT_EQ(sqlOn(config().path, "SELECT version FROM journal_schema"), "2");

  const auto entries = readAll(*j);
  ASSERT_EQ(entries.size(), 3u);
  for (std::uint64_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(entries[i - 1].sequence, i);
    EXPECT_EQ(entries[i - 1].origin, "crm");
    EXPECT_EQ(entries[i - 1].pieces, (std::vector<std::vector<unsigned char>>{{static_cast<unsigned char>(i), 2, 3}}));
  }
  EXPECT_EQ(j->cursor("snap", "crm2").value(), 2u);
  EXPECT_EQ(j->journaledThrough("crm").value(), 3u);
  const auto letters = j->deadLetters().value();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].sequence, 3u);
  EXPECT_EQ(letters[0].error, "boom");
  ASSERT_EQ(j->conflicts().value().size(), 1u);
  EXPECT_FALSE(read(*j).has_value()) << "an old journal has no snapshot records";

  // The new tables work, and appends carry on after the old head.
  ASSERT_TRUE(j->recordSnapshot(floorsOf(3, {{"accounts", 3}})));
  const auto e = makeEntry("crm", 4);
  EXPECT_EQ(j->append(std::span(&e, 1)).value(), std::vector<std::uint64_t>{4});
  j.reset();
  j = open();  // a second open finds version 2 and changes nothing
  ASSERT_TRUE(j);
  EXPECT_EQ(read(*j).value().head, 3u);
  EXPECT_EQ(sqlOn(config().path, "PRAGMA integrity_check"), "ok");
}

TEST_F(SnapshotFloorsTest, AFailedUpgradeLeavesTheVersionOneJournalAsItWas) {
  // A table in the way of the upgrade: the upgrade fails part-way and must leave nothing behind.
  writeV1Journal(config().path, "CREATE TABLE snapshot_tables (x);");
  auto j = Journal::open(config());
  ASSERT_FALSE(j);
  EXPECT_NE(j.error().message.find(config().path.string()), std::string::npos) << j.error().message;
  EXPECT_NE(j.error().message.find("upgrade its schema from version 1 to 2"), std::string::npos) << j.error().message;
  EXPECT_EQ(sqlOn(config().path, "SELECT version FROM journal_schema"), "1");
  EXPECT_EQ(sqlOn(config().path, "SELECT count(*) FROM sqlite_schema WHERE name = 'snapshots'"), "0")
      << "the table created before the failure was rolled back";
  EXPECT_EQ(sqlOn(config().path, "SELECT count(*) FROM entries"), "3");
}

}  // namespace
}  // namespace ipcsync::test
