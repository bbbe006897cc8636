// The window keeps turning while the journal is locked: another process holds every WAL read lock
// of the journal (what a checkpoint that resets the read marks, or a crashed writer's recovery,
// does to readers), so any read of the journal waits until it lets go. The console reads the
// journal on its own thread: the GUI thread's event loop keeps running and registrations keep
// refreshing meanwhile, and once the lock goes the conflict parked before it shows with its
// values side by side.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <QAbstractItemModelTester>
#include <QElapsedTimer>
#include <QTimer>

#include <fstream>

#include "conflict_change.h"
#include "console_fixture.h"
#include "console_options.h"
#include "ipcsync/sync/journal.h"
#include "main_window.h"

namespace ipcsync::admin {
namespace {

using namespace std::chrono_literals;

class JournalLockTest : public test::NamespaceTest {};

// A child that takes write locks on the WAL read-mark bytes of `journal`-shm (SQLite's unix VFS:
// bytes 123..127, WAL_READ_LOCK(0..4)), says so on `locked`, and holds them until `release`.
test::Child readLockHolder(const std::filesystem::path& journal, const test::Gate& locked, const test::Gate& release) {
  return test::Child([shm = journal.string() + "-shm", &locked, &release] {
    const int fd = ::open(shm.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return 10;
    struct flock lock {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = 123;
    lock.l_len = 5;
    if (::fcntl(fd, F_SETLK, &lock) != 0) return 11;
    locked.send();
    release.next(-1);  // the locks go with the process
    return 0;
  });
}

TEST_F(JournalLockTest, TheWindowKeepsRefreshingWhileTheJournalIsLockedAndCatchesUpAfter) {
  startEngine("jlock");
  JournalConfig config;
  config.path = dir.path() / "state" / "journal.db";
  auto journal = Journal::open(config);
  ASSERT_TRUE(journal) << journal.error().message;
  JournalEntry e;
  e.origin = "crm";
  e.originSequence = 1;
  e.tables = {"accounts"};
  e.pieces = {{1, 2, 3}};
  auto seq = (*journal)->append({&e, 1});
  ASSERT_TRUE(seq) << seq.error().message;
  std::ofstream(dir.path() / ns / "sync.json")
      << R"({"version":1,"pid":)" << ::getpid() << R"(,"journal":{"path":")" << config.path.string()
      << R"(","entries":1,"bytes":3,"head":1,"max_bytes":1073741824,"nearly_full":false},"routes":[]})";
  test::Child client = test::receiverChild(options("worker"));

  ConsoleOptions o;
  o.ns = QString::fromStdString(ns);
  o.tab = 2;
  MainWindow window(o);
  QAbstractItemModelTester t1(window.journalPanel()->conflicts(), QAbstractItemModelTester::FailureReportingMode::Warning);
  QAbstractItemModelTester t2(window.journalPanel()->conflictDetail(), QAbstractItemModelTester::FailureReportingMode::Warning);
  window.show();
  ASSERT_TRUE(test::spinUntil([&] {
    return window.registrations()->rowCount() == 1 && window.poller()->last().journal.reads >= 1;
  }, 10s)) << window.journalPanel()->errorText().toStdString();
  EXPECT_EQ(window.journalPanel()->conflicts()->rowCount(), 0);

  // A conflict is parked; then another process locks the journal's readers out, and F5 asks for
  // a journal read at once (it waits for the lock).
  ParkedConflict pc = test::accountConflict((*seq)[0]);
  ASSERT_FALSE(pc.change.empty());
  ASSERT_TRUE((*journal)->park(pc));
  test::Gate locked, release;
  test::Child holder = readLockHolder(config.path, locked, release);
  ASSERT_EQ(locked.next(10'000), 'x') << "the lock holder could not lock " << config.path << "-shm";
  const std::uint64_t readsBefore = window.poller()->last().journal.reads;
  window.poller()->refreshNow();

  // The event loop turns: a 10 ms timer fires throughout, and snapshots keep coming.
  QTimer beat;
  QElapsedTimer sinceBeat;
  qint64 longestGapMs = 0;
  int beats = 0;
  QObject::connect(&beat, &QTimer::timeout, [&] {
    longestGapMs = std::max(longestGapMs, sinceBeat.restart());
    ++beats;
  });
  sinceBeat.start();
  beat.start(10);
  const std::uint64_t snapshotsBefore = window.poller()->snapshots();
  QElapsedTimer held;
  held.start();
  test::spinUntil([] { return false; }, 3s);
  beat.stop();
  longestGapMs = std::max(longestGapMs, sinceBeat.elapsed());  // a beat that never came counts too
  const std::uint64_t snapshotsDuring = window.poller()->snapshots() - snapshotsBefore;
  const std::uint64_t readsDuring = window.poller()->last().journal.reads - readsBefore;
  release.send();
  EXPECT_EQ(holder.wait(), 0);

  std::printf("journal locked for %lld ms: %d event-loop beats, longest gap %lld ms, %llu snapshots, %llu journal reads\n",
              static_cast<long long>(held.elapsed()), beats, static_cast<long long>(longestGapMs),
              static_cast<unsigned long long>(snapshotsDuring), static_cast<unsigned long long>(readsDuring));
  EXPECT_EQ(readsDuring, 0u) << "the lock did not keep the journal's readers out, so this test showed nothing";
  // Generous bounds for a loaded machine; a read on the GUI thread would stall it for the whole 3 s.
  EXPECT_LT(longestGapMs, 1500) << "the GUI thread was blocked while the journal was locked";
  EXPECT_GE(snapshotsDuring, 5u) << "the registrations stopped refreshing while the journal was locked";
  EXPECT_EQ(window.registrations()->rowCount(), 1);

  // The lock is gone: the parked conflict shows, its values side by side.
  ASSERT_TRUE(test::spinUntil([&] { return window.journalPanel()->conflicts()->rowCount() == 1; }, 15s))
      << window.journalPanel()->errorText().toStdString();
  ASSERT_TRUE(test::spinUntil([&] { return window.journalPanel()->conflictDetail()->rowCount() == 4; }, 5s));
  ConflictDetailModel* detail = window.journalPanel()->conflictDetail();
  const int region = detail->rowOf("region");
  ASSERT_GE(region, 0);
  EXPECT_EQ(detail->index(region, ConflictDetailModel::kBase).data().toString(), "north");
  EXPECT_EQ(detail->index(region, ConflictDetailModel::kSource).data().toString(), "south");
  EXPECT_EQ(detail->index(region, ConflictDetailModel::kTarget).data().toString(), "west");
  EXPECT_TRUE(window.journalPanel()->conflictHeadingText().contains("crm-replicas"))
      << window.journalPanel()->conflictHeadingText().toStdString();
  client.kill(SIGKILL);
}

}  // namespace
}  // namespace ipcsync::admin
