// Dead letters and parked conflicts, the operator's requests, and the CLI helpers that make them.
#include <cstdio>

#include "ipcsync/sync/journal_cli.h"
#include "journal_fixture.h"

namespace ipcsync::test {
namespace {

using OperatorTest = JournalTest;

// A FILE* whose contents can be read back.
class Capture {
 public:
  Capture() : m_file(std::tmpfile()) {}
  ~Capture() { std::fclose(m_file); }
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;
  std::FILE* file() const { return m_file; }
  std::string text() const {
    std::fflush(m_file);
    std::rewind(m_file);
    std::string out;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, m_file)) > 0) out.append(buf, n);
    return out;
  }

 private:
  std::FILE* m_file;
};

ParkedConflict sampleConflict() {
  ParkedConflict c;
  c.route = "crm-to-mining";
  c.origin = "crm";
  c.subscriber = "mining";
  c.table = "contacts";
  c.kind = "data";
  c.sequence = 1;
  c.keyJson = R"({"id":42})";
  c.sourceJson = R"({"id":42,"name":"Ada"})";
  c.targetJson = R"({"id":42,"name":"Grace"})";
  c.change = {0x54, 0x02, 0x01, 0x00, 0x12};
  c.parkedAtUs = 1'700'000'000'000'000;
  return c;
}

TEST_F(OperatorTest, DeadLettersRoundTripWithReplayRequests) {
  auto j = open();
  ASSERT_TRUE(j);
  const auto e = makeEntry("crm", 1);
  ASSERT_TRUE(j->append(std::span(&e, 1)));

  const DeadLetter letter{.route = "crm-to-mining", .subscriber = "mining", .sequence = 1,
                          .error = "no such table: deals", .attempts = 5, .failedAtUs = 1'700'000'000'000'000};
  auto id = j->addDeadLetter(letter);
  ASSERT_TRUE(id) << id.error().message;
  auto letters = j->deadLetters().value();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].id, *id);
  EXPECT_EQ(letters[0].route, letter.route);
  EXPECT_EQ(letters[0].subscriber, letter.subscriber);
  EXPECT_EQ(letters[0].sequence, 1u);
  EXPECT_EQ(letters[0].error, letter.error);
  EXPECT_EQ(letters[0].attempts, 5u);
  EXPECT_EQ(letters[0].failedAtUs, letter.failedAtUs);
  EXPECT_FALSE(letters[0].replayRequested);

  ASSERT_TRUE(j->requestReplay(*id));
  EXPECT_TRUE(j->deadLetters().value()[0].replayRequested);

  // The replay failed again: same letter, new figures, request consumed.
  auto again = letter;
  again.attempts = 6;
  again.error = "still no such table";
  EXPECT_EQ(j->addDeadLetter(again).value(), *id);
  letters = j->deadLetters().value();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].attempts, 6u);
  EXPECT_EQ(letters[0].error, "still no such table");
  EXPECT_FALSE(letters[0].replayRequested);

  auto missing = j->requestReplay(*id + 100);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, JournalError::Kind::NotFound);
  EXPECT_NE(missing.error().message.find(std::to_string(*id + 100)), std::string::npos);
  EXPECT_NE(missing.error().message.find("ipcsync deadletter list"), std::string::npos) << missing.error().message;

  auto unheld = letter;
  unheld.sequence = 99;
  auto refused = j->addDeadLetter(unheld);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, JournalError::Kind::InvalidArgument);
  EXPECT_NE(refused.error().message.find("does not hold that sequence"), std::string::npos);
  EXPECT_EQ(j->deadLetters().value().size(), 1u);

  ASSERT_TRUE(j->removeDeadLetter(*id));
  EXPECT_TRUE(j->deadLetters().value().empty());
  EXPECT_EQ(j->removeDeadLetter(*id).error().kind, JournalError::Kind::NotFound);
}

