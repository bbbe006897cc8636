// A crash of ipcsync-sync around a route's first snapshot, with real processes: two crm hosts, the
// sync engine, and a writer changing the source all along. The fail point IPCSYNC_FAILPOINT (read
// by ipcsync-sync, test only; docs/design/journal.md) makes the engine _exit(70) exactly in the
// window: after the subscriber committed the snapshot and before anything was streamed, or after
// the snapshot's floors were recorded and before its Apply was sent.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "sync_fixture.h"

namespace ipcsync::sync::test {
namespace {

using namespace std::chrono_literals;

// The route under test: the source's accounts and orders, snapshot first. `park` makes a change
// applied twice visible twice over: counted as a conflict and parked in the journal.
constexpr const char* kRoutes =
    R"([{"name":"snap","from":"crm","to":["crm2"],"tables":["accounts","orders"],"snapshot":true,"conflict":"park"}])";
// Entries stay in the journal (retention), so the test can check afterwards which ones the
// snapshot held.
constexpr const char* kJournal = R"(,"retention_s":3600)";

// Sets an environment variable for the processes started while it lives.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : m_name(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(m_name); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* m_name;
};

// Writes to the source's accounts and orders, one small transaction after another, on a
// thread of its own until stopped (also when the test fails and unwinds).
class Writer {
 public:
  Writer(std::filesystem::path db, std::uint64_t seed)
      : m_thread([this, db = std::move(db), seed] {
          for (std::uint64_t i = 0; !m_stop; ++i) {
            crmWorkload(db, seed + i, 1, 1);
            ++m_transactions;
            std::this_thread::sleep_for(1ms);
          }
        }) {}
  ~Writer() { stop(); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  void stop() {
    m_stop = true;
    if (m_thread.joinable()) m_thread.join();
  }
  std::uint64_t transactions() const { return m_transactions; }

 private:
  std::atomic<bool> m_stop{false};
  std::atomic<std::uint64_t> m_transactions{0};
  std::thread m_thread;
};

class SnapshotResumeTest : public SyncE2eTest {
 protected:
  // Rows the source holds before the route exists: enough that each table's snapshot takes a
  // while, so the writer's transactions land between the journal head the snapshot starts from
  // and the tables' as_of (ids from 2,000,000: the writer's are below).
  void preload() {
    // A host registers before its plugin has created the tables.
    for (const char* instance : {"crm", "crm2"})
      ASSERT_TRUE(eventually([&] {
        return query(db(instance), "SELECT count(*) FROM sqlite_schema WHERE name IN ('accounts', 'orders')") == "2\n";
      }, 30s)) << instance << ": " << log(instance);
    exec(db("crm"),
         "BEGIN;"
         "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 19999) "
         "INSERT INTO accounts SELECT 2000000 + i, 'preloaded ' || i, "
         "CASE i % 4 WHEN 0 THEN 'north' WHEN 1 THEN 'south' WHEN 2 THEN 'east' ELSE 'west' END, 'retail', 1 FROM n;"
         "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 39999) "
         "INSERT INTO orders SELECT 2000000 + i, 2000000 + i % 20000, 'widget', 1 + i % 7, 100 + i % 13, 1, 1 FROM n;"
         "COMMIT;");
  }

  // The new ipcsync-sync's sync.json shows the route connected, its cursor at the journal head
  // and nothing waiting from the source.
  bool drained(pid_t syncPid) const {
    const auto s = readJson(statusPath());
    if (!s.contains("pid") || s["pid"] != syncPid || !s.contains("routes") || s["routes"].empty()) return false;
    for (const auto& r : s["routes"])
      if (!r["connected"].get<bool>() || r["cursor"] != s["journal"]["head"]) return false;
    for (const auto& src : s["sources"])
      if (src["waiting"] != 0) return false;
    return true;
  }

  bool replicasEqual() const {
    return query(db("crm"), "SELECT * FROM accounts ORDER BY id") == query(db("crm2"), "SELECT * FROM accounts ORDER BY id") &&
           query(db("crm"), "SELECT * FROM orders ORDER BY id") == query(db("crm2"), "SELECT * FROM orders ORDER BY id");
  }

  // After ipcsync-sync ended: the hosts it had started end with their sessions (their supervisor
  // would restart them); start them again.
  void restartHosts() {
    for (auto* h : {&crm, &crm2}) EXPECT_NE((*h)->waitExit(30s), -1) << "a host outlived its sync engine";
    for (const char* n : {"plugin.crm", "plugin.crm2", "sync"}) ASSERT_TRUE(gone(n)) << n;
    crm = startHost("crm", "crm");
    crm2 = startHost("crm2", "crm");
  }

