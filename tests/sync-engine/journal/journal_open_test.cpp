// Opening: durability settings, schema version refusal, files that are not journals, locks.
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>

#include "journal_fixture.h"

namespace ipcsync::test {
namespace {

using OpenTest = JournalTest;

std::string contents(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(OpenTest, EachDurabilityOpensWithItsSynchronousSettingInWalMode) {
  const std::pair<Durability, const char*> modes[] = {
      {Durability::Full, "full"}, {Durability::Normal, "normal"}, {Durability::Off, "off"}};
  for (const auto& [durability, expected] : modes) {
    SCOPED_TRACE(expected);
    auto c = config();
    c.durability = durability;
    auto j = open(c);
    ASSERT_TRUE(j);
    auto s = j->settings();
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->synchronous, expected);
    EXPECT_EQ(s->journalMode, "wal");
    EXPECT_EQ(s->busyTimeout, std::chrono::milliseconds(3000));
    EXPECT_EQ(s->schemaVersion, 2u);
  }
  EXPECT_EQ(sqlOn(config().path, "PRAGMA journal_mode"), "wal") << "WAL is a property of the file";
}

TEST_F(OpenTest, CreatesAMissingDirectory) {
  auto c = config();
  c.path = m_dir.path() / "state" / "deeper" / "journal.db";
  auto j = open(c);
  ASSERT_TRUE(j);
  EXPECT_TRUE(std::filesystem::exists(c.path));
  EXPECT_EQ(j->path(), c.path);
}

TEST_F(OpenTest, RefusesANewerSchemaAndLeavesTheFileUntouched) {
  {
    auto j = open();
    ASSERT_TRUE(j);
    const auto e = makeEntry("crm", 1);
    ASSERT_TRUE(j->append(std::span(&e, 1)));
  }
  ASSERT_EQ(sqlOn(config().path, "UPDATE journal_schema SET version = 3"), "");
  auto j = Journal::open(config());
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().kind, JournalError::Kind::Corrupt);
  const auto& m = j.error().message;
  EXPECT_NE(m.find(config().path.string()), std::string::npos) << m;
  EXPECT_NE(m.find("schema version 3, newer than this build understands (up to 2)"), std::string::npos) << m;
  EXPECT_NE(m.find("left untouched"), std::string::npos) << m;
  EXPECT_EQ(sqlOn(config().path, "SELECT version FROM journal_schema"), "3");
  EXPECT_EQ(sqlOn(config().path, "SELECT count(*) FROM entries"), "1");
}

TEST_F(OpenTest, RefusesAFileThatIsNotASqliteDatabase) {
  const auto path = config().path;
  const std::string garbage(8192, 'x');
  std::ofstream(path, std::ios::binary) << garbage;
  auto j = Journal::open(config());
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().kind, JournalError::Kind::Corrupt);
  EXPECT_NE(j.error().message.find(path.string()), std::string::npos) << j.error().message;
  EXPECT_NE(j.error().message.find("move the file aside"), std::string::npos) << j.error().message;
  EXPECT_EQ(contents(path), garbage);
}

TEST_F(OpenTest, RefusesASqliteDatabaseThatIsNotAJournal) {
  const auto path = config().path;
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE contacts (id INTEGER PRIMARY KEY); INSERT INTO contacts VALUES (1)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto j = Journal::open(config());
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().kind, JournalError::Kind::Corrupt);
  EXPECT_NE(j.error().message.find(path.string() + " is a SQLite database but not a sync journal"), std::string::npos)
      << j.error().message;
  EXPECT_EQ(sqlOn(path, "SELECT count(*) FROM contacts"), "1");
  EXPECT_EQ(sqlOn(path, "SELECT count(*) FROM sqlite_schema"), "1") << "no journal table was added";
}

TEST_F(OpenTest, RefusesAnUnusableConfigurationBeforeTouchingAnything) {
  JournalConfig empty;
  auto j = Journal::open(empty);
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().kind, JournalError::Kind::InvalidArgument);
  EXPECT_NE(j.error().message.find("journal path is empty"), std::string::npos);

  for (auto spoil : {+[](JournalConfig& c) { c.maxBytes = 0; }, +[](JournalConfig& c) { c.warnAtPercent = 0; },
                     +[](JournalConfig& c) { c.warnAtPercent = 101; }, +[](JournalConfig& c) { c.pieceBytes = 0; }}) {
    auto c = config();
    spoil(c);
    auto r = Journal::open(c);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, JournalError::Kind::InvalidArgument);
    EXPECT_NE(r.error().message.find(c.path.string()), std::string::npos) << r.error().message;
    EXPECT_FALSE(std::filesystem::exists(c.path));
  }
}

TEST_F(OpenTest, AJournalLockedByAnotherProcessIsReportedAsBusyNamingTheFile) {
  auto j = open();
  ASSERT_TRUE(j);
  const auto path = config().path;
  int ready[2], release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  Child holder([&] {
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return 1;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return 2;
    char c = 1;
    if (::write(ready[1], &c, 1) != 1) return 3;
    if (::read(release[0], &c, 1) != 1) return 4;
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    return 0;
  });
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);

  const auto e = makeEntry("crm", 1);
  const auto start = std::chrono::steady_clock::now();
  auto r = j->append(std::span(&e, 1));
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, JournalError::Kind::Busy);
  EXPECT_NE(r.error().message.find("journal " + path.string() + " is locked by another process"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("is a second sync engine running"), std::string::npos);
  EXPECT_GE(waited, std::chrono::milliseconds(2900)) << "it waited for the busy timeout first";
  // Reading is not blocked by a writer (WAL).
  EXPECT_TRUE(j->read(0, 10));

  ASSERT_EQ(::write(release[1], &c, 1), 1);
  EXPECT_EQ(holder.wait(), 0);
  for (int fd : {ready[0], ready[1], release[0], release[1]}) ::close(fd);
  auto after = j->append(std::span(&e, 1));
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(*after, (std::vector<std::uint64_t>{1})) << "the refused append left nothing behind";
}

}  // namespace
}  // namespace ipcsync::test
