// The real ipcsync-plugin-host with the echo plugin, served by a real engine; the test plays the
// sync engine (a Client named "sync") and speaks the wire protocol to it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstring>
#include <filesystem>

#include <ipcsync/plugin.h>

#include "host_fixture.h"
#include "ipcsync/plugin_host/wire.h"
#include "namespace_test.h"
#include "processes.h"
#include "wire_helpers.h"

namespace ipcsync::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
namespace w = ipcsync::wire;



class HostProcessTest : public NamespaceTest {
 protected:
  std::unique_ptr<HostProcess> startHost(const std::string& instance, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--plugin",      testPlugin("echo").string(), "--instance", instance,
                                     "--namespace",   ns,
                                     "--runtime-dir", dir.path().string(),         "--data-dir", (dir.path() / instance).string(),
                                     "--poll-ms",     "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<HostProcess>(args);
  }
  // The reply's kind; fails the test on a malformed reply.
  static w::Kind kindOf(const std::vector<std::byte>& reply) {
    auto k = w::peekKind(reply);
    EXPECT_TRUE(k) << k.error();
    return k.value_or(w::Kind::Failure);
  }
  static std::string failureOf(const std::vector<std::byte>& reply) {
    auto f = w::decode<w::Failure>(reply);
    return f ? f->message : "(not a Failure frame: " + f.error() + ")";
  }
};