TEST_F(OperatorTest, ParkedConflictsRoundTripWithResolutionRequests) {
  auto j = open();
  ASSERT_TRUE(j);
  const auto in = sampleConflict();
  auto id = j->park(in);
  ASSERT_TRUE(id) << id.error().message;
  auto open = j->conflicts().value();
  ASSERT_EQ(open.size(), 1u);
  const auto& c = open[0];
  EXPECT_EQ(c.id, *id);
  EXPECT_EQ(c.route, in.route);
  EXPECT_EQ(c.origin, in.origin);
  EXPECT_EQ(c.subscriber, in.subscriber);
  EXPECT_EQ(c.table, in.table);
  EXPECT_EQ(c.kind, in.kind);
  EXPECT_EQ(c.sequence, in.sequence);
  EXPECT_EQ(c.keyJson, in.keyJson);
  EXPECT_EQ(c.sourceJson, in.sourceJson);
  EXPECT_EQ(c.targetJson, in.targetJson);
  EXPECT_EQ(c.change, in.change);
  EXPECT_EQ(c.parkedAtUs, in.parkedAtUs);
  EXPECT_EQ(c.resolution, ConflictResolution::Open);
  EXPECT_TRUE(j->requestedResolutions().value().empty()) << "open, nobody decided yet";
  auto other = j->park(sampleConflict());
  ASSERT_TRUE(other);

  EXPECT_EQ(j->requestResolution(*id, ConflictResolution::Resolved).error().kind,
            JournalError::Kind::InvalidArgument);
  ASSERT_TRUE(j->requestResolution(*id, ConflictResolution::TakeSourceRequested));
  EXPECT_EQ(j->conflicts().value()[0].resolution, ConflictResolution::TakeSourceRequested);
  const auto requested = j->requestedResolutions().value();
  ASSERT_EQ(requested.size(), 1u) << "only the one decided on";
  EXPECT_EQ(requested[0].id, *id);
  EXPECT_EQ(requested[0].change, in.change);
  ASSERT_TRUE(j->requestResolution(*id, ConflictResolution::TakeTargetRequested)) << "a change of mind";
  EXPECT_EQ(j->conflicts().value()[0].resolution, ConflictResolution::TakeTargetRequested);
  EXPECT_EQ(j->requestedResolutions().value().size(), 1u);

  ASSERT_TRUE(j->markResolved(*id));
  ASSERT_TRUE(j->markResolved(*id)) << "idempotent";
  EXPECT_TRUE(j->requestedResolutions().value().empty());
  ASSERT_TRUE(j->markResolved(*other));
  EXPECT_TRUE(j->conflicts().value().empty());
  auto all = j->conflicts(false).value();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].resolution, ConflictResolution::Resolved);

  auto late = j->requestResolution(*id, ConflictResolution::TakeSourceRequested);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().kind, JournalError::Kind::InvalidArgument);
  EXPECT_NE(late.error().message.find("already resolved"), std::string::npos);
  EXPECT_EQ(j->conflicts(false).value()[0].resolution, ConflictResolution::Resolved);
  EXPECT_EQ(j->requestResolution(*other + 1, ConflictResolution::TakeSourceRequested).error().kind,
            JournalError::Kind::NotFound);
  EXPECT_EQ(j->markResolved(*other + 1).error().kind, JournalError::Kind::NotFound);

  auto nameless = sampleConflict();
  nameless.table.clear();
  EXPECT_EQ(j->park(nameless).error().kind, JournalError::Kind::InvalidArgument);
}

