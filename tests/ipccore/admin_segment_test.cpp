#include "ipcsync/ipccore/admin_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>

#include "processes.h"

namespace ipcsync {
namespace {

EngineIdentity self() {
  const auto pid = static_cast<std::int32_t>(::getpid());
  return EngineIdentity{pid, processStartTicks(pid), "/tmp/none.sock"};
}

TEST(AdminSegmentTest, ObserversSeeTheHeaderAndRecordsTheEngineWrites) {
  const std::string ns = test::uniqueNamespace("adm");
  auto seg = AdminSegment::create(ns, 8, self());
  ASSERT_TRUE(seg) << seg.error().message();
  EXPECT_EQ(AdminSegment::open(ns).error().code, Errc::EngineBusy) << "unpublished: still starting";
  (*seg)->publish();
  ProcessRecord r;
  r.pid = 77;
  r.state = RecordState::Registered;
  std::strcpy(r.name, "crm");
  (*seg)->store(3, r);
  auto obs = AdminSegment::open(ns);
  ASSERT_TRUE(obs) << obs.error().message();
  EXPECT_EQ((*obs)->capacity(), 8u);
  EXPECT_EQ((*obs)->engine().pid, ::getpid());
  EXPECT_TRUE((*obs)->engineAlive());
  const auto snap = (*obs)->snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].first, 3u);
  EXPECT_EQ(snap[0].second.nameView(), "crm");
  seg->reset();
  EXPECT_FALSE(AdminSegment::open(ns)) << "only the creator unlinks, and it did";
}

TEST(AdminSegmentTest, RefusesASegmentWithAForeignHeader) {
  const std::string ns = test::uniqueNamespace("bad");
  const std::string name = "/" + AdminSegment::shmName(ns);
  const int fd = ::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 65536), 0);
  const char junk[] = "not an admin segment, just bytes";
  ASSERT_EQ(::write(fd, junk, sizeof junk), static_cast<ssize_t>(sizeof junk));
  ::close(fd);
  auto obs = AdminSegment::open(ns);
  ::shm_unlink(name.c_str());
  ASSERT_FALSE(obs);
  EXPECT_EQ(obs.error().code, Errc::BadSegment);
  EXPECT_NE(obs.error().detail.find("layout version"), std::string::npos) << obs.error().message();
}

TEST(AdminSegmentTest, RejectsInvalidNamespaces) {
  for (const char* ns : {"", ".hidden", "has/slash", "spa ce"}) {
    auto seg = AdminSegment::open(ns);
    ASSERT_FALSE(seg) << ns;
    EXPECT_EQ(seg.error().code, Errc::InvalidArgument);
  }
}

TEST(AdminSegmentTest, ANamespaceServedByALiveEngineCannotBeCreatedAgain) {
  const std::string ns = test::uniqueNamespace("twice");
  auto first = AdminSegment::create(ns, 4, self());
  ASSERT_TRUE(first);
  (*first)->publish();
  auto second = AdminSegment::create(ns, 4, self());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::EngineAlreadyRunning);
  EXPECT_NE(second.error().detail.find("pid " + std::to_string(::getpid())), std::string::npos);
}

// Two processes: the engine side rewrites records as fast as it can, an observer in another
// process copies them; every copy must be whole.
TEST(AdminSegmentTest, ObserversInAnotherProcessNeverSeeATornRecord) {
  const std::string ns = test::uniqueNamespace("torn");
  auto seg = AdminSegment::create(ns, 2, self());
  ASSERT_TRUE(seg);
  (*seg)->publish();
  test::Child observer([&] {
    auto obs = AdminSegment::open(ns);
    if (!obs) return 1;
    int whole = 0;
    for (int i = 0; i < 20000; ++i) {
      const auto r = (*obs)->load(1);
      if (!r) continue;  // starved by a writer that never pauses (the engine writes 20 times a second)
      if (r->pid != static_cast<std::int32_t>(r->generation) || r->stats.allocations != r->generation ||
          r->stats.freeBlocksPerOrder[kMaxOrders - 1] != r->generation)
        return 2;
      ++whole;
    }
    return whole > 0 ? 0 : 3;
  });
  ProcessRecord r;
  std::optional<int> code;
  for (std::uint64_t n = 1; !code; ++n) {
    r.generation = n;
    r.pid = static_cast<std::int32_t>(n);
    r.stats.allocations = n;
    r.stats.freeBlocksPerOrder[kMaxOrders - 1] = n;
    (*seg)->store(1, r);
    for (int spin = 0; spin < 64; ++spin) asm volatile("" ::: "memory");  // leave readers a window
    if (n % 1024 == 0) code = observer.poll();
  }
  EXPECT_EQ(*code, 0) << "the observer saw a torn record";
}

}  // namespace
}  // namespace ipcsync