TEST_F(HostProcessTest, ServesStartApplySnapshotLastAppliedAcknowledgeAndEmitsWhatItIsTold) {
  startEngine("hserve");
  auto host = startHost("e1");
  auto sync = SyncSide::open(ns, dir.path(), "plugin.e1");
  ASSERT_TRUE(sync) << sync.error() << "\n" << host->log();

  auto described = sync->request(w::Kind::Describe, w::Empty{});
  ASSERT_TRUE(described) << described.error();
  ASSERT_EQ(kindOf(*described), w::Kind::Description);
  EXPECT_THAT(w::decode<w::Description>(*described)->json, HasSubstr("\"name\":\"echo\""));

  // Before Start, everything but Describe/Start/Stop is refused.
  auto early = sync->request(w::Kind::LastApplied, w::LastAppliedRequest{"r"});
  ASSERT_TRUE(early);
  ASSERT_EQ(kindOf(*early), w::Kind::Failure);
  EXPECT_THAT(failureOf(*early), HasSubstr("LastApplied before Start"));

  auto started = sync->request(w::Kind::Start, w::Start{10});
  ASSERT_TRUE(started) << started.error();
  ASSERT_EQ(kindOf(*started), w::Kind::Ok) << failureOf(*started);

  // Apply on route "r": applied, then the same sequence again is a duplicate.
  const auto data = bytesOf("row 1");
  auto applied = sync->request(w::Kind::Apply, applyEnvelope("r", 5, data));
  ASSERT_TRUE(applied);
  ASSERT_EQ(kindOf(*applied), w::Kind::ApplyResult) << failureOf(*applied);
  EXPECT_EQ(w::decode<w::ApplyResult>(*applied)->status, static_cast<std::uint32_t>(IPCSYNC_APPLIED));
  EXPECT_EQ(w::decode<w::ApplyResult>(*applied)->changesApplied, 1u);
  auto again = sync->request(w::Kind::Apply, applyEnvelope("r", 5, data));
  ASSERT_TRUE(again);
  EXPECT_EQ(w::decode<w::ApplyResult>(*again)->status, static_cast<std::uint32_t>(IPCSYNC_DUPLICATE));

  auto last = sync->request(w::Kind::LastApplied, w::LastAppliedRequest{"r"});
  ASSERT_TRUE(last);
  ASSERT_EQ(kindOf(*last), w::Kind::Sequence);
  EXPECT_EQ(w::decode<w::Sequence>(*last)->sequence, 5u);

  // Tell it to emit three change-sets: they arrive as Emit frames with sequences 11, 12, 13.
  for (const char* s : {"one", "two", "three"}) {
    const auto told = bytesOf(s);
    auto r = sync->request(w::Kind::Apply, applyEnvelope("tell", 1, told));
    ASSERT_TRUE(r);
    ASSERT_EQ(kindOf(*r), w::Kind::ApplyResult) << failureOf(*r);
  }
  std::uint64_t expect = 11;
  for (const char* s : {"one", "two", "three"}) {
    auto m = sync->next();
    ASSERT_TRUE(m) << m.error();
    ASSERT_EQ(kindOf(*m), w::Kind::Emit);
    auto e = w::decode<w::Envelope>(*m);
    ASSERT_TRUE(e) << e.error();
    EXPECT_EQ(e->origin, "e1");
    EXPECT_EQ(e->sequence, expect++);
    EXPECT_FALSE(e->route.has_value());
    EXPECT_EQ(textOf(e->data), s);
  }

  auto ack = sync->request(w::Kind::Acknowledge, w::Acknowledge{12});
  ASSERT_TRUE(ack);
  ASSERT_EQ(kindOf(*ack), w::Kind::Ok) << failureOf(*ack);
  auto acked = sync->request(w::Kind::LastApplied, w::LastAppliedRequest{"__acknowledged"});
  EXPECT_EQ(w::decode<w::Sequence>(*acked)->sequence, 12u);
  auto tooFar = sync->request(w::Kind::Acknowledge, w::Acknowledge{99});
  ASSERT_EQ(kindOf(*tooFar), w::Kind::Failure);
  EXPECT_THAT(failureOf(*tooFar), HasSubstr("beyond the last emitted sequence 13"));

  // A second apply on "r", then a snapshot: pieces first (one per apply), then Done(as_of).
  const auto data2 = bytesOf("row 2");
  ASSERT_TRUE(sync->request(w::Kind::Apply, applyEnvelope("r", 6, data2)));
  auto done = sync->request(w::Kind::Snapshot, w::SnapshotRequest{"items", "r", 4096});
  ASSERT_TRUE(done) << done.error();
  ASSERT_EQ(kindOf(*done), w::Kind::SnapshotDone) << failureOf(*done);
  EXPECT_EQ(w::decode<w::SnapshotDone>(*done)->asOf, 13u);
  for (const char* s : {"row 1", "row 2"}) {
    auto piece = sync->next(1s);
    ASSERT_TRUE(piece) << piece.error();
    ASSERT_EQ(kindOf(*piece), w::Kind::SnapshotPiece);
    auto e = w::decode<w::Envelope>(*piece);
    EXPECT_EQ(textOf(e->data), s);
    EXPECT_EQ(e->pieceCount, 2u);
  }
  auto noTable = sync->request(w::Kind::Snapshot, w::SnapshotRequest{"nope", "r", 4096});
  ASSERT_EQ(kindOf(*noTable), w::Kind::Failure);
  EXPECT_EQ(w::decode<w::Failure>(*noTable)->status, static_cast<std::uint32_t>(IPCSYNC_EUNSUPPORTED));

  // A parked conflict travels as a Conflict frame before the apply's result.
  const auto data3 = bytesOf("contested");
  auto parked = sync->request(w::Kind::Apply, applyEnvelope("r", 7, data3, IPCSYNC_CONFLICT_PARK));
  ASSERT_TRUE(parked);
  EXPECT_EQ(w::decode<w::ApplyResult>(*parked)->status, static_cast<std::uint32_t>(IPCSYNC_CONFLICTS));
  auto conflict = sync->next(1s);
  ASSERT_TRUE(conflict) << conflict.error();
  ASSERT_EQ(kindOf(*conflict), w::Kind::Conflict);
  auto c = w::decode<w::Conflict>(*conflict);
  EXPECT_EQ(c->keyJson, "{\"seq\":7}");
  EXPECT_EQ(c->origin, "crm");
  EXPECT_EQ(textOf(c->change), "contested");

  auto stopped = sync->request(w::Kind::Stop, w::Empty{});
  ASSERT_TRUE(stopped);
  EXPECT_EQ(kindOf(*stopped), w::Kind::Ok);
  EXPECT_EQ(host->wait(), 0) << host->log();
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "e1" / "echo.created"));
}

TEST_F(HostProcessTest, MalformedFramesGetAnErrorReplyAndTheHostKeepsServing) {
  startEngine("hmalformed");
  auto host = startHost("e2");
  auto sync = SyncSide::open(ns, dir.path(), "plugin.e2");
  ASSERT_TRUE(sync) << sync.error();
  ASSERT_EQ(kindOf(*sync->request(w::Kind::Start, w::Start{0})), w::Kind::Ok);

  const std::vector<std::vector<std::byte>> bad = {
      {std::byte{1}},                                                  // shorter than a header
      {std::byte{7}, std::byte{3}, std::byte{0}, std::byte{0}},        // another wire version
      {std::byte{1}, std::byte{250}, std::byte{0}, std::byte{0}},      // unknown kind
      [] {                                                             // an Apply cut short
        auto f = w::encode(w::Kind::Apply, applyEnvelope("r", 1, bytesOf("abcdef")));
        f.resize(f.size() - 3);
        return f;
      }(),
      w::encode(w::Kind::Emit, w::Envelope{}),                         // a kind the host does not serve
  };
  const std::vector<const char*> says = {"shorter than its 4-byte header", "wire version 7", "unknown kind 250",
                                         "field 'data'", "does not serve Emit"};
  for (std::size_t i = 0; i < bad.size(); ++i) {
    auto reply = sync->request(bad[i]);
    ASSERT_TRUE(reply) << i << ": " << reply.error() << "\n" << host->log();
    ASSERT_EQ(kindOf(*reply), w::Kind::Failure) << i;
    EXPECT_EQ(w::decode<w::Failure>(*reply)->status, static_cast<std::uint32_t>(IPCSYNC_EINVAL));
    EXPECT_THAT(failureOf(*reply), HasSubstr(says[i])) << i;
  }
  // Nothing was lost: the host still applies.
  auto applied = sync->request(w::Kind::Apply, applyEnvelope("r", 1, bytesOf("ok")));
  ASSERT_TRUE(applied);
  EXPECT_EQ(kindOf(*applied), w::Kind::ApplyResult) << failureOf(*applied);
  EXPECT_FALSE(host->poll().has_value());
}