  // After the engine died in the window and came back: the subscriber equals the source row for
  // row, nothing was applied twice (no conflict counted or parked), nothing was dead-lettered.
  void expectExactlyOnce(Process& sync) {
    ASSERT_TRUE(eventually([&] { return replicasEqual() && drained(sync.pid()); }, 120s))
        << "source: " << crmChecksums(db("crm")) << "\nsubscriber: " << crmChecksums(db("crm2")) << "\n"
        << log("sync");
    // The counters of the Applies that made the replicas equal are in sync.json within 200 ms;
    // give it a full rewrite past the last one.
    const auto written = readJson(statusPath())["updated_us"];
    ASSERT_TRUE(eventually([&] { return readJson(statusPath())["updated_us"] != written; }, 10s));
    const auto route = readJson(statusPath())["routes"][0];
    EXPECT_EQ(route["conflicts"], 0) << route.dump() << "\n" << log("sync");
    EXPECT_EQ(route["dead_letters"], 0) << route.dump();
    EXPECT_EQ(query(journalPath(), "SELECT count(*) FROM conflicts"), "0\n")
        << query(journalPath(), "SELECT id, table_name, kind, sequence, key_json FROM conflicts LIMIT 20");
    EXPECT_EQ(query(journalPath(), "SELECT count(*) FROM dead_letters"), "0\n");
    // Caught up: nothing the snapshot holds is left to deliver, so housekeeping (once a second)
    // releases the record.
    EXPECT_TRUE(eventually([&] { return query(journalPath(), "SELECT count(*) FROM snapshots") == "0\n"; }, 30s))
        << query(journalPath(), "SELECT * FROM snapshots") << query(journalPath(), "SELECT * FROM cursors");
  }

  // A first ipcsync-sync whose only route carries contacts (nobody writes them): it journals the
  // preload and the writer's first change-sets, so the snapshot later starts from a head H > 0.
  void journalFirst() {
    auto sync = startSync(R"([{"name":"before","from":"crm","to":["crm2"],"tables":["contacts"]}])", kJournal);
    ASSERT_TRUE(eventually([&] {
      const auto s = readJson(statusPath());
      return drained(sync->pid()) && s["journal"]["head"].get<std::uint64_t>() >= 3;
    }, 60s)) << log("sync");
    ASSERT_EQ(sync->signalAndWait(SIGTERM), 0) << log("sync");
    restartHosts();
  }

  // The engine dies right after the subscriber answered the snapshot's Apply: the subscriber holds
  // the snapshot (LastApplied 2H+1), the engine's memory of what it holds is gone. The restarted
  // engine must take the floors from the journal and skip the source's entries the snapshot holds.
  void crashAfterTheSnapshotsApply(bool journalFirstWithAnotherRoute) {
    begin("snapshot resume");
    if (HasFatalFailure()) return;
    if (journalFirstWithAnotherRoute) {
      journalFirst();
      if (HasFatalFailure()) return;
    }
    auto sync = startSyncAt("after-snapshot-apply");
    ASSERT_EQ(sync->waitExit(180s), 70) << "the fail point was not reached\n" << log("sync");
    ASSERT_NE(log("sync").find("IPCSYNC_FAILPOINT=after-snapshot-apply"), std::string::npos) << log("sync");
    // What the journal recorded before the Apply: the head H and the largest as_of.
    const std::string head = firstLine(query(journalPath(), "SELECT head FROM snapshots WHERE route = 'snap'"));
    const std::string maxAsOf = firstLine(query(journalPath(), "SELECT max_as_of FROM snapshots WHERE route = 'snap'"));
    ASSERT_FALSE(head.empty()) << "no snapshot record\n" << log("sync");
    if (journalFirstWithAnotherRoute) {
      ASSERT_NE(head, "0");
    }
    ASSERT_EQ(firstLine(query(db("crm2"), "SELECT sequence FROM _ipcsync_applied WHERE route = 'snap'")),
              std::to_string(2 * std::stoull(head) + 1))
        << "the subscriber committed the snapshot (apply sequence 2H+1) before the engine died";

    restartHosts();
    sync = startSync(kRoutes, kJournal);
    ASSERT_TRUE(connected(*sync)) << log("sync");
    std::this_thread::sleep_for(500ms);  // a little more streaming after the restart
    writer->stop();
    expectExactlyOnce(*sync);
    EXPECT_NE(log("sync").find("'crm2' holds the snapshot of 'crm' taken at journal sequence " + head), std::string::npos)
        << log("sync");
    // The window the test is about was not empty: the source committed change-sets that were
    // journaled after the head the snapshot started from, at or below its as_of. Without the
    // floors from the journal they are delivered a second time.
    const std::string inWindow = firstLine(query(
        journalPath(), "SELECT count(*) FROM entries WHERE origin = 'crm' AND sequence > " + head +
                           " AND origin_sequence <= " + maxAsOf));
    std::printf("snapshot from journal head %s, largest as_of %s: %s change-set(s) of the source in the window; "
                "%llu written in all\n",
                head.c_str(), maxAsOf.c_str(), inWindow.c_str(),
                static_cast<unsigned long long>(writer->transactions()));
    EXPECT_NE(inWindow, "0") << "the writer committed nothing between the snapshot's head and its as_of; the window "
                                "was not exercised (head " << head << ", as_of " << maxAsOf << ")";
    EXPECT_EQ(crmTableRows(db("crm")), crmTableRows(db("crm2")));
    EXPECT_EQ(sync->signalAndWait(SIGTERM), 0) << log("sync");
  }

