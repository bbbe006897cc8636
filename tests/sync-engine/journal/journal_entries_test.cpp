// Appending and reading change-sets: order, de-duplication, group commit, filters, refusals.
#include <chrono>

#include "journal_fixture.h"

namespace ipcsync::test {
namespace {

using EntriesTest = JournalTest;

std::int64_t nowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<std::uint64_t> sequencesOf(const std::vector<JournalEntry>& entries) {
  std::vector<std::uint64_t> out;
  for (const auto& e : entries) out.push_back(e.sequence);
  return out;
}

TEST_F(EntriesTest, AppendsAndReadsBackEveryFieldInOrder) {
  auto j = open();
  ASSERT_TRUE(j);
  const std::int64_t before = nowUs();
  const std::vector<JournalEntry> in{makeEntry("crm", 1, {"contacts"}, 100, {"crm"}),
                                     makeEntry("crm", 2, {"deals", "contacts"}, 300, {"crm", "hub"}, 3),
                                     makeEntry("mining", 7, {"scores"}, 1, {"mining"})};
  for (const auto& e : in) {
    auto seq = j->append(std::span(&e, 1));
    ASSERT_TRUE(seq) << seq.error().message;
  }
  const std::int64_t after = nowUs();

  const auto out = readAll(*j);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(sequencesOf(out), (std::vector<std::uint64_t>{1, 2, 3}));
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i].origin, in[i].origin);
    EXPECT_EQ(out[i].originSequence, in[i].originSequence);
    EXPECT_EQ(out[i].commitTimeUs, in[i].commitTimeUs);
    EXPECT_EQ(out[i].provenance, in[i].provenance);
    EXPECT_EQ(out[i].pieces, in[i].pieces);
    EXPECT_GE(out[i].journaledAtUs, before);
    EXPECT_LE(out[i].journaledAtUs, after);
  }
  EXPECT_EQ(out[1].tables, (std::vector<std::string>{"contacts", "deals"}));  // sorted
  EXPECT_TRUE(payloadMatches(out[1], 300, 3));

  auto tail = j->read(1, 10);
  ASSERT_TRUE(tail);
  EXPECT_EQ(sequencesOf(*tail), (std::vector<std::uint64_t>{2, 3}));
  auto head = j->read(0, 2);
  ASSERT_TRUE(head);
  EXPECT_EQ(sequencesOf(*head), (std::vector<std::uint64_t>{1, 2}));
  auto none = j->read(3, 10);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());

  auto usage = j->usage();
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->entries, 3u);
  EXPECT_EQ(usage->bytes, 100u + 900u + 1u);
  EXPECT_EQ(usage->head, 3u);
}

TEST_F(EntriesTest, RecognisesDuplicatesAndReturnsTheEarlierSequence) {
  auto j = open();
  ASSERT_TRUE(j);
  const std::vector<JournalEntry> first{makeEntry("crm", 1), makeEntry("crm", 2)};
  ASSERT_TRUE(j->append(first));
  // A source re-emitting after a restart, with one change-set twice in the same batch.
  const std::vector<JournalEntry> again{makeEntry("crm", 2), makeEntry("crm", 3), makeEntry("crm", 3),
                                        makeEntry("mining", 2)};
  auto seqs = j->append(again);
  ASSERT_TRUE(seqs) << seqs.error().message;
  EXPECT_EQ(*seqs, (std::vector<std::uint64_t>{2, 3, 3, 4}));
  EXPECT_EQ(readAll(*j).size(), 4u);
  auto usage = j->usage();
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->entries, 4u);
  EXPECT_EQ(usage->bytes, 4u * 64u);

  // Also across a reopen, and journaledThrough tells a restarted source where to resume.
  j.reset();
  j = open();
  ASSERT_TRUE(j);
  const auto one = makeEntry("crm", 1);
  auto seq = j->append(std::span(&one, 1));
  ASSERT_TRUE(seq);
  EXPECT_EQ(*seq, (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(j->journaledThrough("crm").value(), 3u);
  EXPECT_EQ(j->journaledThrough("mining").value(), 2u);
  EXPECT_EQ(j->journaledThrough("nobody").value(), 0u);
}

TEST_F(EntriesTest, GroupCommitStoresManyEntriesInOneTransaction) {
  auto j = open();
  ASSERT_TRUE(j);
  std::vector<JournalEntry> batch;
  for (std::uint64_t i = 1; i <= 256; ++i) batch.push_back(makeEntry("crm", i, {"contacts"}, 1024));
  auto seqs = j->append(batch);
  ASSERT_TRUE(seqs) << seqs.error().message;
  ASSERT_EQ(seqs->size(), 256u);
  for (std::size_t i = 0; i < 256; ++i) EXPECT_EQ((*seqs)[i], i + 1);

  const auto out = readAll(*j);
  ASSERT_EQ(out.size(), 256u);
  for (const auto& e : out) {
    EXPECT_EQ(e.journaledAtUs, out.front().journaledAtUs) << "one commit, one journaled-at time";
    EXPECT_TRUE(payloadMatches(e, 1024)) << "sequence " << e.sequence;
  }
  EXPECT_EQ(j->journaledThrough("crm").value(), 256u);
}

TEST_F(EntriesTest, ReadFiltersByTableAndExcludesWhatPassedThroughANode) {
  auto j = open();
  ASSERT_TRUE(j);
  const std::vector<JournalEntry> in{
      makeEntry("crm", 1, {"contacts"}, 8, {"crm"}),              // 1
      makeEntry("crm", 2, {"deals"}, 8, {"crm"}),                 // 2
      makeEntry("crm", 3, {"contacts", "deals"}, 8, {"crm"}),     // 3
      makeEntry("mining", 1, {"contacts"}, 8, {"mining"}),        // 4
      makeEntry("crm", 4, {"deals"}, 8, {"crm", "mining"}),       // 5: came back from mining
      makeEntry("crm", 5, {"notes"}, 8, {"crm"}),                 // 6
  };
  ASSERT_TRUE(j->append(in));

  const std::vector<std::string> deals{"deals"};
  auto r = j->read(0, 100, deals);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(sequencesOf(*r), (std::vector<std::uint64_t>{2, 3, 5}));

  const std::vector<std::string> two{"notes", "deals"};
  r = j->read(2, 100, two);
  ASSERT_TRUE(r);
  EXPECT_EQ(sequencesOf(*r), (std::vector<std::uint64_t>{3, 5, 6}));

  r = j->read(0, 100, {}, "mining");
  ASSERT_TRUE(r);
  EXPECT_EQ(sequencesOf(*r), (std::vector<std::uint64_t>{1, 2, 3, 6}));

  r = j->read(0, 100, deals, "mining");
  ASSERT_TRUE(r);
  EXPECT_EQ(sequencesOf(*r), (std::vector<std::uint64_t>{2, 3}));

  // The limit counts matching entries, not scanned ones.
  r = j->read(0, 1, std::vector<std::string>{"notes"});
  ASSERT_TRUE(r);
  EXPECT_EQ(sequencesOf(*r), (std::vector<std::uint64_t>{6}));

  // A table with an odd name is matched exactly, not as a pattern.
  r = j->read(0, 100, std::vector<std::string>{"de%", "\"deals\""});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
}

TEST_F(EntriesTest, AnEmptyProvenanceIsStoredAsTheOrigin) {
  auto j = open();
  ASSERT_TRUE(j);
  auto e = makeEntry("crm", 1);
  e.provenance.clear();
  ASSERT_TRUE(j->append(std::span(&e, 1)));
  const auto out = readAll(*j);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].provenance, (std::vector<std::string>{"crm"}));
  auto excluded = j->read(0, 10, {}, "crm");
  ASSERT_TRUE(excluded);
  EXPECT_TRUE(excluded->empty());
}

