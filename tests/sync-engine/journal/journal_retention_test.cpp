// Cursors, retention (prune) and the bound (Full, nearlyFull).
#include <thread>

#include "journal_fixture.h"

namespace ipcsync::test {
namespace {

using RetentionTest = JournalTest;

void appendRange(Journal& j, const std::string& origin, std::uint64_t from, std::uint64_t to,
                 std::size_t bytes = 64) {
  std::vector<JournalEntry> batch;
  for (std::uint64_t i = from; i <= to; ++i) batch.push_back(makeEntry(origin, i, {"contacts"}, bytes));
  auto r = j.append(batch);
  ASSERT_TRUE(r) << r.error().message;
}

std::uint64_t firstHeld(Journal& j) {
  auto r = j.read(0, 1);
  return r && !r->empty() ? r->front().sequence : 0;
}

TEST_F(RetentionTest, CursorsStartAtZeroAndNeverMoveBack) {
  auto j = open();
  ASSERT_TRUE(j);
  appendRange(*j, "crm", 1, 5);
  EXPECT_EQ(j->cursor("crm-to-mining", "mining").value(), 0u);
  ASSERT_TRUE(j->advance("crm-to-mining", "mining", 4));
  ASSERT_TRUE(j->advance("crm-to-mining", "mining", 2));
  EXPECT_EQ(j->cursor("crm-to-mining", "mining").value(), 4u);

  auto beyond = j->advance("crm-to-mining", "mining", 6);
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.error().kind, JournalError::Kind::InvalidArgument);
  EXPECT_NE(beyond.error().message.find(j->path().string()), std::string::npos);
  EXPECT_NE(beyond.error().message.find("last sequence journaled is 5"), std::string::npos) << beyond.error().message;
  EXPECT_EQ(j->cursor("crm-to-mining", "mining").value(), 4u);

  auto unnamed = j->advance("", "mining", 1);
  ASSERT_FALSE(unnamed);
  EXPECT_EQ(unnamed.error().kind, JournalError::Kind::InvalidArgument);

  // Pairs are independent, and survive a reopen.
  ASSERT_TRUE(j->advance("crm-to-mining", "archive", 5));
  j.reset();
  j = open();
  ASSERT_TRUE(j);
  EXPECT_EQ(j->cursor("crm-to-mining", "mining").value(), 4u);
  EXPECT_EQ(j->cursor("crm-to-mining", "archive").value(), 5u);
}

TEST_F(RetentionTest, PruneKeepsEverythingWhileNoPairIsRegistered) {
  auto j = open();
  ASSERT_TRUE(j);
  appendRange(*j, "crm", 1, 3);
  EXPECT_EQ(j->prune().value(), 0u);
  EXPECT_EQ(readAll(*j).size(), 3u);
}

TEST_F(RetentionTest, PruneKeepsWhatAnyRegisteredCursorHasNotPassed) {
  auto j = open();
  ASSERT_TRUE(j);
  appendRange(*j, "crm", 1, 10, 100);
  ASSERT_TRUE(j->advance("r1", "a", 5));
  ASSERT_TRUE(j->advance("r1", "b", 2));
  EXPECT_EQ(j->cursor("r2", "c").value(), 0u);  // registered, confirmed nothing yet

  EXPECT_EQ(j->prune().value(), 0u) << "r2/c has confirmed nothing";
  ASSERT_TRUE(j->advance("r2", "c", 10));
  EXPECT_EQ(j->prune().value(), 2u) << "r1/b is at 2";
  EXPECT_EQ(firstHeld(*j), 3u);
  ASSERT_TRUE(j->advance("r1", "b", 8));
  EXPECT_EQ(j->prune().value(), 3u) << "r1/a is at 5 now the lowest";
  const auto listed = [&] {
    std::string out;
    const auto all = j->cursors();
    EXPECT_TRUE(all) << all.error().message;
    for (const auto& c : all.value_or(std::vector<Journal::CursorPosition>{})) out += c.route + "/" + c.subscriber + "@" + std::to_string(c.sequence) + " ";
    return out;
  };
  EXPECT_EQ(listed(), "r1/a@5 r1/b@8 r2/c@10 ");
  ASSERT_TRUE(j->dropCursor("r1", "a"));
  ASSERT_TRUE(j->dropCursor("r1", "a")) << "forgetting twice is fine";
  EXPECT_EQ(listed(), "r1/b@8 r2/c@10 ");
  EXPECT_EQ(j->prune().value(), 3u) << "r1/b at 8";
  EXPECT_EQ(firstHeld(*j), 9u);

  auto usage = j->usage();
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->entries, 2u);
  EXPECT_EQ(usage->bytes, 200u);
  EXPECT_EQ(usage->head, 10u);
  EXPECT_GT(j->diskFreeBytes().value_or(0), 0u) << "statvfs of the journal's directory";
}

// The disk fills first when it has less free space than the journal may still grow by.
TEST(DiskFillsFirstTest, ComparesFreeSpaceWithWhatTheJournalMayStillGrowBy) {
  const JournalUsage u{.bytes = 300, .maxBytes = 1000};
  EXPECT_TRUE(diskFillsFirst(u, 699));
  EXPECT_FALSE(diskFillsFirst(u, 700));
  EXPECT_FALSE(diskFillsFirst(JournalUsage{.bytes = 1200, .maxBytes = 1000}, 0)) << "over the bound: nothing to grow";
}

