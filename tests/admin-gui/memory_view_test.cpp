// The memory pane follows the selected registration live: as a real client allocates, its
// arenas become active and fill, and the figures and free-block table move with them.
#include <gtest/gtest.h>

#include <QAbstractItemModelTester>

#include "console_fixture.h"
#include "main_window.h"

namespace ipcsync::admin {
namespace {

using namespace std::chrono_literals;

class MemoryViewTest : public test::NamespaceTest {};

int activeArenas(const ArenaMapWidget& map) {
  int n = 0;
  for (const auto& c : map.cells()) n += c.has_value();
  return n;
}
int fullArenas(const ArenaMapWidget& map) {
  int n = 0;
  for (const auto& c : map.cells()) n += c && *c >= 990;
  return n;
}

TEST_F(MemoryViewTest, TheArenaMapAndFiguresFollowAClientThatAllocates) {
  const int complaints = test::modelTesterComplaints();
  startEngine("memory", {"--arena-size", "256KiB", "--max-arenas", "16"});
  ConsoleOptions o;
  o.ns = QString::fromStdString(ns);
  MainWindow window(o);
  QAbstractItemModelTester tester(window.memoryPanel()->ordersModel(), QAbstractItemModelTester::FailureReportingMode::Warning);
  test::Gate gate;
  auto grower = test::allocatorChild(options("grower"), gate, 4, 64 * 1024);  // one arena per command
  ASSERT_TRUE(test::spinUntil([&] { return window.registrations()->rowCount() == 1; }, 10s));
  const ArenaMapWidget& map = *window.memoryPanel()->arenaMap();
  ASSERT_TRUE(test::spinUntil([&] { return map.cells().size() == 16; }, 10s)) << "the only row is selected by itself";
  // The row shows from the moment the slot is taken; its block's first arena a refresh later.
  ASSERT_TRUE(test::spinUntil([&] { return activeArenas(map) == 1; }, 10s)) << activeArenas(map) << " active";
  EXPECT_EQ(fullArenas(map), 0);
  EXPECT_EQ(window.memoryPanel()->figure("Allocations"), "0");
  EXPECT_EQ(window.memoryPanel()->ordersModel()->rowCount(), 13);  // 64 B .. 256 KiB

  test::ModelSignals orders(window.memoryPanel()->ordersModel());
  for (int step = 1; step <= 3; ++step) {
    gate.send();
    ASSERT_TRUE(test::spinUntil([&] { return fullArenas(map) == step; }, 10s))
        << "step " << step << ": " << fullArenas(map) << " full, " << activeArenas(map) << " active";
    EXPECT_GE(activeArenas(map), step);
    EXPECT_TRUE(test::spinUntil([&] { return window.memoryPanel()->figure("Allocations") == QString::number(step * 4); }, 10s))
        << window.memoryPanel()->figure("Allocations").toStdString();
  }
  EXPECT_TRUE(window.memoryPanel()->figure("In use").startsWith("768.0 KiB")) << window.memoryPanel()->figure("In use").toStdString();
  EXPECT_GT(orders.changed, 0) << "the free-block table did not follow";
  EXPECT_EQ(orders.resets, 0);
  EXPECT_EQ(test::modelTesterComplaints(), complaints);
}

TEST_F(MemoryViewTest, SelectingAnotherRegistrationShowsItsMemory) {
  startEngine("select");
  ConsoleOptions o;
  o.ns = QString::fromStdString(ns);
  MainWindow window(o);
  test::Gate gate;
  auto big = test::allocatorChild(options("big"), gate, 3, 1 << 20);
  auto small = test::receiverChild(options("small"));
  gate.send();
  ASSERT_TRUE(test::spinUntil([&] { return window.registrations()->rowCount() == 2; }, 10s));
  auto* view = window.registrationsView();
  for (int r = 0; r < window.registrationsProxy()->rowCount(); ++r) {
    const QString name = window.registrationsProxy()->index(r, RegistrationsModel::kName).data().toString();
    view->setCurrentIndex(window.registrationsProxy()->index(r, 0));
    const int wanted = name == "big" ? 3 : 1;
    EXPECT_TRUE(test::spinUntil([&] {
      int active = 0;
      for (const auto& c : window.memoryPanel()->arenaMap()->cells()) active += c.has_value();
      return active == wanted;
    }, 2s)) << name.toStdString();
  }
}

}  // namespace
}  // namespace ipcsync::admin
