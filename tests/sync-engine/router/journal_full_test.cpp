// A full journal: a small byte bound and a subscriber that is down. The source is held back (not
// acknowledged), a warning comes before the bound is reached and another when it is, the sync
// engine keeps at most a bounded amount of the source's change-sets in memory however much more
// the source writes, `ipcsync status --json` shows it, and once the subscriber is back and has
// drained the journal every change arrives exactly once. The test plays the supervisor: it
// starts again the hosts that end (ipcsyncd would).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <unistd.h>
#include <nlohmann/json.hpp>
#include <thread>

#include "../run_program.h"
#include "daemon_fixture.h"

namespace ipcsync::sync::test {
namespace {

using namespace std::chrono_literals;


// `count` transactions of 8 accounts with 1 KiB names each, a little apart so that crm (polling
// every 5 ms) mostly cuts each into a change-set of its own (about 9 KiB).
void writeAccounts(const std::filesystem::path& db, int& nextId, int count) {
  const std::string filler(1024, 'x');
  for (int t = 0; t < count; ++t) {
    std::this_thread::sleep_for(15ms);
    std::string sql = "BEGIN;";
    for (int i = 0; i < 8; ++i, ++nextId)
      sql += "INSERT INTO accounts VALUES(" + std::to_string(nextId) + ",'" + filler + std::to_string(nextId) +
             "','north',NULL," + std::to_string(nextId) + ");";
    exec(db, sql + "COMMIT;");
  }
}

TEST_F(SyncE2eTest, FullJournalHoldsTheSourceBackWithBoundedMemoryAndLosesNothing) {
  constexpr std::uint64_t kMaxBytes = 1024 * 1024;
  constexpr std::uint64_t kHeldBound = kMaxBytes / 4;  // capture.cpp: a quarter of the journal's bound
  auto crm = startHost("crm", "crm");
  auto crm2 = startHost("crm2", "crm");
  auto sync = startSync(R"([{"name":"pair","from":"crm","to":["crm2"],"tables":["accounts"]}])",
                        R"(,"max_bytes":1048576,"warn_at_percent":50,"group_commit_max":4)");
  ASSERT_TRUE(connected(*sync)) << log("sync");
  ASSERT_TRUE(eventually([&] { return readJson(statusPath())["journal"].value("disk_free_bytes", 0ull) > 0; }, 10s))
      << readJson(statusPath()).dump(1);
  EXPECT_EQ(readJson(statusPath())["journal"]["disk_fills_first"], false);
  int nextId = 1;
  writeAccounts(db("crm"), nextId, 2);
  ASSERT_TRUE(eventually([&] { return query(db("crm2"), "SELECT count(*) FROM accounts") == "16\n"; }, 30s)) << log("sync");

  // The subscriber goes away: its cursor stops, and the journal fills.
  crm2->signalAndWait(SIGKILL);
  ASSERT_TRUE(gone("plugin.crm2"));
  const pid_t syncPid = sync->pid();
  writeAccounts(db("crm"), nextId, 130);  // about 1.2 MiB: past the bound
  ASSERT_TRUE(eventually([&] { return readJson(statusPath())["journal"]["full"] == true; }, 30s))
      << readJson(statusPath()).dump(1) << log("sync");
  const long rssAtFull = residentKib(syncPid);
  // Six times the memory bound more, while the journal stays full.
  std::uint64_t mostHeld = 0;
  for (int round = 0; round < 16; ++round) {
    writeAccounts(db("crm"), nextId, 12);
    auto s = readJson(statusPath());
    for (const auto& src : s["sources"])
      if (src["instance"] == "crm") mostHeld = std::max(mostHeld, src.value("held_bytes", std::uint64_t{0}));
  }
  // How busy the sync engine is while it waits for room (printed, not asserted).
  const auto cpuTicks = [&] {
    std::ifstream in("/proc/" + std::to_string(syncPid) + "/stat");
    std::string stat;
    std::getline(in, stat);
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string f;
    long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {
      if (i == 14) utime = std::stol(f);
      if (i == 15) stime = std::stol(f);
    }
    return utime + stime;
  };
  const long ticksBefore = cpuTicks();
  std::this_thread::sleep_for(1000ms);
  std::printf("sync engine CPU while the journal is full and nothing is written: %ld%%\n",
              (cpuTicks() - ticksBefore) * 100 / sysconf(_SC_CLK_TCK));
  auto full = readJson(statusPath());
  const long rssAfter = residentKib(syncPid);
  std::printf("sync engine RSS %ld KiB when the journal filled, %ld KiB after %d KiB more were written; at most %llu "
              "bytes held in memory\n",
              rssAtFull, rssAfter, 16 * 12 * 9, static_cast<unsigned long long>(mostHeld));
  nlohmann::json source;
  for (const auto& src : full["sources"])
    if (src["instance"] == "crm") source = src;
  ASSERT_FALSE(source.is_null()) << full.dump(1);
  EXPECT_TRUE(source["held_back"].get<bool>()) << full.dump(1);
  EXPECT_GT(source.value("dropped_while_full", std::uint64_t{0}), 0u) << full.dump(1);
  // At most the bound, plus the one change-set that crossed it.
  EXPECT_LE(mostHeld, kHeldBound + 64 * 1024) << "the change-sets held in memory while the journal is full are bounded";
  EXPECT_LE(full["journal"]["bytes"].get<std::uint64_t>(), kMaxBytes);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // (ASan's quarantine keeps freed memory resident, so RSS says nothing there.)
  EXPECT_LT(rssAfter - rssAtFull, 2048) << "RSS grew by " << rssAfter - rssAtFull << " KiB";
#endif
  // Warned before the bound (nearly full), then when full, then when it stopped keeping.
  const auto text = log("sync");
  const auto nearly = text.find("a subscriber is behind");
  const auto heldBack = text.find("journal full: ");
  const auto dropping = text.find("are not kept but stay with the host");
  EXPECT_NE(nearly, std::string::npos) << text;
  EXPECT_NE(heldBack, std::string::npos) << text;
  EXPECT_NE(dropping, std::string::npos) << text;
  EXPECT_LT(nearly, heldBack) << text;
  // `ipcsync status --json` carries it.
  const auto [code, out] = ipcsync::test::runProgram({IPCSYNC_CLI, "status", "-n", ns, "--json"});
  ASSERT_EQ(code, 0) << out;
  auto status = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(status.is_discarded()) << out;
  EXPECT_EQ(status["sync"]["journal"]["full"], true) << out;

  // The subscriber comes back and drains. The source, whose session the sync engine closes once
  // the journal is below its warning level again, ends and is started again (as its supervisor
  // would), and emits again what was not kept; if that refills the journal, again.
  crm2 = startHost("crm2", "crm");
  writeAccounts(db("crm"), nextId, 2);
  const std::string expected = std::to_string(nextId - 1) + "\n";
  int restarts = 0;
  ASSERT_TRUE(eventually([&] {
    if (!crm->running()) {
      EXPECT_EQ(crm->waitExit(0ms), 1) << "ends because its session was closed";
      if (!gone("plugin.crm")) return false;
      crm = startHost("crm", "crm");
      ++restarts;
    }
    return query(db("crm2"), "SELECT count(*) FROM accounts") == expected &&
           query(db("crm"), "SELECT * FROM accounts ORDER BY id") == query(db("crm2"), "SELECT * FROM accounts ORDER BY id");
  }, 90s)) << query(db("crm2"), "SELECT count(*), max(id) FROM accounts") << log("sync");
  std::printf("the source was restarted %d time(s) to emit again what was not kept\n", restarts);
  EXPECT_GE(restarts, 1);
  // sync.json is rewritten every 200 ms and retention runs after the cursors move: the journal
  // shows not full once both caught up with what the test already sees in the databases.
  nlohmann::json after;
  EXPECT_TRUE(eventually([&] {
    after = readJson(statusPath());
    return after.contains("journal") && !after["journal"]["full"].get<bool>();
  }, 20s)) << after.dump(1);
  EXPECT_EQ(after["routes"][0]["conflicts"], 0) << after.dump(1);  // nothing applied twice
  EXPECT_EQ(after["routes"][0]["dead_letters"], 0) << after.dump(1);
  EXPECT_EQ(sync->signalAndWait(SIGTERM), 0) << log("sync");
}

TEST_F(SyncE2eTest, AChangeSetLargerThanTheWholeJournalHoldsOnlyItsSourceBack) {
  auto crm = startHost("crm", "crm");
  auto crm2 = startHost("crm2", "crm");
  auto crm3 = startHost("crm3", "crm");
  auto sync = startSync(R"([{"name":"one","from":"crm","to":["crm3"],"tables":["accounts"]},
                            {"name":"two","from":"crm2","to":["crm3"],"tables":["accounts"]}])",
                        R"(,"max_bytes":65536,"piece_bytes":16384)");
  ASSERT_TRUE(connected(*sync)) << log("sync");
  // One transaction of about 100 KiB: one change-set the journal can never hold.
  int nextId = 1;
  std::string sql = "BEGIN;";
  for (int i = 0; i < 100; ++i, ++nextId)
    sql += "INSERT INTO accounts VALUES(" + std::to_string(nextId) + ",'" + std::string(1000, 'x') + "','north',NULL,1);";
  exec(db("crm"), sql + "COMMIT;");
  ASSERT_TRUE(eventually([&] { return log("sync").find("can never be journaled") != std::string::npos || !sync->running(); },
                         30s)) << log("sync");
  EXPECT_TRUE(sync->running()) << "the sync engine carries on: " << log("sync");
  // The other source is not held back.
  exec(db("crm2"), "INSERT INTO accounts VALUES(5000000,'from crm2','south',NULL,1);");
  EXPECT_TRUE(eventually([&] { return query(db("crm3"), "SELECT id FROM accounts") == "5000000\n"; }, 30s)) << log("sync");
  // sync.json says which change-set holds crm back.
  EXPECT_TRUE(eventually([&] {
    auto status = readJson(statusPath());
    for (const auto& src : status["sources"])
      if (src["instance"] == "crm") return src.value("oversized_changeset", std::uint64_t{0}) == 1u;
    return false;
  }, 10s)) << readJson(statusPath()).dump(1);
  EXPECT_EQ(sync->signalAndWait(SIGTERM), 0) << log("sync");
}

