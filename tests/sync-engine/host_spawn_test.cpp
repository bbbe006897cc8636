// HostProcess::spawn tells a failure that may pass (out of descriptors, processes or memory) from
// one that cannot (no such program), so the supervisor retries the first and fails the second.
#include "ipcsync/sync/host_process.h"

#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

namespace ipcsync::test {
namespace {

// Lowers the soft descriptor limit to the highest descriptor open now and fills every free
// number below it, so no new descriptor can be made until it goes out of scope.
class NoSpareDescriptors {
 public:
  NoSpareDescriptors() {
    ::getrlimit(RLIMIT_NOFILE, &m_saved);
    int highest = 2;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) highest = std::max(highest, std::stoi(e.path().filename()));
    rlimit tight = m_saved;
    tight.rlim_cur = static_cast<rlim_t>(highest + 1);
    ::setrlimit(RLIMIT_NOFILE, &tight);
    for (int fd; (fd = ::dup(STDIN_FILENO)) >= 0;) m_filler.push_back(fd);
  }
  ~NoSpareDescriptors() {
    for (int fd : m_filler) ::close(fd);
    ::setrlimit(RLIMIT_NOFILE, &m_saved);
  }
  NoSpareDescriptors(const NoSpareDescriptors&) = delete;
  NoSpareDescriptors& operator=(const NoSpareDescriptors&) = delete;

 private:
  rlimit m_saved{};
  std::vector<int> m_filler;
};

TEST(HostSpawnTest, RunningOutOfDescriptorsIsTransientAndNamesTheReason) {
  std::expected<HostProcess, SpawnError> host = std::unexpected(SpawnError{});
  {
    NoSpareDescriptors limit;
    host = HostProcess::spawn("/bin/true", {});
  }
  ASSERT_FALSE(host) << "spawn succeeded without a free descriptor";
  EXPECT_TRUE(host.error().transient) << host.error().message;
  EXPECT_NE(host.error().message.find("/bin/true"), std::string::npos) << host.error().message;
  EXPECT_NE(host.error().message.find("Too many open files"), std::string::npos) << host.error().message;

  auto again = HostProcess::spawn("/bin/true", {});  // the limit is back: it starts
  ASSERT_TRUE(again) << again.error().message;
}

TEST(HostSpawnTest, AMissingProgramIsPermanent) {
  auto host = HostProcess::spawn("/nonexistent/ipcsync-plugin-host", {});
  ASSERT_FALSE(host);
  EXPECT_FALSE(host.error().transient) << host.error().message;
  EXPECT_NE(host.error().message.find("/nonexistent/ipcsync-plugin-host"), std::string::npos) << host.error().message;
  EXPECT_NE(host.error().message.find("No such file"), std::string::npos) << host.error().message;
}

}  // namespace
}  // namespace ipcsync::test