TEST_F(RetentionTest, PruneKeepsEntriesYoungerThanTheRetention) {
  auto c = config();
  c.retention = std::chrono::seconds(1);
  auto j = open(c);
  ASSERT_TRUE(j);
  appendRange(*j, "crm", 1, 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  appendRange(*j, "crm", 3, 4);
  ASSERT_TRUE(j->advance("r", "s", 4));
  EXPECT_EQ(j->prune().value(), 2u);
  EXPECT_EQ(firstHeld(*j), 3u);
}

TEST_F(RetentionTest, SequencesAreNeverReusedAndPrunedDuplicatesStayRecognised) {
  auto j = open();
  ASSERT_TRUE(j);
  appendRange(*j, "crm", 1, 3);
  ASSERT_TRUE(j->advance("r", "s", 3));
  EXPECT_EQ(j->prune().value(), 3u);
  EXPECT_EQ(j->usage().value().entries, 0u);

  j.reset();  // and across a reopen
  j = open();
  ASSERT_TRUE(j);
  const std::vector<JournalEntry> again{makeEntry("crm", 2), makeEntry("crm", 4)};
  auto seqs = j->append(again);
  ASSERT_TRUE(seqs) << seqs.error().message;
  EXPECT_EQ((*seqs)[0], 3u) << "a pruned duplicate answers with the origin's last pruned sequence";
  EXPECT_EQ((*seqs)[1], 4u) << "a new one continues after the head, never reusing 1..3";
  const auto held = readAll(*j);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].originSequence, 4u);
  EXPECT_EQ(j->journaledThrough("crm").value(), 4u);
}

TEST_F(RetentionTest, PruneKeepsEntriesADeadLetterNames) {
  auto j = open();
  ASSERT_TRUE(j);
  appendRange(*j, "crm", 1, 4);
  auto id = j->addDeadLetter({.route = "r", .subscriber = "s", .sequence = 2, .error = "no such table", .attempts = 5});
  ASSERT_TRUE(id) << id.error().message;
  ASSERT_TRUE(j->advance("r", "s", 4));
  EXPECT_EQ(j->prune().value(), 3u);
  auto held = readAll(*j);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].sequence, 2u);
  ASSERT_TRUE(j->removeDeadLetter(*id));
  EXPECT_EQ(j->prune().value(), 1u);
  EXPECT_TRUE(readAll(*j).empty());
}

TEST_F(RetentionTest, PruneRemovesMoreThanOneBatch) {
  auto j = open();
  ASSERT_TRUE(j);
  for (std::uint64_t from = 1; from <= 10000; from += 1000) appendRange(*j, "crm", from, from + 999, 8);
  ASSERT_TRUE(j->advance("r", "s", 9990));
  EXPECT_EQ(j->prune().value(), 9990u);
  EXPECT_EQ(firstHeld(*j), 9991u);
  auto usage = j->usage();
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->entries, 10u);
  EXPECT_EQ(usage->bytes, 80u);
}

TEST_F(RetentionTest, TheBoundRefusesWholeAppendsAndWarnsBeforeIt) {
  auto c = config();
  c.maxBytes = 10 * 1024;  // ten entries of 1 KiB
  c.warnAtPercent = 80;
  auto j = open(c);
  ASSERT_TRUE(j);
  appendRange(*j, "crm", 1, 7, 1024);
  EXPECT_FALSE(j->usage().value().nearlyFull);
  appendRange(*j, "crm", 8, 8, 1024);
  EXPECT_TRUE(j->usage().value().nearlyFull) << "8 KiB of 10 KiB is 80 %";

  std::vector<JournalEntry> three;
  for (std::uint64_t i = 9; i <= 11; ++i) three.push_back(makeEntry("crm", i, {"contacts"}, 1024));
  auto full = j->append(three);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().kind, JournalError::Kind::Full);
  EXPECT_NE(full.error().message.find(c.path.string()), std::string::npos) << full.error().message;
  EXPECT_NE(full.error().message.find("holds 8192 bytes of its 10240 byte bound"), std::string::npos)
      << full.error().message;
  EXPECT_NE(full.error().message.find("nothing of it was stored"), std::string::npos);
  auto usage = j->usage().value();
  EXPECT_EQ(usage.entries, 8u);
  EXPECT_EQ(usage.head, 8u);
  EXPECT_EQ(j->journaledThrough("crm").value(), 8u) << "the refused batch left no trace";

  // Duplicates cost nothing, so a source re-sending what is journaled is not refused.
  const std::vector<JournalEntry> resent{makeEntry("crm", 7, {"contacts"}, 1024),
                                         makeEntry("crm", 8, {"contacts"}, 1024)};
  EXPECT_EQ(j->append(resent).value(), (std::vector<std::uint64_t>{7, 8}));

  // Exactly at the bound is allowed; one byte beyond is not.
  three.pop_back();
  ASSERT_TRUE(j->append(three));
  EXPECT_EQ(j->usage().value().bytes, c.maxBytes);
  const auto one = makeEntry("crm", 11, {"contacts"}, 1);
  ASSERT_EQ(j->append(std::span(&one, 1)).error().kind, JournalError::Kind::Full);

  // Retention makes room again.
  ASSERT_TRUE(j->advance("r", "s", 5));
  EXPECT_EQ(j->prune().value(), 5u);
  EXPECT_FALSE(j->usage().value().nearlyFull);
  auto after = j->append(std::span(&one, 1));
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(*after, (std::vector<std::uint64_t>{11}));
}

}  // namespace
}  // namespace ipcsync::test
