// One transaction per change-set: pieces accumulate invisibly and the last commits them with the
// route's sequence; duplicates change nothing; a restart resumes from last_applied; a failing or
// stray piece, or a process that dies mid-transaction, leaves nothing half-applied.
#include <signal.h>

#include "changeset_pieces.h"
#include "crm_workload.h"
#include "mining_fixture.h"

namespace ipcsync::test {
namespace {

class MiningTransactionTest : public MiningTest {
 protected:
  // A transaction of about `operations` random operations on `source`.
  Bytes randomTransaction(CrmSource& source, CrmWorkload& workload, int operations) {
    return source.capture([&] {
      for (int i = 0; i < operations; ++i) workload.step();
    });
  }
  uint64_t lastApplied(const std::string& route) {
    uint64_t last = 0;
    EXPECT_EQ(host->lastApplied(route, last), IPCSYNC_OK) << host->lastError();
    return last;
  }
  // Applies pieces [from, to) of `pieces` as sequence `sequence`, expecting each to be accepted.
  void applyPieces(const std::vector<Bytes>& pieces, uint64_t sequence, size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      ipcsync_apply_result result{};
      ASSERT_EQ(host->apply(envelopeFor(pieces[i], "r", sequence, static_cast<uint32_t>(i),
                                        static_cast<uint32_t>(pieces.size())),
                            result),
                IPCSYNC_OK)
          << "piece " << i << ": " << host->lastError();
      EXPECT_EQ(result.status, IPCSYNC_APPLIED);
    }
  }
};

TEST_F(MiningTransactionTest, PiecesStayInvisibleUntilTheLastPieceCommitsThem) {
  CrmSource source;
  CrmWorkload workload(source, 11);
  const Bytes changeset = randomTransaction(source, workload, 60);
  const auto pieces = splitChangeset(changeset, 2);
  ASSERT_GE(pieces.size(), 4u);
  const Rows before = everything();
  applyPieces(pieces, 1, 0, pieces.size() - 1);
  EXPECT_EQ(everything(), before) << "a reader saw pieces of an uncommitted transaction";
  EXPECT_EQ(lastApplied("r"), 0u);
  applyPieces(pieces, 1, pieces.size() - 1, pieces.size());
  EXPECT_EQ(lastApplied("r"), 1u);
  expectMatchesSource(source, "after the last piece");
}

TEST_F(MiningTransactionTest, ARedeliveredSequenceIsADuplicateAndChangesNothing) {
  CrmSource source;
  CrmWorkload workload(source, 12);
  const Bytes first = randomTransaction(source, workload, 20);
  const Bytes second = randomTransaction(source, workload, 20);
  applyOk(first, "r", 1);
  applyOk(second, "r", 2);
  const Rows before = everything();
  for (uint64_t sequence : {0u, 1u, 2u}) {
    ipcsync_apply_result result{};
    ASSERT_EQ(apply(sequence == 2 ? second : first, "r", sequence, result), IPCSYNC_OK) << host->lastError();
    EXPECT_EQ(result.status, IPCSYNC_DUPLICATE) << "sequence " << sequence;
    EXPECT_EQ(result.changes_applied, 0u);
  }
  // A later piece of an old sequence is a duplicate too, not a stray piece.
  const auto pieces = splitChangeset(first, 2);
  ipcsync_apply_result result{};
  ASSERT_EQ(host->apply(envelopeFor(pieces.back(), "r", 1, static_cast<uint32_t>(pieces.size() - 1),
                                    static_cast<uint32_t>(pieces.size())),
                        result),
            IPCSYNC_OK)
      << host->lastError();
  EXPECT_EQ(result.status, IPCSYNC_DUPLICATE);
  EXPECT_EQ(everything(), before);
  expectMatchesSource(source, "after the duplicates");
}

TEST_F(MiningTransactionTest, RoutesKeepTheirOwnSequences) {
  CrmSource source;
  CrmWorkload workload(source, 13);
  applyOk(randomTransaction(source, workload, 10), "east", 5);
  ipcsync_apply_result result = applyOk(randomTransaction(source, workload, 10), "west", 1);
  EXPECT_EQ(result.status, IPCSYNC_APPLIED);
  EXPECT_EQ(lastApplied("east"), 5u);
  EXPECT_EQ(lastApplied("west"), 1u);
  EXPECT_EQ(lastApplied("north"), 0u);
  expectMatchesSource(source, "after two routes");
}

TEST_F(MiningTransactionTest, ARestartedInstanceResumesFromLastApplied) {
  CrmSource source;
  CrmWorkload workload(source, 14);
  std::vector<Bytes> sent;
  for (uint64_t s = 1; s <= 5; ++s) {
    sent.push_back(randomTransaction(source, workload, 15));
    applyOk(sent.back(), "r", s);
  }
  host->destroy();
  host = makeHost();
  EXPECT_EQ(lastApplied("r"), 5u);
  ipcsync_apply_result result{};
  ASSERT_EQ(apply(sent[4], "r", 5, result), IPCSYNC_OK) << host->lastError();
  EXPECT_EQ(result.status, IPCSYNC_DUPLICATE);
  applyOk(randomTransaction(source, workload, 15), "r", 6);
  EXPECT_EQ(lastApplied("r"), 6u);
  expectMatchesSource(source, "after the restart");
}

TEST_F(MiningTransactionTest, AnUnfinishedTransactionIsGoneAfterARestart) {
  CrmSource source;
  CrmWorkload workload(source, 15);
  applyOk(randomTransaction(source, workload, 10), "r", 1);
  const Rows before = everything();
  const auto pieces = splitChangeset(randomTransaction(source, workload, 30), 4);
  ASSERT_GE(pieces.size(), 3u);
  applyPieces(pieces, 2, 0, 2);
  host->destroy();
  host = makeHost();
  EXPECT_EQ(everything(), before);
  EXPECT_EQ(lastApplied("r"), 1u);
  // The rest alone cannot continue a transaction the restart rolled back.
  ipcsync_apply_result result{};
  EXPECT_EQ(host->apply(envelopeFor(pieces[2], "r", 2, 2, static_cast<uint32_t>(pieces.size())), result),
            IPCSYNC_EINVAL);
  EXPECT_NE(host->lastError().find("no transaction is open"), std::string::npos) << host->lastError();
  EXPECT_NE(host->lastError().find("resend the change-set from piece 1"), std::string::npos) << host->lastError();
  EXPECT_EQ(everything(), before);
  applyPieces(pieces, 2, 0, pieces.size());
  EXPECT_EQ(lastApplied("r"), 2u);
  expectMatchesSource(source, "after resending every piece");
}

TEST_F(MiningTransactionTest, AFailingPieceRollsBackTheWholeTransaction) {
  CrmSource source;
  CrmWorkload workload(source, 16);
  applyOk(randomTransaction(source, workload, 10), "r", 1);
  const Rows before = everything();
  const Bytes good = randomTransaction(source, workload, 30);
  auto pieces = splitChangeset(good, 5);
  ASSERT_GE(pieces.size(), 3u);
  ChangesetWriter bad;  // an order whose quantity is text: mining cannot sum it
  bad.add("orders", {true, false, false, false, false, false, false}, SQLITE_INSERT, {},
          {int64_t{999999}, int64_t{1}, std::string("widget"), std::string("a dozen"), int64_t{100}, int64_t{0},
           int64_t{0}});
  std::vector<Bytes> withBad(pieces.begin(), pieces.begin() + 2);
  withBad.push_back(bad.bytes());
  applyPieces(withBad, 2, 0, 2);
  ipcsync_apply_result result{};
  EXPECT_EQ(host->apply(envelopeFor(withBad[2], "r", 2, 2, 3), result), IPCSYNC_ESCHEMA);
  const std::string& message = host->lastError();
  EXPECT_NE(message.find("column quantity is TEXT 'a dozen'"), std::string::npos) << message;
  EXPECT_NE(message.find("route 'r' sequence 2 piece 3/3"), std::string::npos) << message;
  EXPECT_NE(message.find("nothing of this change-set was applied"), std::string::npos) << message;
  EXPECT_EQ(everything(), before);
  EXPECT_EQ(lastApplied("r"), 1u);
  applyPieces(pieces, 2, 0, pieces.size());  // the corrected change-set goes through
  expectMatchesSource(source, "after the corrected change-set");
}

TEST_F(MiningTransactionTest, APieceThatDoesNotContinueTheOpenTransactionRollsItBack) {
  CrmSource source;
  CrmWorkload workload(source, 17);
  const Rows before = everything();
  const auto pieces = splitChangeset(randomTransaction(source, workload, 30), 3);
  ASSERT_GE(pieces.size(), 4u);
  const auto count = static_cast<uint32_t>(pieces.size());
  applyPieces(pieces, 1, 0, 1);
  ipcsync_apply_result result{};
  EXPECT_EQ(host->apply(envelopeFor(pieces[2], "r", 1, 2, count), result), IPCSYNC_EINVAL);
  EXPECT_NE(host->lastError().find("does not continue the open transaction of route 'r' sequence 1 (expecting "
                                   "piece 2/"),
            std::string::npos)
      << host->lastError();
  EXPECT_EQ(everything(), before);
  EXPECT_EQ(host->apply(envelopeFor(pieces[1], "r", 1, 1, count), result), IPCSYNC_EINVAL)
      << "the rolled-back transaction cannot be continued either";
  EXPECT_EQ(everything(), before);
}

TEST_F(MiningTransactionTest, APieceOneOfANewTransactionAbandonsTheUnfinishedOne) {
  CrmSource source;
  CrmWorkload workload(source, 18);
  const Bytes lost = randomTransaction(source, workload, 20);
  const auto pieces = splitChangeset(lost, 4);
  ASSERT_GE(pieces.size(), 2u);
  applyPieces(pieces, 1, 0, 1);
  // The host gave up on sequence 1 and sends it again from its first piece, whole.
  applyOk(lost, "r", 1);
  EXPECT_EQ(lastApplied("r"), 1u);
  bool warned = false;
  for (const auto& [level, line] : host->logs)
    warned = warned || (level == IPCSYNC_LOG_WARN && line.find("abandoned the unfinished transaction") != std::string::npos);
  EXPECT_TRUE(warned);
  expectMatchesSource(source, "after the re-sent change-set");
}

TEST_F(MiningTransactionTest, AProcessKilledMidTransactionLeavesNothingHalfApplied) {
  CrmSource source;
  CrmWorkload workload(source, 19);
  applyOk(randomTransaction(source, workload, 10), "r", 1);
  host.reset();  // the plugin instance now lives in the child
  const Rows before = everything();
  const auto pieces = splitChangeset(randomTransaction(source, workload, 40), 4);
  ASSERT_GE(pieces.size(), 3u);
  Child child([&] {
    TestHost h(IPCSYNC_MINING_PLUGIN, {}, dataDir());
    if (h.create() != IPCSYNC_OK) return 10;
    for (uint32_t i = 0; i + 1 < pieces.size(); ++i) {
      ipcsync_apply_result result{};
      if (h.apply(envelopeFor(pieces[i], "r", 2, i, static_cast<uint32_t>(pieces.size())), result) != IPCSYNC_OK)
        return 11;
    }
    ::raise(SIGKILL);  // dies holding the open write transaction
    return 12;
  });
  ASSERT_EQ(child.wait(), 128 + SIGKILL);
  host = makeHost();
  EXPECT_EQ(everything(), before);
  EXPECT_EQ(lastApplied("r"), 1u);
  applyPieces(pieces, 2, 0, pieces.size());
  EXPECT_EQ(lastApplied("r"), 2u);
  expectMatchesSource(source, "after re-applying in a new process");
}

}  // namespace
}  // namespace ipcsync::test
