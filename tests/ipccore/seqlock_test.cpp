#include "ipcsync/ipccore/seqlock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <limits>
#include <thread>

#include "ipcsync/ipccore/process_record.h"

namespace ipcsync {
namespace {

// Every word of the record carries the same counter; a torn copy would mix two counters.
ProcessRecord stamped(std::uint64_t n) {
  ProcessRecord r;
  auto* words = reinterpret_cast<std::uint64_t*>(&r);
  for (std::size_t i = 0; i < sizeof r / 8; ++i) words[i] = n;
  return r;
}

bool uniform(const ProcessRecord& r) {
  const auto* words = reinterpret_cast<const std::uint64_t*>(&r);
  for (std::size_t i = 1; i < sizeof r / 8; ++i)
    if (words[i] != words[0]) return false;
  return true;
}

TEST(SeqLockTest, ReadersNeverSeeATornRecordWhileTheWriterStores) {
  SeqLocked<ProcessRecord> cell;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (std::uint64_t n = 1; n <= 200000; ++n) cell.store(stamped(n));
    done = true;
  });
  std::uint64_t reads = 0, last = 0;
  while (!done) {
    const ProcessRecord r = cell.load(std::numeric_limits<int>::max()).value();  // the writer never pauses here
    ASSERT_TRUE(uniform(r)) << "torn read after " << reads << " reads";
    const auto n = *reinterpret_cast<const std::uint64_t*>(&r);
    ASSERT_GE(n, last) << "went back in time";
    last = n;
    ++reads;
  }
  writer.join();
  EXPECT_GT(reads, 0u);
  EXPECT_TRUE(uniform(cell.load().value()));
}

TEST(SeqLockTest, AReaderGivesUpOnAValueWhoseWriterDiedMidStore) {
  SeqLocked<ProcessRecord> cell;
  cell.store(stamped(1));
  // A writer that made the sequence odd and never came back: the raw sequence word is first.
  reinterpret_cast<std::atomic<std::uint64_t>*>(&cell)->fetch_add(1);
  EXPECT_FALSE(cell.load(1000).has_value()) << "no hang, no torn value: nothing";
}

}  // namespace
}  // namespace ipcsync
