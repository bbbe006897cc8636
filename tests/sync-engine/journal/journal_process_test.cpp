// Several real processes on one journal file: a reader beside a writer (WAL), and a writer
// killed with SIGKILL in the middle of a large append.
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "journal_fixture.h"

namespace ipcsync::test {
namespace {

using ProcessTest = JournalTest;

std::uint64_t fileSize(const std::filesystem::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

std::string integrityCheck(const std::filesystem::path& file) {
  sqlite3* db = nullptr;
  std::string out = "cannot open";
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    out.clear();
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr) == SQLITE_OK)
      while (sqlite3_step(s) == SQLITE_ROW) out += reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return out;
}

TEST_F(ProcessTest, ASecondProcessReadsConsistentSnapshotsWhileTheFirstAppends) {
  constexpr int kBatches = 300, kBatch = 8;
  constexpr std::size_t kBytes = 1024;
  ASSERT_TRUE(open());  // create the file first, so both sides open an existing journal
  const auto c = config();
  Child writer([&] {
    auto j = Journal::open(c);
    if (!j) return 10;
    for (int b = 0; b < kBatches; ++b) {
      std::vector<JournalEntry> batch;
      for (int i = 1; i <= kBatch; ++i)
        batch.push_back(makeEntry("crm", static_cast<std::uint64_t>(b * kBatch + i), {"contacts"}, kBytes));
      auto r = (*j)->append(batch);
      if (!r) {
        std::fprintf(stderr, "writer: %s\n", r.error().message.c_str());
        return 11;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    return 0;
  });

  auto reader = open();
  ASSERT_TRUE(reader);
  std::size_t last = 0, snapshots = 0, partial = 0;
  std::optional<int> exit;
  while (!(exit = writer.poll())) {
    auto all = reader->read(0, 1u << 20);
    ASSERT_TRUE(all) << all.error().message;
    ASSERT_EQ(all->size() % kBatch, 0u) << "an append is seen whole or not at all";
    ASSERT_GE(all->size(), last) << "what was seen stays";
    for (std::size_t i = 0; i < all->size(); ++i) {
      ASSERT_EQ((*all)[i].sequence, i + 1);
      ASSERT_TRUE(payloadMatches((*all)[i], kBytes)) << "sequence " << i + 1;
    }
    last = all->size();
    ++snapshots;
    if (last > 0 && last < std::size_t{kBatches} * kBatch) ++partial;
  }
  EXPECT_EQ(*exit, 0) << "the writer was never blocked past its busy timeout by the reader";
  EXPECT_GT(partial, 0u) << "the reader saw the journal mid-way at least once (" << snapshots << " snapshots)";
  EXPECT_EQ(readAll(*reader).size(), std::size_t{kBatches} * kBatch);
}

TEST_F(ProcessTest, AWriterKilledInTheMiddleOfALargeAppendLeavesAllOrNothing) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  constexpr std::uint64_t kEntries = 2000;
  constexpr std::size_t kBytes = 4096;  // 8 MB in one append: far beyond SQLite's page cache, so it spills
  {
    auto j = open();
    ASSERT_TRUE(j);
    std::vector<JournalEntry> before;
    for (std::uint64_t i = 1; i <= 5; ++i) before.push_back(makeEntry("crm", i));
    ASSERT_TRUE(j->append(before));
  }
  const auto c = config();
  const std::filesystem::path wal = c.path.string() + "-wal";
  int killedMidway = 0;
  std::uint64_t expected = 5;
  for (int round = 0; round < 3; ++round) {
    const std::string origin = "big" + std::to_string(round);
    // Kill once the uncommitted part of the append has passed a random size between 1 and 6 MB.
    const std::uint64_t at = fileSize(wal) + std::uniform_int_distribution<std::uint64_t>(1, 6)(rng) * 1'000'000;
    Child writer([&] {
      auto j = Journal::open(c);
      if (!j) return 10;
      std::vector<JournalEntry> batch;
      for (std::uint64_t i = 1; i <= kEntries; ++i) batch.push_back(makeEntry(origin, i, {"contacts"}, kBytes));
      return (*j)->append(batch) ? 0 : 11;
    });
    ASSERT_TRUE(waitFor([&] { return fileSize(wal) >= at; }, std::chrono::seconds(60)));
    const int code = writer.kill(SIGKILL);
    SCOPED_TRACE("round " + std::to_string(round) + ", killed at WAL size " + std::to_string(at));
    ASSERT_TRUE(code == 128 + SIGKILL || code == 0) << code;
    if (code == 128 + SIGKILL) ++killedMidway;

    auto j = open();
    ASSERT_TRUE(j) << "reopens after the kill";
    const auto all = readAll(*j);
    std::uint64_t ofRound = 0;
    for (const auto& e : all) {
      ASSERT_TRUE(payloadMatches(e, e.origin == "crm" ? 64 : kBytes)) << "sequence " << e.sequence;
      if (e.origin == origin) ++ofRound;
    }
    ASSERT_TRUE(ofRound == 0 || ofRound == kEntries) << ofRound << " of " << kEntries << " entries survived";
    std::printf("round %d: killed at WAL size %llu %s; %llu of %llu entries of that append kept\n", round,
                static_cast<unsigned long long>(at), code == 0 ? "after the append ended" : "during the append",
                static_cast<unsigned long long>(ofRound), static_cast<unsigned long long>(kEntries));
    expected += ofRound;
    ASSERT_EQ(all.size(), expected);
    auto usage = j->usage();
    ASSERT_TRUE(usage);
    EXPECT_EQ(usage->entries, all.size()) << "the counters moved with the rows";
    EXPECT_EQ(usage->head, all.back().sequence);
    EXPECT_EQ(j->journaledThrough(origin).value(), ofRound);
    EXPECT_EQ(integrityCheck(c.path), "ok");
    // And the journal goes on: the next append continues after the head.
    const auto next = makeEntry("crm", 100 + static_cast<std::uint64_t>(round));
    auto seq = j->append(std::span(&next, 1));
    ASSERT_TRUE(seq) << seq.error().message;
    EXPECT_EQ((*seq)[0], usage->head + 1);
    ++expected;
  }
  EXPECT_GT(killedMidway, 0) << "at least one kill landed inside the append";
}

}  // namespace
}  // namespace ipcsync::test