// What ipcsync-sync itself reports of the disk under the journal (housekeeping, once a second):
// the free space, and whether the disk would fill before the journal reaches journal.max_bytes,
// with one warning in the log. (The test above shows the other answer, with a 1 MiB bound.)
TEST_F(SyncE2eTest, StatusShowsTheDisksFreeSpaceAndWhetherItFillsBeforeTheJournalsBound) {
  struct statvfs fs {};
  ASSERT_EQ(::statvfs(dir.path().c_str(), &fs), 0);
  const std::uint64_t freeNow = std::uint64_t{fs.f_bavail} * fs.f_frsize;
  const auto nearFree = [&](const nlohmann::json& journal) {
    const std::uint64_t shown = journal.value("disk_free_bytes", std::uint64_t{0});
    return shown + (256u << 20) >= freeNow && shown <= freeNow + (256u << 20);  // others write too
  };
  auto crm = startHost("crm", "crm");
  auto crm2 = startHost("crm2", "crm");
  // A bound a tebibyte above the free space: the disk fills first.
  const std::uint64_t beyond = freeNow + (1ull << 40);
  auto sync = startSync(R"([{"name":"pair","from":"crm","to":["crm2"],"tables":["accounts"]}])",
                        R"(,"max_bytes":)" + std::to_string(beyond));
  ASSERT_TRUE(connected(*sync)) << log("sync");
  ASSERT_TRUE(eventually([&] { return readJson(statusPath())["journal"]["disk_fills_first"] == true; }, 10s))
      << readJson(statusPath()).dump(1) << log("sync");
  EXPECT_TRUE(nearFree(readJson(statusPath())["journal"])) << "free " << freeNow;
  std::this_thread::sleep_for(2500ms);  // two more housekeeping rounds: still one warning
  const std::string text = log("sync");
  std::size_t warnings = 0;
  for (auto at = text.find("fills before the bound"); at != std::string::npos; at = text.find("fills before the bound", at + 1))
    ++warnings;
  EXPECT_EQ(warnings, 1u) << text;
}

}  // namespace
}  // namespace ipcsync::sync::test