// The sync engine busy for longer than a host's 5 s send timeout (a long snapshot elsewhere) used
// to cost the answer the host was sending then: it was logged ("cannot reply") and dropped, and
// the route waited for it until the session ended. Here the sync side sends requests and reads
// nothing until the host has waited over 5 s for room (the answers fill the sync side's ring, then
// the host's): every answer must still arrive.
TEST_F(HostProcessTest, AnAnswerTheSyncEngineCannotTakeForLongerThanTheSendTimeoutStillArrives) {
  startEngine("hbusy");
  auto host = startHost("e5");
  auto sync = SyncSide::open(ns, dir.path(), "plugin.e5");
  ASSERT_TRUE(sync) << sync.error();
  ASSERT_EQ(kindOf(*sync->request(w::Kind::Start, w::Start{0})), w::Kind::Ok);

  // Two rings of answers (the sync side's and the host's) and some more.
  const auto frame = w::encode(w::Kind::LastApplied, w::LastAppliedRequest{"r"});
  std::uint32_t sent = 0;
  for (std::uint32_t correlation = 1; correlation <= 3 * kRingCapacity; ++correlation) {
    auto loan = sync->client().loan(frame.size(), 1s);
    ASSERT_TRUE(loan) << loan.error().message();
    std::memcpy(loan->bytes().data(), frame.data(), frame.size());
    auto ok = sync->client().send(sync->session(), *loan, 5s, correlation);
    if (!ok) {  // the host stopped reading: it is waiting for room for an answer
      ASSERT_EQ(ok.error().code, Errc::Timeout) << ok.error().message();
      sync->client().abandon(std::move(*loan));
      break;
    }
    ++sent;
  }
  ASSERT_GT(sent, 2 * kRingCapacity) << "the answers did not fill both rings";
  // Read nothing until the host has waited longer than its send timeout (it says so).
  ASSERT_TRUE(waitFor([&] { return host->log().find("has not taken the answer") != std::string::npos; }, 60s))
      << host->log();

  std::vector<bool> answered(sent + 1, false);
  std::uint32_t received = 0;
  while (received < sent) {
    auto m = sync->client().receive(10s);
    ASSERT_TRUE(m) << received << " of " << sent << " answers: " << m.error().message() << "\n" << host->log();
    const std::uint32_t c = m->correlation();
    ASSERT_TRUE(c >= 1 && c <= sent && !answered[c]) << "correlation " << c;
    answered[c] = true;
    EXPECT_EQ(kindOf(std::vector<std::byte>(m->bytes().begin(), m->bytes().end())), w::Kind::Sequence);
    sync->client().release(std::move(*m));
    ++received;
  }
  EXPECT_THAT(host->log(), ::testing::Not(HasSubstr("cannot reply")));
  EXPECT_FALSE(host->poll().has_value());
}

TEST_F(HostProcessTest, APluginThatCrashesInApplyKillsOnlyItsHost) {
  startEngine("hcrash");
  auto crashing = startHost("bad", {"--setting", "crash_on_apply=1"});
  auto good = startHost("good");
  auto toBad = SyncSide::open(ns, dir.path(), "plugin.bad", "sync");
  ASSERT_TRUE(toBad) << toBad.error();
  ASSERT_EQ(kindOf(*toBad->request(w::Kind::Start, w::Start{0})), w::Kind::Ok);
  const pid_t badPid = crashing->pid();
  ASSERT_TRUE(hasRecord(badPid));

  auto reply = toBad->request(w::encode(w::Kind::Apply, applyEnvelope("r", 1, bytesOf("boom"))), 5s);
  EXPECT_FALSE(reply) << "a crashed host replied";
  EXPECT_EQ(crashing->wait(), 128 + SIGSEGV) << crashing->log();
  EXPECT_TRUE(waitFor([&] { return !hasRecord(badPid); }, 5s)) << "the engine did not reclaim the crashed host";

  // The other host, with its own session from the same sync engine, keeps answering.
  auto toGood = toBad->client().openSession("plugin.good", 5s);
  ASSERT_TRUE(toGood) << toGood.error().message();
  auto loan = toBad->client().loan(w::encodedSize(w::Kind::Start, w::Start{0}));
  ASSERT_TRUE(loan);
  w::encodeInto(loan->bytes(), w::Kind::Start, w::Start{0});
  auto answer = toBad->client().request(*toGood, *loan, 5s);
  ASSERT_TRUE(answer) << answer.error().message();
  EXPECT_EQ(w::peekKind(answer->bytes()).value(), w::Kind::Ok);
  toBad->client().release(std::move(*answer));
  EXPECT_FALSE(good->poll().has_value());
}

