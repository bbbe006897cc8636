// Wake-up (plugin ABI 1.1, set_wake_fd): crm hands the host an inotify descriptor on its database
// files, readable once another process commits; poll() reads it empty after its own writes, so
// the host is not woken again by crm itself (nor by its applies and acknowledgements). A host of ABI 1.0 gets no descriptor and crm still
// captures by polling.
#include <poll.h>

#include "crm_fixture.h"

namespace ipcsync::test {
namespace {

using CrmWakeTest = CrmTest;

// True once `fd` is readable, within `timeoutMs` (0: right now).
bool readable(int fd, int timeoutMs) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeoutMs) > 0 && (p.revents & POLLIN) != 0;
}

TEST_F(CrmWakeTest, ACommitByAnotherProcessMakesTheWakeDescriptorReadableAndPollReadsItEmpty) {
  auto src = crm("src");
  ASSERT_GE(src->wakeFd, 0) << "crm gave the host no wake descriptor";
  pollAll(*src);
  EXPECT_FALSE(readable(src->wakeFd, 0)) << "readable before anyone committed";

  shell(path("src.db"), "INSERT INTO accounts VALUES (1, 'Acme', 'north', 'retail', 100);");
  // Generous: the event is there as soon as the shell's commit returned.
  ASSERT_TRUE(readable(src->wakeFd, 10000)) << "a commit by the sqlite3 shell did not wake the host";
  ASSERT_EQ(src->poll(), IPCSYNC_OK) << src->lastError();
  ASSERT_EQ(src->emitted.size(), 1u) << "one poll after the wake-up emits the commit";
  // That poll cut (a write of crm's own): it must not leave the descriptor readable.
  EXPECT_FALSE(readable(src->wakeFd, 0)) << "crm's own writes in poll() would wake the host again";
}

TEST_F(CrmWakeTest, ItsOwnAppliesAndAcknowledgementsDoNotWakeTheHost) {
  auto src = crm("src");
  auto dst = crm("dst");
  ASSERT_GE(dst->wakeFd, 0);
  ASSERT_GE(src->wakeFd, 0);
  pollAll(*dst);
  shell(path("src.db"), "INSERT INTO accounts VALUES (1, 'Acme', 'north', 'retail', 100);"
                        "INSERT INTO accounts VALUES (2, 'Globex', 'south', NULL, 100);");
  pollAll(*src);
  ASSERT_EQ(feed(*src, *dst, "r"), 1u);
  // The apply committed to the watched file; crm read that event itself, so nothing wakes the
  // host (a host woken by every apply would poll once per change-set a replica receives).
  EXPECT_FALSE(readable(dst->wakeFd, 0)) << "crm's own apply left its wake descriptor readable";
  ASSERT_EQ(src->acknowledge(1), IPCSYNC_OK) << src->lastError();
  EXPECT_FALSE(readable(src->wakeFd, 0)) << "crm's own acknowledgement left its wake descriptor readable";
  // Still woken by others after that.
  shell(path("dst.db"), "UPDATE accounts SET region = 'east', updated_at = 200 WHERE id = 1;");
  ASSERT_TRUE(readable(dst->wakeFd, 10000));
  ASSERT_EQ(dst->poll(), IPCSYNC_OK) << dst->lastError();
  EXPECT_EQ(dst->emitted.size(), 1u) << "the shell's update, and nothing of what was applied (no echo)";
  EXPECT_FALSE(readable(dst->wakeFd, 0));
}

TEST_F(CrmWakeTest, UnderAnAbi10HostItGivesNoDescriptorAndStillCapturesByPolling) {
  auto host = std::make_unique<TestHost>(IPCSYNC_CRM_PLUGIN, std::map<std::string, std::string>{{"database", path("old.db")}},
                                         m_dir / "old-data");
  host->offerAbi10Services();
  ASSERT_EQ(host->create(), IPCSYNC_OK) << host->lastError();
  ASSERT_EQ(host->start(0), IPCSYNC_OK) << host->lastError();
  EXPECT_EQ(host->wakeFd, -1);
  shell(path("old.db"), "INSERT INTO accounts VALUES (1, 'Acme', 'north', 'retail', 100);");
  pollAll(*host);
  EXPECT_EQ(host->emitted.size(), 1u);
}

TEST_F(CrmWakeTest, WakeOnCommitFalseGivesNoDescriptorAndABadValueIsRefused) {
  auto off = crm("off", {{"wake_on_commit", "false"}});
  EXPECT_EQ(off->wakeFd, -1);
  shell(path("off.db"), "INSERT INTO accounts VALUES (1, 'Acme', 'north', 'retail', 100);");
  pollAll(*off);
  EXPECT_EQ(off->emitted.size(), 1u);

  TestHost bad(IPCSYNC_CRM_PLUGIN, {{"database", path("bad.db")}, {"wake_on_commit", "maybe"}}, m_dir / "bad-data");
  EXPECT_EQ(bad.create(), IPCSYNC_EINVAL);
  EXPECT_NE(bad.lastError().find("'wake_on_commit' is 'maybe': expected true or false"), std::string::npos)
      << bad.lastError();
}

}  // namespace
}  // namespace ipcsync::test
