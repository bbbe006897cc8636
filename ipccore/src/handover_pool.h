// HandoverPool: memory objects for hand-over loans, prepared ahead of need, and the unmapping of
// released ones, both on a helper thread off the caller's critical path.
//
// A handed-over message travels as its own memfd, sealed against writing before the engine sees
// it. A sealed object can never be written again, so every message needs a fresh one, and on
// these virtual machines getting fresh pages costs far more than copying them (about 1.1 µs per
// 4 KiB page to allocate and zero, 0.5 µs to free, against 0.05-0.2 µs to copy; handover.md).
// The pool keeps, per size class recently asked for, up to `depth` objects that are created,
// zero-filled and mapped writable with every page already present, so that a loan takes one
// without a system call and its filling takes no page fault. Release works the same way in the
// other direction: a receiver's release() hands the mapping to the helper, which unmaps it (the
// last reference, so the kernel frees the pages there, not in release()).
//
// An object in the pool has been seen by no other process: it is created here with
// MFD_CLOEXEC, and only send() passes it on, after unmapping and sealing it. Objects are never
// reused after a send or an abandon (an abandoned loan may hold data meant for someone else).
//
// The helper thread runs as SCHED_BATCH: a fair share of the CPU, but its wake-up never takes
// the core from the thread that is sending. take() and retire() never wait for it: if it holds
// the lock, or has more than `maxBytes` still to unmap, they prepare or unmap on the caller's
// thread instead, so memory stays bounded however far behind it falls.
//
// Thread safety: every member may be called from any thread. Pinned: copy and move deleted.
// depth 0: no helper thread; take() prepares on the caller's thread and retire() unmaps at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <expected>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ipcsync/ipccore/error.h"
#include "ipcsync/ipccore/unique_fd.h"

namespace ipcsync {

class HandoverPool {
 public:
  // A memfd of `size` bytes (sealed against shrinking and growing, not yet against writing),
  // mapped read-write at `data` for its whole size, zero-filled.
  struct Object {
    UniqueFd fd;
    std::byte* data = nullptr;
    std::uint64_t size = 0;
  };
  struct Stats {
    std::uint64_t taken = 0;     // loans served by a ready object
    std::uint64_t prepared = 0;  // loans that had to prepare on the caller's thread
    std::uint64_t readyBytes = 0;
  };

  // `label` names the objects (memfd:ipcsync-handover:<label>); at most `maxBytes` are kept ready.
  HandoverPool(std::string label, std::uint32_t depth, std::uint64_t maxBytes);
  HandoverPool(const HandoverPool&) = delete;
  HandoverPool& operator=(const HandoverPool&) = delete;
  // Stops the helper, unmaps what it had yet to unmap and drops every ready object.
  ~HandoverPool();

  // An object of at least `bytes` (its size class): a ready one if one waits, else one created
  // now on the caller's thread and mapped lazily; either way the helper then prepares a
  // replacement. A size the pool does not keep (depth times the class above maxBytes) gets an
  // object of `bytes` rounded up to a page. The mapping covers the object's whole size.
  // SystemError naming the step if the kernel refused.
  std::expected<Object, Error> take(std::uint64_t bytes);
  // Unmaps [data, data + size) and closes `fd` (if valid) on the helper thread.
  void retire(const void* data, std::uint64_t size, UniqueFd fd = {});
  Stats stats() const;

  // The size an object for `bytes` gets: a multiple of 4 KiB, at most a quarter above `bytes`
  // (four classes per doubling), so that messages of similar sizes share objects.
  static std::uint64_t sizeClass(std::uint64_t bytes) noexcept;
  // Creates and maps an object. With `populate`, zero-fills it with pwrite and maps it with
  // MAP_POPULATE, so that writing it takes no page fault (together about half of what a fault
  // per page costs here); without, its pages come with the first write to each.
  static std::expected<Object, Error> prepare(const std::string& label, std::uint64_t size, bool populate);

 private:
  struct SizeClass {
    std::deque<Object> ready;
    std::uint32_t preparing = 0;
    std::chrono::steady_clock::time_point lastUsed{};
    bool stalled = false;  // no room or preparing failed: not refilled until the next take()
  };
  struct Retired {
    const void* data;
    std::uint64_t size;
    UniqueFd fd;
  };
  void run();
  void startLocked();  // m_mutex held
  // Drops ready objects of the least recently used other classes until `want` more bytes fit.
  void makeRoomLocked(std::uint64_t keep, std::uint64_t want);
  std::uint64_t committedLocked() const;
  static void unmap(Retired& r) noexcept;

  const std::string m_label;
  const std::uint32_t m_depth;
  const std::uint64_t m_maxBytes;
  mutable std::mutex m_mutex;
  std::condition_variable m_wake;
  std::map<std::uint64_t, SizeClass> m_classes;  // by object size; guarded by m_mutex
  std::vector<Retired> m_retired;                // guarded by m_mutex
  std::uint64_t m_retiredBytes = 0;              // their size; beyond m_maxBytes retire() unmaps itself
  std::atomic<std::uint64_t> m_taken{0};
  std::atomic<std::uint64_t> m_prepared{0};
  bool m_stop = false;                           // guarded by m_mutex
  std::thread m_thread;                          // started at the first take or retire
};

}  // namespace ipcsync