TEST_F(OperatorTest, DeadletterCommandsListAndRequestReplayForTheRunningEngine) {
  auto engine = open();  // the sync engine's connection stays open throughout
  ASSERT_TRUE(engine);
  const auto path = config().path;
  {
    Capture out, err;
    EXPECT_EQ(journal_cli::listDeadLetters(path, out.file(), err.file()), journal_cli::kOk);
    EXPECT_NE(out.text().find("no dead letters"), std::string::npos);
  }
  const auto e = makeEntry("crm", 1);
  ASSERT_TRUE(engine->append(std::span(&e, 1)));
  const auto id = engine->addDeadLetter({.route = "crm-to-mining", .subscriber = "mining", .sequence = 1,
                                          .error = "constraint failed\nline two", .attempts = 5,
                                          .failedAtUs = 1'700'000'000'000'000});
  ASSERT_TRUE(id);
  {
    Capture out, err;
    EXPECT_EQ(journal_cli::deadletterCommand(path, std::vector<std::string>{"list"}, out.file(), err.file()),
              journal_cli::kOk);
    const auto text = out.text();
    EXPECT_NE(text.find("ID"), std::string::npos) << text;
    EXPECT_NE(text.find("LAST ERROR"), std::string::npos) << text;
    EXPECT_NE(text.find("crm-to-mining"), std::string::npos) << text;
    EXPECT_NE(text.find("2023-11-14 22:13:20"), std::string::npos) << text;
    EXPECT_NE(text.find("constraint failed line two"), std::string::npos) << "one line per letter: " << text;
    EXPECT_EQ(err.text(), "");
  }
  {
    Capture out, err;
    EXPECT_EQ(journal_cli::deadletterCommand(path, std::vector<std::string>{"replay", std::to_string(*id)}, out.file(),
                                             err.file()),
              journal_cli::kOk);
    EXPECT_NE(out.text().find("marked for replay"), std::string::npos);
  }
  EXPECT_TRUE(engine->deadLetters().value()[0].replayRequested) << "the engine's connection sees the request";
  {
    Capture out, err;
    EXPECT_EQ(journal_cli::replayDeadLetter(path, "77", out.file(), err.file()), journal_cli::kNotFound);
    EXPECT_NE(err.text().find("no dead letter with id 77"), std::string::npos) << err.text();
  }
  for (const auto& args : std::vector<std::vector<std::string>>{{}, {"frobnicate"}, {"replay"}, {"replay", "x1"},
                                                                 {"replay", "0"}, {"list", "extra"}}) {
    Capture out, err;
    EXPECT_EQ(journal_cli::deadletterCommand(path, args, out.file(), err.file()), journal_cli::kUsage);
    EXPECT_NE(err.text().find("usage: ipcsync deadletter"), std::string::npos) << err.text();
  }
  EXPECT_EQ(engine->deadLetters().value().size(), 1u) << "usage errors changed nothing";
}

TEST_F(OperatorTest, ConflictsCommandsListAndRecordTheOperatorsChoice) {
  auto engine = open();
  ASSERT_TRUE(engine);
  const auto path = config().path;
  const auto id = engine->park(sampleConflict()).value();
  {
    Capture out, err;
    EXPECT_EQ(journal_cli::conflictsCommand(path, std::vector<std::string>{"list"}, out.file(), err.file()),
              journal_cli::kOk);
    const auto text = out.text();
    EXPECT_NE(text.find("SUBSCRIBER"), std::string::npos) << text;
    EXPECT_NE(text.find("contacts"), std::string::npos) << text;
    EXPECT_NE(text.find(R"({"id":42})"), std::string::npos) << text;
    EXPECT_NE(text.find("open"), std::string::npos) << text;
  }
  {
    Capture out, err;
    EXPECT_EQ(journal_cli::conflictsCommand(path, std::vector<std::string>{"resolve", std::to_string(id), "--take",
                                                                            "sideways"},
                                            out.file(), err.file()),
              journal_cli::kUsage);
    EXPECT_NE(err.text().find("--take must be 'source' or 'target', not 'sideways'"), std::string::npos) << err.text();
  }
  EXPECT_EQ(engine->conflicts().value()[0].resolution, ConflictResolution::Open);
  {
    Capture out, err;
    EXPECT_EQ(journal_cli::conflictsCommand(path, std::vector<std::string>{"resolve", std::to_string(id),
                                                                            "--take=source"},
                                            out.file(), err.file()),
              journal_cli::kOk)
        << err.text();
    EXPECT_NE(out.text().find("take source recorded"), std::string::npos);
  }
  EXPECT_EQ(engine->conflicts().value()[0].resolution, ConflictResolution::TakeSourceRequested);
  {
    Capture out, err;
    EXPECT_EQ(journal_cli::resolveConflict(path, "999", "target", out.file(), err.file()), journal_cli::kNotFound);
  }
  ASSERT_TRUE(engine->markResolved(id));
  {
    Capture out, err;
    EXPECT_EQ(journal_cli::resolveConflict(path, std::to_string(id), "target", out.file(), err.file()),
              journal_cli::kRuntimeError);
    EXPECT_NE(err.text().find("already resolved"), std::string::npos) << err.text();
  }
  {
    Capture out, err;
    EXPECT_EQ(journal_cli::listConflicts(path, false, out.file(), err.file()), journal_cli::kOk);
    EXPECT_NE(out.text().find("no unresolved conflicts"), std::string::npos) << out.text();
  }
  {
    Capture out, err;
    EXPECT_EQ(journal_cli::conflictsCommand(path, std::vector<std::string>{"list", "--all"}, out.file(), err.file()),
              journal_cli::kOk);
    EXPECT_NE(out.text().find("resolved"), std::string::npos) << out.text();
  }
  for (const auto& args : std::vector<std::vector<std::string>>{{"resolve", "1"}, {"resolve", "1", "--take"},
                                                                 {"list", "--none"}, {"resolve"}}) {
    Capture out, err;
    EXPECT_EQ(journal_cli::conflictsCommand(path, args, out.file(), err.file()), journal_cli::kUsage);
    EXPECT_NE(err.text().find("usage: ipcsync conflicts"), std::string::npos) << err.text();
  }
}

TEST_F(OperatorTest, CommandsOnAMissingJournalSaySoAndCreateNothing) {
  const auto path = m_dir.path() / "nowhere" / "journal.db";
  Capture out, err;
  EXPECT_EQ(journal_cli::listDeadLetters(path, out.file(), err.file()), journal_cli::kRuntimeError);
  EXPECT_NE(err.text().find("no journal at " + path.string()), std::string::npos) << err.text();
  EXPECT_EQ(journal_cli::listConflicts(path, true, out.file(), err.file()), journal_cli::kRuntimeError);
  EXPECT_FALSE(std::filesystem::exists(path.parent_path()));
}

}  // namespace
}  // namespace ipcsync::test