  static std::string firstLine(const std::string& rows) { return rows.substr(0, rows.find('\n')); }

  // How every test here begins: the two hosts, the preload, and the writer running.
  void begin(const char* what) {
    crm = startHost("crm", "crm");
    crm2 = startHost("crm2", "crm");
    preload();
    if (HasFatalFailure()) return;
    writer.emplace(db("crm"), testSeed(what));
  }
  // ipcsync-sync on the route under test, with a fail point.
  std::unique_ptr<Process> startSyncAt(const char* failPoint) {
    ScopedEnv env("IPCSYNC_FAILPOINT", failPoint);
    return startSync(kRoutes, kJournal);
  }

  std::unique_ptr<Process> crm, crm2;
  std::optional<Writer> writer;
};

TEST_F(SnapshotResumeTest, ACrashRightAfterTheSnapshotsApplyDeliversNothingTwice) {
  crashAfterTheSnapshotsApply(false);
}

TEST_F(SnapshotResumeTest, ACrashRightAfterTheSnapshotsApplyDeliversNothingTwiceWhenTheJournalHeldChangesBefore) {
  crashAfterTheSnapshotsApply(true);
}

// The engine dies after recording the floors and before sending the Apply: the subscriber has
// nothing. The restarted engine drops the stale record and takes the snapshot again.
TEST_F(SnapshotResumeTest, ACrashBeforeTheSnapshotsApplyTakesTheSnapshotAgain) {
  begin("snapshot retake");
  if (HasFatalFailure()) return;
  auto sync = startSyncAt("after-snapshot-record");
  ASSERT_EQ(sync->waitExit(180s), 70) << "the fail point was not reached\n" << log("sync");
  const std::string firstHead = query(journalPath(), "SELECT head FROM snapshots WHERE route = 'snap'");
  ASSERT_FALSE(firstHead.empty()) << log("sync");
  EXPECT_EQ(query(db("crm2"), "SELECT count(*) FROM accounts"), "0\n") << "nothing reached the subscriber";

  restartHosts();
  sync = startSync(kRoutes, kJournal);
  ASSERT_TRUE(connected(*sync)) << log("sync");
  std::this_thread::sleep_for(500ms);
  writer->stop();
  expectExactlyOnce(*sync);
  EXPECT_NE(log("sync").find("never reached 'crm2'"), std::string::npos) << log("sync");
  EXPECT_NE(log("sync").find("taking it again"), std::string::npos) << log("sync");
  EXPECT_EQ(crmTableRows(db("crm")), crmTableRows(db("crm2")));
  EXPECT_EQ(sync->signalAndWait(SIGTERM), 0) << log("sync");
}

// The subscriber applied the snapshot but its answer never came (a timeout; here a fail point
// drops it). Trying again must not take another snapshot over it (its rows meet the first's as
// conflicts) nor replace the floors of the one it holds (the change-sets between the two as_of
// would be skipped): the engine asks the subscriber first and keeps the first snapshot.
TEST_F(SnapshotResumeTest, ASnapshotWhoseAnswerNeverCameIsNotTakenAgainOverItself) {
  begin("snapshot unanswered");
  if (HasFatalFailure()) return;
  auto sync = startSyncAt("snapshot-apply-unanswered");
  ASSERT_TRUE(eventually([&] { return log("sync").find("snapshot-apply-unanswered: taking") != std::string::npos; },
                         120s)) << log("sync");
  ASSERT_TRUE(connected(*sync)) << log("sync");
  std::this_thread::sleep_for(1500ms);  // past the retry, with the writer still going
  writer->stop();
  expectExactlyOnce(*sync);
  EXPECT_NE(log("sync").find("'crm2' holds the snapshot of 'crm'"), std::string::npos) << log("sync");
  EXPECT_EQ(crmTableRows(db("crm")), crmTableRows(db("crm2")));
  EXPECT_EQ(sync->signalAndWait(SIGTERM), 0) << log("sync");
}

}  // namespace
}  // namespace ipcsync::sync::test
