// The host's wake-up (plugin ABI 1.1, set_wake_fd), with the real ipcsync-plugin-host served by a
// real engine: a plugin's descriptor that becomes readable makes the host poll it at once, not at
// the next periodic poll (set to a minute here, so only a wake-up can explain an emit within the
// test's deadline); the plugin's own writes do not make it spin; a plugin that never reads its
// descriptor costs polls per interval, not a busy loop; a plugin of ABI 1.0 loads and is polled.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

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

// Far longer than any deadline below: a change that arrives in time was not found by this poll.
const std::string kMinutePoll = "60000";



w::Kind kindOf(const std::vector<std::byte>& frame) {
  auto k = w::peekKind(frame);
  EXPECT_TRUE(k) << k.error();
  return k.value_or(w::Kind::Failure);
}
std::string failureOf(const std::vector<std::byte>& reply) {
  auto f = w::decode<w::Failure>(reply);
  return f ? f->message : "(not a Failure frame)";
}

// Writes `text` into the FIFO at `path` (its reader, the plugin, holds it open).
void writeFifo(const std::filesystem::path& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(fd, 0) << "cannot open the FIFO " << path << ": " << std::strerror(errno);
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
}

class HostWakeTest : public NamespaceTest {
 protected:
  std::unique_ptr<HostProcess> startHost(const std::string& plugin, const std::string& instance, const std::string& pollMs,
                                         std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--plugin",    plugin,      "--instance",    instance,
                                     "--namespace", ns,          "--runtime-dir", dir.path().string(),
                                     "--data-dir",  (dir.path() / instance).string(), "--poll-ms", pollMs};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<HostProcess>(args);
  }
  std::filesystem::path fifo() {
    auto path = dir.path() / "wake.fifo";
    EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0) << std::strerror(errno);
    return path;
  }
  static std::uint64_t polls(SyncSide& sync) {
    auto r = sync.request(w::Kind::LastApplied, w::LastAppliedRequest{"__polls"});
    EXPECT_TRUE(r) << r.error();
    if (!r) return 0;
    auto s = w::decode<w::Sequence>(*r);
    EXPECT_TRUE(s) << s.error();
    return s ? s->sequence : 0;
  }
};

TEST_F(HostWakeTest, AReadableWakeDescriptorIsPolledAtOnceNotAtThePeriodicPoll) {
  startEngine("wake");
  const auto path = fifo();
  auto host = startHost(testPlugin("echo").string(), "w", kMinutePoll, {"--setting", "wake_fifo=" + path.string()});
  auto sync = SyncSide::open(ns, dir.path(), "plugin.w");
  ASSERT_TRUE(sync) << sync.error() << "\n" << host->log();
  auto started = sync->request(w::Kind::Start, w::Start{0});
  ASSERT_TRUE(started) << started.error();
  ASSERT_EQ(kindOf(*started), w::Kind::Ok) << failureOf(*started);
  // Let the first periodic poll (right after Start) pass; the next one is a minute away.
  std::this_thread::sleep_for(100ms);

  writeFifo(path, "hello");
  auto m = sync->next(20s);
  ASSERT_TRUE(m) << "nothing emitted: the host waited for its periodic poll\n" << m.error() << "\n" << host->log();
  ASSERT_EQ(kindOf(*m), w::Kind::Emit);
  EXPECT_EQ(textOf(w::decode<w::Envelope>(*m)->data), "hello");
  // And again: the wake-up is not a one-off.
  writeFifo(path, "again");
  auto m2 = sync->next(20s);
  ASSERT_TRUE(m2) << m2.error() << "\n" << host->log();
  EXPECT_EQ(textOf(w::decode<w::Envelope>(*m2)->data), "again");
}

TEST_F(HostWakeTest, ThePluginsOwnWritesToItsWakeDescriptorDoNotMakeTheHostSpin) {
  startEngine("wakeown");
  const auto path = fifo();
  auto host = startHost(testPlugin("echo").string(), "o", kMinutePoll, {"--setting", "wake_fifo=" + path.string()});
  auto sync = SyncSide::open(ns, dir.path(), "plugin.o");
  ASSERT_TRUE(sync) << sync.error() << "\n" << host->log();
  ASSERT_EQ(kindOf(*sync->request(w::Kind::Start, w::Start{0})), w::Kind::Ok);
  // Twenty applies that each write to the plugin's own wake descriptor (as a database plugin's
  // apply commits to the file it watches): each may wake the host once.
  for (std::uint64_t i = 1; i <= 20; ++i) {
    auto r = sync->request(w::Kind::Apply, applyEnvelope("touch", i, bytesOf("x")));
    ASSERT_TRUE(r) << r.error();
    ASSERT_EQ(kindOf(*r), w::Kind::ApplyResult) << failureOf(*r);
  }
  std::this_thread::sleep_for(200ms);
  const auto before = polls(*sync);
  EXPECT_LE(before, 1u + 20u * 2u) << "more polls than wake-ups";
  std::this_thread::sleep_for(1s);
  const auto after = polls(*sync);
  EXPECT_LE(after - before, 1u) << "the host kept polling an idle plugin: " << after - before << " polls in an idle second";
  EXPECT_FALSE(sync->next(0ms)) << "the plugin's own writes were emitted";
}

