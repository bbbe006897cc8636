// The window's sync tabs against a real engine: sync.json beside the engine's socket and the
// journal it names (written here with the real journal library) reach the Topology and the
// Journal & conflicts tabs, and Ctrl+5 / Ctrl+6 / Ctrl+7 reach them from the keyboard; the arrow
// keys move through the parked conflicts and the detail pane follows.
#include <gtest/gtest.h>

#include <QAbstractItemModelTester>
#include <QTest>

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "conflict_change.h"
#include "console_fixture.h"
#include "ipcsync/sync/journal.h"
#include "console_options.h"
#include "main_window.h"

namespace ipcsync::admin {
namespace {

using namespace std::chrono_literals;

class SyncWindowTest : public test::NamespaceTest {};

TEST_F(SyncWindowTest, SyncJsonAndTheJournalBesideTheEngineFillTheTopologyAndJournalTabs) {
  startEngine("syncwin");
  JournalConfig config;
  config.path = dir.path() / "state" / "journal.db";
  auto journal = Journal::open(config);
  ASSERT_TRUE(journal) << journal.error().message;
  JournalEntry e;
  e.origin = "crm";
  e.originSequence = 1;
  e.tables = {"orders"};
  e.pieces = {{1, 2, 3}};
  auto seq = (*journal)->append({&e, 1});
  ASSERT_TRUE(seq) << seq.error().message;
  ASSERT_TRUE((*journal)->addDeadLetter({0, "crm-mining", "mining", (*seq)[0], "no such table: orders", 5, 0, false}));
  ParkedConflict first = test::accountConflict((*seq)[0]);
  ParkedConflict second = first;  // account 8: the source deleted it while the target had renamed it
  second.keyJson = R"({"id":8})";
  second.sourceJson = "null";
  second.targetJson = R"({"credit":100,"id":8,"name":"Bea Ltd","region":"north"})";
  second.change = test::captureChange("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT, region TEXT, credit INTEGER);"
                                      "INSERT INTO accounts VALUES (8, 'Bea', 'north', 100);",
                                      "DELETE FROM accounts WHERE id = 8");
  ASSERT_TRUE((*journal)->park(first));
  ASSERT_TRUE((*journal)->park(second));

  const auto syncJson = dir.path() / ns / "sync.json";
  ASSERT_TRUE(std::filesystem::exists(syncJson.parent_path())) << "no status directory " << syncJson.parent_path();
  std::ofstream(syncJson) << R"({"version":1,"pid":1,"journal":{"path":")" << config.path.string()
                          << R"(","entries":1,"bytes":3,"head":1,"max_bytes":1073741824,"nearly_full":false},
    "sources":[{"instance":"crm","connected":true}],
    "routes":[{"route":"crm-mining","source":"crm","subscriber":"mining","connected":true,"cursor":0,
               "lag_changesets":1,"lag_ms":250,"applied":0,"applied_per_s":0,"dead_letters":1}]})";

  ConsoleOptions o;
  o.ns = QString::fromStdString(ns);  // no --runtime-dir: found beside the engine's socket
  MainWindow window(o);
  QAbstractItemModelTester t1(window.topologyPanel()->routes(), QAbstractItemModelTester::FailureReportingMode::Warning);
  QAbstractItemModelTester t2(window.journalPanel()->deadLetters(), QAbstractItemModelTester::FailureReportingMode::Warning);
  QAbstractItemModelTester t3(window.journalPanel()->conflicts(), QAbstractItemModelTester::FailureReportingMode::Warning);
  QAbstractItemModelTester t4(window.journalPanel()->conflictDetail(), QAbstractItemModelTester::FailureReportingMode::Warning);
  ASSERT_TRUE(test::spinUntil([&] {
    return window.topologyPanel()->routes()->rowCount() == 1 && window.journalPanel()->deadLetters()->rowCount() == 1 &&
           window.journalPanel()->conflicts()->rowCount() == 2;
  }, 10s)) << window.journalPanel()->errorText().toStdString();
  EXPECT_EQ(window.topologyPanel()->routes()->index(0, RoutesModel::kLagMs).data().toInt(), 250);
  EXPECT_EQ(window.journalPanel()->deadLetters()->index(0, DeadLettersModel::kError).data().toString(), "no such table: orders");
  EXPECT_TRUE(window.journalPanel()->usageText().contains("head 1")) << window.journalPanel()->usageText().toStdString();
  EXPECT_NE(window.topologyPanel()->picture()->node("mining"), nullptr);

  window.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&window));
  QTest::keyClick(&window, Qt::Key_6, Qt::ControlModifier);
  EXPECT_EQ(window.tabs()->currentWidget(), window.journalPanel());
  QTest::keyClick(&window, Qt::Key_7, Qt::ControlModifier);
  EXPECT_EQ(window.tabs()->currentWidget(), window.journalPanel());
  QWidget* conflicts = window.journalPanel()->conflictsView();
  EXPECT_TRUE(conflicts->hasFocus());
  ConflictDetailModel* detail = window.journalPanel()->conflictDetail();
  // The first conflict is shown until another is chosen; Down moves to the deleted account.
  EXPECT_TRUE(window.journalPanel()->conflictHeadingText().contains("Conflict #1"));
  EXPECT_EQ(detail->index(detail->rowOf("region"), ConflictDetailModel::kSource).data().toString(), "south");
  QTest::keyClick(conflicts, Qt::Key_Down);
  EXPECT_TRUE(window.journalPanel()->conflictHeadingText().contains("Conflict #2"))
      << window.journalPanel()->conflictHeadingText().toStdString();
  EXPECT_TRUE(window.journalPanel()->conflictHeadingText().contains("DELETE"));
  const int name = detail->rowOf("name");
  ASSERT_GE(name, 0);
  EXPECT_EQ(detail->index(name, ConflictDetailModel::kBase).data().toString(), "Bea");
  EXPECT_EQ(detail->index(name, ConflictDetailModel::kSource).data().toString(), "(deleted)");
  EXPECT_EQ(detail->index(name, ConflictDetailModel::kTarget).data().toString(), "Bea Ltd");
  // Refreshes keep the choice (the detail follows the conflict, not the row number).
  const std::uint64_t seen = window.poller()->snapshots();
  ASSERT_TRUE(test::spinUntil([&] { return window.poller()->snapshots() >= seen + 3; }, 10s));
  EXPECT_TRUE(window.journalPanel()->conflictHeadingText().contains("Conflict #2"));
  QTest::keyClick(conflicts, Qt::Key_Tab);
  EXPECT_TRUE(window.journalPanel()->conflictDetailView()->hasFocus()) << "Tab does not reach the conflict's values";
  QTest::keyClick(&window, Qt::Key_5, Qt::ControlModifier);
  EXPECT_EQ(window.tabs()->currentWidget(), window.topologyPanel());
  QTest::keyClick(&window, Qt::Key_1, Qt::ControlModifier);
  EXPECT_EQ(window.tabs()->currentIndex(), 0);

  // The sync engine goes away: its rows go too.
  std::filesystem::remove(syncJson);
  ASSERT_TRUE(test::spinUntil([&] {
    return window.topologyPanel()->routes()->rowCount() == 0 && window.journalPanel()->deadLetters()->rowCount() == 0 &&
           window.journalPanel()->conflicts()->rowCount() == 0 && window.journalPanel()->conflictDetail()->rowCount() == 0;
  }, 10s));
  EXPECT_EQ(window.journalPanel()->conflictHeadingText(), "No parked conflict.");
}

