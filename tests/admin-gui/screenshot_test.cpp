// ipcsync-admin as a program: --screenshot against a live namespace writes a PNG of the window
// that is not blank; a file it cannot write and bad options give their documented exit codes.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <QImage>
#include <QSet>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "console_fixture.h"
#include "main_window.h"

namespace ipcsync::admin {
namespace {

using namespace std::chrono_literals;

// Runs ipcsync-admin with `args` (offscreen) to completion, at most `timeout`: exit code and output.
std::pair<int, std::string> runAdmin(const std::vector<std::string>& args, const std::filesystem::path& log,
                                     std::chrono::seconds timeout = 30s) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::setenv("QT_QPA_PLATFORM", "offscreen", 1);
    std::vector<char*> argv{const_cast<char*>(IPCSYNC_ADMIN_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(IPCSYNC_ADMIN_BINARY, argv.data());
    ::_exit(127);
  }
  int status = 0;
  const bool ended = test::waitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout);
  if (!ended) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  std::ifstream in(log);
  std::stringstream out;
  out << in.rdbuf();
  return {ended && WIFEXITED(status) ? WEXITSTATUS(status) : -1, out.str()};
}

int distinctColours(const QImage& image, QRect area) {
  QSet<QRgb> seen;
  area &= image.rect();
  for (int y = area.top(); y <= area.bottom(); ++y)
    for (int x = area.left(); x <= area.right(); ++x) seen.insert(image.pixel(x, y));
  return static_cast<int>(seen.size());
}

class ScreenshotTest : public test::NamespaceTest {
 protected:
  // A demo-like namespace: clients of different sizes, traffic, a cached topic, and the daemon
  // supervising two plugins (stand-in hosts), one of which keeps crashing until it fails.
  void startDemo() {
    std::filesystem::create_directories(dir.path() / "plugins");
    // The stand-in host loads nothing, but the daemon checks that configured libraries exist.
    for (const char* file : {"crm.so", "mining.so", "erp.so"}) std::ofstream(dir.path() / "plugins" / file) << "stand-in";
    const auto cfg = dir.path() / "engine.yaml";
    std::ofstream(cfg) << "plugins_dir: " << (dir.path() / "plugins").string() << "\nstate_dir: "
                       << (dir.path() / "state").string() << "\nplugin_host: " << IPCSYNC_FAKE_PLUGIN_HOST << R"(
plugins:
  - {name: crm, library: crm.so}
  - name: mining
    library: mining.so
    settings: {mode: crash, crash_after_ms: 20}
supervision: {restart_initial_ms: 50, restart_max_ms: 100, max_crashes: 3, crash_window_s: 60}
)";
    startEngine("shot", {"--config", cfg.string()});
    clients.push_back(test::receiverChild(options("call-centre")));
    ASSERT_TRUE(test::waitFor([&] { return registered("call-centre"); }, 5s));
    clients.push_back(test::streamerChild(options("crm"), "call-centre", 400, 2048));
    clients.push_back(test::publisherChild(options("sales-feed"), "accounts", 8, 5, 512));
    clients.push_back(test::allocatorChild(options("analytics"), gate, 40, 64 * 1024));
    clients.push_back(test::allocatorChild(options("supply-chain"), gate2, 6, 48 * 1024));
    gate.send();
    gate2.send();
    ASSERT_TRUE(test::waitFor([&] { return records().size() >= 6; }, 5s));
    ASSERT_TRUE(test::waitFor([&] {
      std::ifstream in(dir.path() / ns / "plugins.json");
      std::stringstream s;
      s << in.rdbuf();
      return s.str().find("\"failed\"") != std::string::npos;
    }, 10s)) << engine->log();
  }
  test::Gate gate, gate2;
  std::vector<test::Child> clients;
};

TEST_F(ScreenshotTest, AScreenshotOfALiveNamespaceHasTheWindowsSizeAndIsNotBlank) {
  ASSERT_NO_FATAL_FAILURE(startDemo());
  const auto png = dir.path() / "console.png";
  const auto [code, out] = runAdmin({"--namespace", ns, "--screenshot", png.string()}, dir.path() / "admin.log");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("wrote " + png.string()), std::string::npos) << out;
  QImage image(QString::fromStdString(png.string()));
  ASSERT_FALSE(image.isNull()) << "not a readable PNG";
  EXPECT_EQ(image.size(), MainWindow::kDefaultSize);
  const int all = distinctColours(image, image.rect());
  EXPECT_GT(all, 100) << "a blank-looking window: " << all << " colours";
  // The registrations' rows (upper part of the window, under the filter and header) carry text.
  const QRect rows(20, image.height() * 13 / 100, image.width() - 40, image.height() * 15 / 100);
  EXPECT_GT(distinctColours(image, rows), 8) << "the registrations rows look empty";
  if (const char* keep = std::getenv("IPCSYNC_SAVE_SCREENSHOT")) {
    std::filesystem::copy_file(png, keep, std::filesystem::copy_options::overwrite_existing);
    std::printf("saved %s\n", keep);
  }
}

TEST_F(ScreenshotTest, AScreenshotThatCannotBeWrittenExitsOneAndSaysWhy) {
  startEngine("noshot");
  const auto [code, out] = runAdmin({"--namespace", ns, "--screenshot", "/nonexistent-dir/x.png"}, dir.path() / "admin.log");
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("cannot write screenshot /nonexistent-dir/x.png"), std::string::npos) << out;
}

TEST_F(ScreenshotTest, BadOptionsExitTwoNamingTheOptionAndHelpExitsZero) {
  auto [code, out] = runAdmin({"--refresh-ms", "abc"}, dir.path() / "a.log");
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--refresh-ms 'abc'"), std::string::npos) << out;
  std::tie(code, out) = runAdmin({"--namespace", "no/slash"}, dir.path() / "b.log");
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--namespace 'no/slash'"), std::string::npos) << out;
  std::tie(code, out) = runAdmin({"--bogus"}, dir.path() / "c.log");
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("bogus"), std::string::npos) << out;
  std::tie(code, out) = runAdmin({"--help"}, dir.path() / "d.log");
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("Exit codes"), std::string::npos) << out;
}

}  // namespace
}  // namespace ipcsync::admin
