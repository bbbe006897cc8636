#include "handover_pool.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <utility>

namespace ipcsync {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::size_t kZeroChunk = 64 * 1024;
const std::byte kZeros[kZeroChunk] = {};  // in .bss: reading it touches the shared zero page only

}  // namespace

std::uint64_t HandoverPool::sizeClass(std::uint64_t bytes) noexcept {
  if (bytes <= 4 * kPage) return (std::max<std::uint64_t>(bytes, 1) + kPage - 1) / kPage * kPage;
  const std::uint64_t step = std::bit_floor(bytes) / 4;  // >= kPage here
  return (bytes + step - 1) / step * step;
}

std::expected<HandoverPool::Object, Error> HandoverPool::prepare(const std::string& label, std::uint64_t size, bool populate) {
  Object o;
  o.fd = UniqueFd(::memfd_create(("ipcsync-handover:" + label).c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!o.fd) return std::unexpected(systemError("memfd_create for a hand-over", errno));
  if (::ftruncate(o.fd.get(), static_cast<off_t>(size)) != 0)
    return std::unexpected(systemError("ftruncate a hand-over to " + std::to_string(size) + " B", errno));
  // Allocate and zero every page through the page cache (no fault per page), so that the
  // populating mmap below maps them in batches and the sender's writes take no fault.
  for (std::uint64_t off = 0; populate && off < size;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kZeroChunk, size - off));
    const ssize_t w = ::pwrite(o.fd.get(), kZeros, n, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return std::unexpected(systemError("zero-fill a hand-over of " + std::to_string(size) + " B", errno));
    off += static_cast<std::uint64_t>(w);
  }
  if (::fcntl(o.fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)
    return std::unexpected(systemError("seal a hand-over's size", errno));
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0), o.fd.get(), 0);
  if (p == MAP_FAILED) return std::unexpected(systemError("mmap a hand-over of " + std::to_string(size) + " B", errno));
  o.data = static_cast<std::byte*>(p);
  o.size = size;
  return o;
}

HandoverPool::HandoverPool(std::string label, std::uint32_t depth, std::uint64_t maxBytes)
    : m_label(std::move(label)), m_depth(depth), m_maxBytes(maxBytes) {}

HandoverPool::~HandoverPool() {
  std::thread helper;
  {
    std::lock_guard lock(m_mutex);
    m_stop = true;
    helper = std::move(m_thread);
  }
  m_wake.notify_all();
  if (helper.joinable()) helper.join();
  for (auto& r : m_retired) unmap(r);
  for (auto& [size, c] : m_classes)
    for (auto& o : c.ready) ::munmap(o.data, o.size);
}

void HandoverPool::unmap(Retired& r) noexcept {
  if (r.data) ::munmap(const_cast<void*>(r.data), r.size);
  r.fd.reset();
}

void HandoverPool::startLocked() {
  if (m_depth > 0 && !m_thread.joinable() && !m_stop) m_thread = std::thread([this] { run(); });
}

std::uint64_t HandoverPool::committedLocked() const {
  std::uint64_t n = 0;
  for (const auto& [size, c] : m_classes) n += size * (c.ready.size() + c.preparing);
  return n;
}

void HandoverPool::makeRoomLocked(std::uint64_t keep, std::uint64_t want) {
  while (committedLocked() + want > m_maxBytes) {
    SizeClass* oldest = nullptr;
    for (auto& [size, c] : m_classes)
      if (size != keep && !c.ready.empty() && (!oldest || c.lastUsed < oldest->lastUsed)) oldest = &c;
    if (!oldest) return;
    Object o = std::move(oldest->ready.front());
    oldest->ready.pop_front();
    m_retiredBytes += o.size;
    m_retired.push_back(Retired{o.data, o.size, std::move(o.fd)});
  }
}

