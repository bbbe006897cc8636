// The Overview tab from the keyboard and the refresh rate, against a real engine: Ctrl+F reaches
// the filter and typing keeps only matching rows, Tab and Ctrl+1..4 reach every pane, sorting by a
// number sorts numerically, and the window is set to refresh at least five times a second and
// does so on an idle machine (a loaded one is allowed down to two).
#include <gtest/gtest.h>

#include <QElapsedTimer>
#include <QHeaderView>
#include <QTest>

#include "console_fixture.h"
#include "console_options.h"
#include "main_window.h"

namespace ipcsync::admin {
namespace {

using namespace std::chrono_literals;

class WindowKeysTest : public test::NamespaceTest {};

TEST_F(WindowKeysTest, TheFilterAndEveryPaneAreReachableFromTheKeyboardAndNumbersSortAsNumbers) {
  startEngine("keys");
  std::vector<test::Child> children;
  for (const char* name : {"alpha", "beta", "gamma"}) children.push_back(test::receiverChild(options(name)));
  ConsoleOptions o;
  o.ns = QString::fromStdString(ns);
  MainWindow window(o);
  window.show();
  ASSERT_TRUE(QTest::qWaitForWindowExposed(&window));
  ASSERT_TRUE(test::spinUntil([&] { return window.registrationsProxy()->rowCount() == 3; }, 10s));

  QTest::keyClick(&window, Qt::Key_F, Qt::ControlModifier);
  EXPECT_TRUE(window.filterEdit()->hasFocus());
  QTest::keyClicks(window.filterEdit(), "ALP");  // any column, any case
  EXPECT_EQ(window.registrationsProxy()->rowCount(), 1);
  EXPECT_EQ(window.registrationsProxy()->index(0, RegistrationsModel::kName).data().toString(), "alpha");
  // Rows that come and go while filtered follow the filter too.
  children.push_back(test::receiverChild(options("alpine")));
  EXPECT_TRUE(test::spinUntil([&] { return window.registrationsProxy()->rowCount() == 2; }, 10s));
  window.filterEdit()->clear();
  EXPECT_TRUE(test::spinUntil([&] { return window.registrationsProxy()->rowCount() == 4; }, 1s));

  QTest::keyClick(window.filterEdit(), Qt::Key_Tab);
  EXPECT_TRUE(window.registrationsView()->hasFocus()) << "Tab from the filter does not reach the registrations";
  const std::pair<int, QWidget*> panes[] = {{Qt::Key_2, window.memoryPanel()->ordersView()},
                                            {Qt::Key_1, window.registrationsView()}};
  for (const auto& [key, widget] : panes) {
    QTest::keyClick(&window, static_cast<Qt::Key>(key), Qt::ControlModifier);
    EXPECT_TRUE(widget->hasFocus()) << "Ctrl+" << (key - Qt::Key_0);
  }
  QTest::keyClick(&window, Qt::Key_3, Qt::ControlModifier);
  EXPECT_EQ(QApplication::focusWidget()->accessibleName(), "Cached topics");
  QTest::keyClick(&window, Qt::Key_4, Qt::ControlModifier);
  EXPECT_EQ(QApplication::focusWidget()->accessibleName(), "Plugins");

  // Arrows move the selection, and the memory pane follows it.
  QTest::keyClick(&window, Qt::Key_1, Qt::ControlModifier);
  window.registrationsView()->setCurrentIndex(window.registrationsProxy()->index(0, 0));
  QTest::keyClick(window.registrationsView(), Qt::Key_Down);
  EXPECT_EQ(window.registrationsView()->currentIndex().row(), 1);

  // Sorted by pid, descending: numbers, not text ("9" would sort above "10" as text).
  window.registrationsView()->sortByColumn(RegistrationsModel::kPid, Qt::DescendingOrder);
  for (int r = 1; r < window.registrationsProxy()->rowCount(); ++r)
    EXPECT_GE(window.registrationsProxy()->index(r - 1, RegistrationsModel::kPid).data(kSortRole).toLongLong(),
              window.registrationsProxy()->index(r, RegistrationsModel::kPid).data(kSortRole).toLongLong());
  for (auto& c : children) c.kill(SIGKILL);
}

TEST_F(WindowKeysTest, TheWindowRefreshesAtLeastFiveTimesASecond) {
  startEngine("rate");
  auto client = test::receiverChild(options("steady"));
  ConsoleOptions o;
  o.ns = QString::fromStdString(ns);
  EXPECT_LE(o.refresh.count(), 200) << "the default interval allows fewer than five refreshes a second";
  MainWindow window(o);
  window.show();
  int refreshes = 0;
  QObject::connect(&window, &MainWindow::refreshed, [&] { ++refreshes; });
  ASSERT_TRUE(test::spinUntil([&] { return window.registrations()->rowCount() == 1; }, 10s));
  refreshes = 0;
  QElapsedTimer t;
  t.start();
  test::spinUntil([] { return false; }, 3s);
  const double perSecond = refreshes * 1000.0 / static_cast<double>(t.elapsed());
  std::printf("%d refreshes in %lld ms: %.1f/s (the interval allows %.1f/s)\n", refreshes,
              static_cast<long long>(t.elapsed()), perSecond, 1000.0 / static_cast<double>(o.refresh.count()));
  // 6.7/s on an idle machine; 3.4/s was seen at a load average of 18 on 2 cores. The bound only
  // catches a refresh that waits on something slow (a journal read would make it about 1/s).
  EXPECT_GE(perSecond, 2.0);
  client.kill(SIGKILL);
}

}  // namespace
}  // namespace ipcsync::admin
