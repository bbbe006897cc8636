// `ipcsync plugins DIR` over a directory of good and broken plugins, as a real process.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "host_fixture.h"
#include "processes.h"

namespace ipcsync::test {
namespace {

using ::testing::HasSubstr;

// The line of `out` that starts with `file`.
std::string lineFor(const std::string& out, const std::string& file) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(file, 0) == 0) return line;
  return "";
}

TEST(PluginsCliTest, ListsEveryPluginInADirectoryWithItsVerdict) {
  TempDir dir;
  for (const char* p : {"echo", "bad_major", "bad_no_entry", "bad_no_primary_key", "bad_crash_on_load", "bad_unresolved"})
    std::filesystem::copy_file(testPlugin(p), dir.path() / (std::string(p) + ".so"));
  std::filesystem::copy_file(std::filesystem::path(IPCSYNC_TEST_PLUGIN_DIR) / "x.so", dir.path() / "x.so");
  std::ofstream(dir.path() / "README.txt") << "not a plugin, not listed\n";

  const auto r = runProgram(cliPath(), {"plugins", dir.path().string()});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("FILE"));
  const auto echo = lineFor(r.out, "echo.so");
  EXPECT_THAT(echo, HasSubstr("echo"));
  EXPECT_THAT(echo, HasSubstr("1.2.3"));
  EXPECT_THAT(echo, HasSubstr("items(PA)"));
  EXPECT_THAT(echo, HasSubstr("audit(P)"));
  EXPECT_THAT(echo, HasSubstr("loads"));
  EXPECT_THAT(lineFor(r.out, "bad_major.so"), HasSubstr("rebuild against plugin.h 1.x"));
  EXPECT_THAT(lineFor(r.out, "bad_no_entry.so"), HasSubstr("does not export ipcsync_plugin_entry"));
  EXPECT_THAT(lineFor(r.out, "bad_no_primary_key.so"), HasSubstr("declares no PRIMARY KEY"));
  EXPECT_THAT(lineFor(r.out, "bad_unresolved.so"), HasSubstr("undefined symbol"));
  EXPECT_THAT(lineFor(r.out, "bad_crash_on_load.so"), HasSubstr("crashed while loading (signal 11"));
  EXPECT_THAT(lineFor(r.out, "x.so"), HasSubstr("cannot be loaded"));
  EXPECT_EQ(lineFor(r.out, "README.txt"), "");
  EXPECT_THAT(r.out, HasSubstr("7 plugin files, 1 loads"));
}

TEST(PluginsCliTest, AMissingDirectoryExitsOneWithAClearMessage) {
  TempDir dir;
  const auto missing = dir.path() / "nowhere";
  const auto r = runProgram(cliPath(), {"plugins", missing.string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr(missing.string()));
  EXPECT_THAT(r.err, HasSubstr("no such directory"));
}

TEST(PluginsCliTest, UsageErrorsExitTwo) {
  const auto r = runProgram(cliPath(), {"plugins", "a", "b"});
  EXPECT_EQ(r.code, 2) << r.err;
}

TEST(PluginsCliTest, AnEmptyDirectoryIsListedAsEmpty) {
  TempDir dir;
  const auto r = runProgram(cliPath(), {"plugins", dir.path().string()});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("no plugin files (*.so) in " + dir.path().string()));
}

TEST(PluginsCliTest, StatusStillWorks) {
  const auto r = runProgram(cliPath(), {"status", "-n", uniqueNamespace("nostatus")});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("nostatus"));
}

}  // namespace
}  // namespace ipcsync::test