TEST_F(SyncWindowTest, ASyncJsonLeftByAnEndedSyncEngineIsShownAsStaleWithItsLastFigures) {
  startEngine("syncstale");
  const pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ASSERT_GT(gone, 0);
  ASSERT_EQ(::waitpid(gone, nullptr, 0), gone);  // reaped: the pid no longer exists
  const auto syncJson = dir.path() / ns / "sync.json";
  std::ofstream(syncJson) << R"({"pid":)" << gone
                          << R"(,"routes":[{"route":"r","source":"crm","subscriber":"mining","lag_ms":7}]})";
  ConsoleOptions o;
  o.ns = QString::fromStdString(ns);
  MainWindow window(o);
  ASSERT_TRUE(test::spinUntil([&] { return window.topologyPanel()->routes()->rowCount() == 1; }, 10s));
  const NamespaceSnapshot& s = window.poller()->last();
  EXPECT_TRUE(s.sync.error.contains(QStringLiteral("pid %1, which has ended").arg(gone))) << s.sync.error.toStdString();
  EXPECT_EQ(window.topologyPanel()->routes()->index(0, RoutesModel::kLagMs).data().toInt(), 7);  // nothing lost
}

TEST(SyncWindowOptionsTest, TabChoosesTheFirstTabAndAnUnknownNameIsRefusedListingTheChoices) {
  QString error, help;
  int code = -1;
  auto o = parseConsoleOptions({"ipcsync-admin", "--tab", "journal"}, error, code, help);
  ASSERT_TRUE(o) << error.toStdString();
  EXPECT_EQ(o->tab, 2);
  ASSERT_TRUE(parseConsoleOptions({"ipcsync-admin"}, error, code, help));
  EXPECT_EQ(parseConsoleOptions({"ipcsync-admin"}, error, code, help)->tab, 0);
  EXPECT_FALSE(parseConsoleOptions({"ipcsync-admin", "--tab", "routes"}, error, code, help));
  EXPECT_EQ(code, kExitUsage);
  EXPECT_EQ(error, "--tab 'routes': expected one of overview, topology, journal");
  o = parseConsoleOptions({"ipcsync-admin", "--tab", "topology"}, error, code, help);
  ASSERT_TRUE(o);
  MainWindow window(*o);
  EXPECT_EQ(window.tabs()->currentWidget(), window.topologyPanel());
}

}  // namespace
}  // namespace ipcsync::admin