TEST_F(HostWakeTest, ADescriptorThePluginNeverReadsCostsAFewPollsPerIntervalNotABusyLoop) {
  startEngine("wakenodrain");
  const auto path = fifo();
  auto host = startHost(testPlugin("echo").string(), "n", "100",
                        {"--setting", "wake_fifo=" + path.string(), "--setting", "wake_no_drain=1"});
  auto sync = SyncSide::open(ns, dir.path(), "plugin.n");
  ASSERT_TRUE(sync) << sync.error() << "\n" << host->log();
  ASSERT_EQ(kindOf(*sync->request(w::Kind::Start, w::Start{0})), w::Kind::Ok);
  writeFifo(path, "never read");
  std::this_thread::sleep_for(200ms);
  const auto before = polls(*sync);
  std::this_thread::sleep_for(1s);
  const auto after = polls(*sync);
  // About 10 periodic polls and one wake-up after each; a busy loop makes tens of thousands.
  EXPECT_LE(after - before, 60u) << "the host spun on a descriptor that stays readable";
  EXPECT_GE(after - before, 1u) << "the periodic poll stopped";
  EXPECT_THAT(host->log(), HasSubstr("stayed readable"));
}

TEST_F(HostWakeTest, APluginOfAbi10LoadsAndIsPolled) {
  auto described = runProgram(pluginHostPath(), {"--plugin", testPlugin("echo10").string(), "--describe"});
  ASSERT_EQ(described.code, 0) << described.err;
  EXPECT_THAT(described.out, HasSubstr("\"abi\":\"1.0\""));

  startEngine("wake10");
  auto host = startHost(testPlugin("echo10").string(), "old", "2");
  auto sync = SyncSide::open(ns, dir.path(), "plugin.old");
  ASSERT_TRUE(sync) << sync.error() << "\n" << host->log();
  ASSERT_EQ(kindOf(*sync->request(w::Kind::Start, w::Start{0})), w::Kind::Ok);
  auto told = sync->request(w::Kind::Apply, applyEnvelope("tell", 1, bytesOf("polled")));
  ASSERT_TRUE(told) << told.error();
  ASSERT_EQ(kindOf(*told), w::Kind::ApplyResult) << failureOf(*told);
  auto m = sync->next(20s);
  ASSERT_TRUE(m) << m.error() << "\n" << host->log();
  EXPECT_EQ(textOf(w::decode<w::Envelope>(*m)->data), "polled");
}

// crm, the real plugin: a commit by another process (the sqlite3 shell) is emitted without waiting
// for the periodic poll, and crm's own applies and acknowledgements do not keep the host polling.
TEST_F(HostWakeTest, CrmEmitsACommitByAnotherProcessWithoutWaitingForThePeriodicPoll) {
  startEngine("wakecrm");
  const auto db = dir.path() / "crm.db";
  auto host = startHost(IPCSYNC_CRM_PLUGIN, "crm", kMinutePoll, {"--setting", "database=" + db.string()});
  auto sync = SyncSide::open(ns, dir.path(), "plugin.crm");
  ASSERT_TRUE(sync) << sync.error() << "\n" << host->log();
  auto started = sync->request(w::Kind::Start, w::Start{0});
  ASSERT_TRUE(started) << started.error();
  ASSERT_EQ(kindOf(*started), w::Kind::Ok) << failureOf(*started);
  std::this_thread::sleep_for(100ms);

  std::vector<std::vector<std::byte>> captured;
  for (int i = 1; i <= 3; ++i) {
    const auto sql = "INSERT INTO accounts VALUES (" + std::to_string(i) + ", 'Acme', 'north', 'retail', 100);";
    auto shell = runProgram("/usr/bin/sqlite3", {"-bail", "-cmd", ".timeout 10000", db.string(), sql});
    ASSERT_EQ(shell.code, 0) << shell.err;
    auto m = sync->next(20s);
    ASSERT_TRUE(m) << "commit " << i << " was not emitted: the host waited for its periodic poll\n"
                   << m.error() << "\n" << host->log();
    ASSERT_EQ(kindOf(*m), w::Kind::Emit);
    auto e = w::decode<w::Envelope>(*m);
    ASSERT_TRUE(e) << e.error();
    EXPECT_EQ(e->sequence, static_cast<std::uint64_t>(i));
    captured.emplace_back(e->data.begin(), e->data.end());
    auto acked = sync->request(w::Kind::Acknowledge, w::Acknowledge{e->sequence});
    ASSERT_TRUE(acked) << acked.error();
    ASSERT_EQ(kindOf(*acked), w::Kind::Ok) << failureOf(*acked);
  }
  // Applies commit to the same files the watch is on: each may wake the host once, no more.
  for (std::uint64_t i = 1; i <= 10; ++i) {
    auto r = sync->request(w::Kind::Apply, applyEnvelope("back", i, captured[i % captured.size()]));
    ASSERT_TRUE(r) << r.error();
    ASSERT_EQ(kindOf(*r), w::Kind::ApplyResult) << failureOf(*r);
  }
  std::this_thread::sleep_for(1s);
  EXPECT_FALSE(sync->next(0ms)) << "crm emitted what it applied";
  auto stopped = sync->request(w::Kind::Stop, w::Empty{});
  ASSERT_TRUE(stopped) << stopped.error();
  ASSERT_EQ(host->wait(), 0) << host->log();
  // Three commits, three acknowledgements and ten applies. A commit's event may come before the
  // commit is visible (the shell fsyncs under synchronous=FULL), and crm then asks to be polled
  // again every 100 us for a few milliseconds: tens of polls per commit, where a busy loop over
  // the idle second alone would have made hundreds of thousands.
  const std::string log = host->log();
  const auto at = log.find("was polled ");
  ASSERT_NE(at, std::string::npos) << log;
  unsigned long long polled = 0, woken = 0;
  ASSERT_EQ(std::sscanf(log.c_str() + at, "was polled %llu times, %llu of them woken", &polled, &woken), 2) << log;
  EXPECT_LE(polled, 1000u) << log;
  EXPECT_GE(woken, 3u) << log;
}

}  // namespace
}  // namespace ipcsync::test
