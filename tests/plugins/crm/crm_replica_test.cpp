// End to end: a crm replica fed with another crm's change-sets, while the call-centre simulator
// works on the source in a separate process, ends identical to the source.
#include <fcntl.h>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

#include "crm_fixture.h"

namespace ipcsync::test {
namespace {

using CrmReplicaTest = CrmTest;

TEST_F(CrmReplicaTest, AReplicaFedByAnotherCrmEndsIdenticalToTheSourceAfterASimulatorRun) {
  auto src = crm("src", {{"max_piece_bytes", "4096"}, {"batch_rows", "50"}});
  auto dst = crm("dst");
  const std::string seed = std::to_string(std::random_device{}());
  std::printf("simulator seed %s\n", seed.c_str());
  const std::string db = path("src.db");
  const pid_t pid = fork();
  if (pid == 0) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execl(IPCSYNC_CALLCENTRE, IPCSYNC_CALLCENTRE, "--database", db.c_str(), "--operations", "1500", "--seed", seed.c_str(),
          "--accounts", "25", static_cast<char*>(nullptr));
    _exit(127);
  }
  size_t fed = 0;
  int status = 0;
  bool done = false;
  while (!done) {
    done = waitpid(pid, &status, WNOHANG) == pid;
    ASSERT_EQ(src->poll(), IPCSYNC_OK) << src->lastError();
    fed += feed(*src, *dst, "crm-to-replica", fed);
    if (!src->emitted.empty()) {
      ASSERT_EQ(src->acknowledge(src->emitted.back().sequence), IPCSYNC_OK) << src->lastError();
    }
    usleep(2000);
  }
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "simulator failed";
  pollAll(*src);
  fed += feed(*src, *dst, "crm-to-replica", fed);
  EXPECT_GT(fed, 1u);
  expectSameTables(path("src.db"), path("dst.db"));
  uint64_t last = 0;
  ASSERT_EQ(dst->lastApplied("crm-to-replica", last), IPCSYNC_OK);
  EXPECT_EQ(last, src->emitted.back().sequence);
  pollAll(*dst);
  EXPECT_TRUE(dst->emitted.empty()) << "the replica echoed what it applied";
}

}  // namespace
}  // namespace ipcsync::test