TEST_F(HostProcessTest, SigtermStopsTheHostCleanlyAndItDeregisters) {
  startEngine("hterm");
  auto host = startHost("t");
  auto sync = SyncSide::open(ns, dir.path(), "plugin.t");
  ASSERT_TRUE(sync) << sync.error();
  ASSERT_EQ(kindOf(*sync->request(w::Kind::Start, w::Start{0})), w::Kind::Ok);
  EXPECT_EQ(host->signal(SIGTERM), 0) << host->log();
  EXPECT_TRUE(waitFor([&] { return !registered("plugin.t"); }, 5s));
  EXPECT_THAT(host->log(), HasSubstr("stopping instance 't' on a signal"));
}

TEST_F(HostProcessTest, AFailedStartIsAnsweredThenTheHostExitsFour) {
  startEngine("hstart");
  auto host = startHost("s", {"--setting", "fail_start=1"});
  auto sync = SyncSide::open(ns, dir.path(), "plugin.s");
  ASSERT_TRUE(sync) << sync.error();
  auto r = sync->request(w::Kind::Start, w::Start{0});
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(kindOf(*r), w::Kind::Failure);
  EXPECT_THAT(failureOf(*r), HasSubstr("fail_start=1"));
  EXPECT_EQ(host->wait(), 4) << host->log();
}

// A request on a session other than the one that started the host (a sync engine that came back
// before the host noticed the old one go): the host must not serve it — what it emitted to the old
// session may not be journaled — but answer with a Failure and exit 1, so that it is restarted and
// started afresh from the journal. One client opens both sessions, so the order is certain.
TEST_F(HostProcessTest, ARequestOnANewSessionAfterStartMakesTheHostRestart) {
  startEngine("hnew");
  auto host = startHost("n");
  auto sync = SyncSide::open(ns, dir.path(), "plugin.n");
  ASSERT_TRUE(sync) << sync.error();
  auto started = sync->request(w::Kind::Start, w::Start{0});
  ASSERT_TRUE(started) << started.error();
  ASSERT_EQ(kindOf(*started), w::Kind::Ok);
  auto second = sync->client().openSession("plugin.n", 5s);
  ASSERT_TRUE(second) << second.error().message();
  const auto frame = w::encode(w::Kind::Describe, w::Empty{});
  auto loan = sync->client().loan(frame.size(), 5s);
  ASSERT_TRUE(loan) << loan.error().message();
  std::memcpy(loan->bytes().data(), frame.data(), frame.size());
  auto reply = sync->client().request(*second, *loan, 5s);
  ASSERT_TRUE(reply) << reply.error().message();
  const std::vector<std::byte> bytes(reply->bytes().begin(), reply->bytes().end());
  sync->client().release(std::move(*reply));
  EXPECT_EQ(kindOf(bytes), w::Kind::Failure) << "the host served a second session after Start";
  EXPECT_THAT(failureOf(bytes), HasSubstr("restarts"));
  EXPECT_EQ(host->wait(), 1) << host->log();
}

TEST_F(HostProcessTest, OnlyTheSyncPeerMayOpenASession) {
  startEngine("hpeer");
  auto host = startHost("p");
  auto stranger = SyncSide::open(ns, dir.path(), "plugin.p", "stranger");
  ASSERT_FALSE(stranger);
  EXPECT_THAT(stranger.error(), HasSubstr("refused"));
}

TEST_F(HostProcessTest, TheHostExitsOneWhenTheEngineDies) {
  startEngine("hdie");
  auto host = startHost("d");
  ASSERT_TRUE(waitFor([&] { return registered("plugin.d"); }, 10s)) << host->log();
  engine->stop(SIGKILL);
  EXPECT_EQ(host->wait(), 1) << host->log();
  EXPECT_THAT(host->log(), HasSubstr("lost the engine"));
}

}  // namespace
}  // namespace ipcsync::test