TEST_F(EntriesTest, APieceLargerThanPieceBytesIsKeptWhole) {
  auto c = config();
  c.pieceBytes = 1024;  // the plugin ABI lets one row exceed max_piece_bytes
  auto j = open(c);
  ASSERT_TRUE(j);
  const auto e = makeEntry("crm", 1, {"contacts"}, 4096);
  auto r = j->append(std::span(&e, 1));
  ASSERT_TRUE(r) << r.error().message;
  const auto out = readAll(*j);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(payloadMatches(out[0], 4096));
}

struct BadEntry {
  const char* name;
  void (*spoil)(JournalEntry&, JournalConfig&);
  const char* says;
};

TEST_F(EntriesTest, RefusesEveryBadEntryClearlyAndStoresNothingOfItsBatch) {
  const BadEntry cases[] = {
      {"no origin", [](JournalEntry& e, JournalConfig&) { e.origin.clear(); }, "has no origin"},
      {"sequence 0", [](JournalEntry& e, JournalConfig&) { e.originSequence = 0; }, "origin sequence 0"},
      {"no pieces", [](JournalEntry& e, JournalConfig&) { e.pieces.clear(); }, "has no pieces"},
      {"empty piece", [](JournalEntry& e, JournalConfig&) { e.pieces.emplace_back(); }, "empty piece 1"},
      {"empty table", [](JournalEntry& e, JournalConfig&) { e.tables.emplace_back(); }, "empty table"},
      {"bigger than the bound", [](JournalEntry& e, JournalConfig& c) { c.maxBytes = 100; e.pieces[0].resize(101); },
       "could never be journaled"},
  };
  for (const auto& bad : cases) {
    SCOPED_TRACE(bad.name);
    TempDir dir;
    JournalConfig c = config();
    c.path = dir.path() / "journal.db";
    std::vector<JournalEntry> batch{makeEntry("crm", 1), makeEntry("crm", 2)};
    bad.spoil(batch[1], c);
    auto j = open(c);
    ASSERT_TRUE(j);
    auto r = j->append(batch);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, JournalError::Kind::InvalidArgument);
    EXPECT_NE(r.error().message.find(c.path.string()), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("entry 1 of 2"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(bad.says), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("nothing of this append was stored"), std::string::npos);
    EXPECT_TRUE(readAll(*j).empty());
    EXPECT_EQ(j->usage().value().head, 0u);
    EXPECT_EQ(j->journaledThrough("crm").value(), 0u);
    // The good one alone still goes in.
    auto ok = j->append(std::span(batch.data(), 1));
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(*ok, (std::vector<std::uint64_t>{1}));
  }
}

}  // namespace
}  // namespace ipcsync::test
