// PluginDirWatch on a real directory: what counts as a plugin file, and what happens when the
// kernel drops events.
#include "ipcsync/sync/plugin_dir_watch.h"

#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "processes.h"

namespace ipcsync::test {
namespace {

namespace fs = std::filesystem;

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::ranges::find(v, s) != v.end(); }

class PluginDirWatchTest : public ::testing::Test {
 protected:
  TempDir dir;
  fs::path plugins() const { return dir.path() / "plugins"; }
  void write(const std::string& name) { std::ofstream(plugins() / name) << "stand-in"; }
  PluginDirWatchTest() { fs::create_directories(plugins()); }
};

TEST_F(PluginDirWatchTest, AFileCountsOnceClosedALinkAtOnceADirectoryNever) {
  write("before.so");
  fs::create_directory(plugins() / "dir-before.so");
  auto watch = PluginDirWatch::open(plugins());
  ASSERT_TRUE(watch) << watch.error();
  EXPECT_EQ(watch->files(), (std::set<std::string>{"before.so"}));

  write("copied.so");
  fs::create_directory(plugins() / "made.so");
  fs::create_hard_link(plugins() / "before.so", plugins() / "hard.so");
  fs::create_symlink(plugins() / "before.so", plugins() / "soft.so");
  fs::create_symlink(plugins() / "made.so", plugins() / "to-dir.so");
  write("notes.txt");
  const auto changes = watch->readEvents();
  EXPECT_TRUE(contains(changes.appeared, "copied.so"));
  EXPECT_TRUE(contains(changes.appeared, "hard.so")) << "a hard link makes no IN_CLOSE_WRITE";
  EXPECT_TRUE(contains(changes.appeared, "soft.so"));
  EXPECT_FALSE(contains(changes.appeared, "made.so")) << "a directory named *.so is not a plugin";
  EXPECT_FALSE(contains(changes.appeared, "to-dir.so")) << "a link to a directory is not a plugin";
  EXPECT_EQ(changes.appeared.size(), 3u);
  EXPECT_FALSE(changes.overflowed);

  fs::remove(plugins() / "copied.so");
  EXPECT_EQ(watch->readEvents().vanished, (std::vector<std::string>{"copied.so"}));
}

TEST_F(PluginDirWatchTest, AnOverflowedEventQueueIsRecoveredByListingTheDirectory) {
  write("stays.so");
  write("goes.so");
  auto watch = PluginDirWatch::open(plugins());
  ASSERT_TRUE(watch) << watch.error();
  std::ifstream limitFile("/proc/sys/fs/inotify/max_queued_events");
  int limit = 16384;
  limitFile >> limit;
  // More events than the queue holds, none of them read: the kernel drops the rest and says so.
  for (int i = 0; i < limit / 2 + 100; ++i) {
    const auto p = plugins() / ("noise-" + std::to_string(i) + ".txt");
    std::ofstream(p) << "x";  // create + close_write, at least two events
  }
  fs::remove(plugins() / "goes.so");
  write("late.so");  // its events are lost in the overflow
  const auto changes = watch->readEvents();
  EXPECT_TRUE(changes.overflowed);
  EXPECT_EQ(changes.appeared, (std::vector<std::string>{"late.so"}));
  EXPECT_EQ(changes.vanished, (std::vector<std::string>{"goes.so"}));
  EXPECT_EQ(watch->files(), (std::set<std::string>{"late.so", "stays.so"}));
}

}  // namespace
}  // namespace ipcsync::test