std::expected<HandoverPool::Object, Error> HandoverPool::take(std::uint64_t bytes) {
  const std::uint64_t size = sizeClass(bytes);
  // Never wait for the helper: it may have been preempted holding the lock. Then this loan is
  // prepared here, as without a pool.
  if (std::unique_lock lock(m_mutex, std::try_to_lock); lock && m_depth > 0 && size * m_depth <= m_maxBytes) {
    SizeClass& c = m_classes[size];
    c.lastUsed = std::chrono::steady_clock::now();
    c.stalled = false;
    startLocked();
    if (!c.ready.empty()) {
      Object o = std::move(c.ready.front());
      c.ready.pop_front();
      m_taken.fetch_add(1, std::memory_order_relaxed);
      lock.unlock();
      m_wake.notify_one();  // prepare the replacement
      return o;
    }
    lock.unlock();
    m_wake.notify_one();
  }
  // On the caller's thread, populating first costs as much as the faults of filling would, and
  // commits pages the caller may never write: map lazily, the exact size when it is not a class
  // the pool keeps.
  m_prepared.fetch_add(1, std::memory_order_relaxed);
  const bool pooled = m_depth > 0 && size * m_depth <= m_maxBytes;
  return prepare(m_label, pooled ? size : (bytes + kPage - 1) / kPage * kPage, false);
}

void HandoverPool::retire(const void* data, std::uint64_t size, UniqueFd fd) {
  Retired r{data, size, std::move(fd)};
  if (m_depth > 0) {
    if (std::unique_lock lock(m_mutex, std::try_to_lock); lock && !m_stop && m_retiredBytes + size <= m_maxBytes) {
      startLocked();
      m_retiredBytes += size;
      m_retired.push_back(std::move(r));
      lock.unlock();
      m_wake.notify_one();
      return;
    }
  }
  unmap(r);  // no pool, stopping, the helper holds the lock or is that far behind: do not wait for it
}

HandoverPool::Stats HandoverPool::stats() const {
  std::lock_guard lock(m_mutex);
  Stats s{m_taken.load(std::memory_order_relaxed), m_prepared.load(std::memory_order_relaxed), 0};
  for (const auto& [size, c] : m_classes) s.readyBytes += size * c.ready.size();
  return s;
}

void HandoverPool::run() {
  // SCHED_BATCH: a fair share of the CPU like any thread, but its wake-up never preempts the
  // thread running on the core it wakes on. At the default policy, the helper woken by loan()
  // took the core from the sender in the middle of its send and doubled the one-way latency of
  // sparse 1 MiB messages; at SCHED_IDLE it starved for seconds while the machine was busy.
  sched_param none{};
  (void)::pthread_setschedparam(::pthread_self(), SCHED_BATCH, &none);
  std::unique_lock lock(m_mutex);
  // The class most recently asked for that is short of objects, or 0.
  auto next = [&]() -> std::uint64_t {
    std::uint64_t best = 0;
    std::chrono::steady_clock::time_point bestUsed{};
    for (auto& [size, c] : m_classes)
      if (!c.stalled && c.ready.size() + c.preparing < m_depth && (best == 0 || c.lastUsed > bestUsed)) {
        best = size;
        bestUsed = c.lastUsed;
      }
    return best;
  };
  for (;;) {
    m_wake.wait(lock, [&] { return m_stop || !m_retired.empty() || next() != 0; });
    if (m_stop) return;
    if (!m_retired.empty()) {  // releases first: they give memory back
      std::vector<Retired> batch = std::exchange(m_retired, {});
      lock.unlock();
      std::uint64_t bytes = 0;
      for (auto& r : batch) {
        bytes += r.size;
        unmap(r);
      }
      lock.lock();
      m_retiredBytes -= bytes;
      continue;
    }
    const std::uint64_t size = next();
    makeRoomLocked(size, size);
    if (committedLocked() + size > m_maxBytes) {  // nothing else to drop: stays as deep as it is
      m_classes[size].stalled = true;             // until a loan asks for this class again
      continue;
    }
    ++m_classes[size].preparing;
    lock.unlock();
    auto o = prepare(m_label, size, true);
    lock.lock();
    SizeClass& c = m_classes[size];
    --c.preparing;
    if (!o) {  // out of memory or descriptors: try again at the next loan, not in a loop
      c.stalled = true;
      continue;
    }
    if (m_stop) {
      ::munmap(o->data, o->size);
      return;
    }
    c.ready.push_back(std::move(*o));
  }
}

}  // namespace ipcsync
