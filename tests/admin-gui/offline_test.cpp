// The offline banner: shown when the engine stops, gone when a new engine serves the namespace,
// with the console reattached to it by itself.
#include <signal.h>

#include <gtest/gtest.h>

#include "console_fixture.h"
#include "main_window.h"

namespace ipcsync::admin {
namespace {

using namespace std::chrono_literals;

class OfflineTest : public test::NamespaceTest {};

ConsoleOptions optionsFor(const std::string& ns, const std::filesystem::path& dir) {
  ConsoleOptions o;
  o.ns = QString::fromStdString(ns);
  o.runtimeDir = QString::fromStdString(dir.string());
  return o;
}

TEST_F(OfflineTest, TheBannerShowsWhenTheEngineStopsAndGoesWhenANewEngineStartsAndTheConsoleReattaches) {
  startEngine("offline");
  MainWindow window(optionsFor(ns, dir.path()));
  auto client = test::receiverChild(options("survivor"));
  ASSERT_TRUE(test::spinUntil([&] { return window.registrations()->rowCount() == 1; }, 10s));
  EXPECT_FALSE(window.bannerShown());
  const pid_t first = engine->pid();
  EXPECT_TRUE(window.statusText().contains(QString("engine pid %1").arg(first))) << window.statusText().toStdString();

  engine->stop(SIGKILL);  // a crash: the segment stays behind with a dead pid
  ASSERT_TRUE(test::spinUntil([&] { return window.bannerShown(); }, 10s)) << "no banner after the engine died";
  EXPECT_TRUE(window.bannerText().contains(QString::number(first))) << window.bannerText().toStdString();
  EXPECT_EQ(window.registrations()->rowCount(), 0);
  EXPECT_TRUE(window.statusText().contains("engine offline"));

  engine = test::EngineProcess::start(ns, dir.path());
  ASSERT_TRUE(engine);
  ASSERT_TRUE(test::spinUntil([&] { return !window.bannerShown(); }, 10s)) << "did not reattach to the new engine";
  EXPECT_TRUE(window.statusText().contains(QString("engine pid %1").arg(engine->pid()))) << window.statusText().toStdString();
  auto again = test::receiverChild(options("newcomer"));
  EXPECT_TRUE(test::spinUntil([&] { return window.registrations()->rowCount() == 1; }, 10s));
}

TEST_F(OfflineTest, AnEngineThatStopsTickingCountsAsOffline) {
  startEngine("hung");
  MainWindow window(optionsFor(ns, dir.path()));
  ASSERT_TRUE(test::spinUntil([&] { return window.poller()->last().online; }, 10s));
  ASSERT_TRUE(test::stopProcess(engine->pid()));
  EXPECT_TRUE(test::spinUntil([&] { return window.bannerShown(); }, 10s));
  EXPECT_TRUE(window.bannerText().contains("has not ticked")) << window.bannerText().toStdString();
  ::kill(engine->pid(), SIGCONT);
  EXPECT_TRUE(test::spinUntil([&] { return !window.bannerShown(); }, 10s));
}

TEST_F(OfflineTest, ANamespaceWithoutEngineShowsWhatToStart) {
  ns = test::uniqueNamespace("none");
  MainWindow window(optionsFor(ns, dir.path()));
  ASSERT_TRUE(test::spinUntil([&] { return window.bannerShown(); }, 10s));
  EXPECT_TRUE(window.bannerText().contains(QString::fromStdString(ns)));
  EXPECT_TRUE(window.bannerText().contains("reattaches by itself"));
  engine = test::EngineProcess::start(ns, dir.path());
  ASSERT_TRUE(engine);
  EXPECT_TRUE(test::spinUntil([&] { return !window.bannerShown(); }, 10s)) << "did not attach to the first engine";
}

}  // namespace
}  // namespace ipcsync::admin
