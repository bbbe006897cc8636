// LocationRing: a lock-free single-producer, single-consumer ring of Locations in shared memory.
//
// Each control segment holds two: outbound (the owner produces, the engine consumes) and inbound
// (the engine produces, the owner consumes). `tail` is written only by the producer, `head` only
// by the consumer; a slot is published by the release store of `tail` and freed by the release
// store of `head`. The consumer of an outbound ring (the engine) must not trust `tail`: it checks
// that tail - head never exceeds the capacity (see `pending`).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "ipcsync/ipccore/location.h"

namespace ipcsync {

inline constexpr std::uint32_t kRingCapacity = 1024;  // a power of two

struct LocationRing {
  alignas(64) std::atomic<std::uint64_t> head;  // next slot to consume
  alignas(64) std::atomic<std::uint64_t> tail;  // next slot to produce
  alignas(64) Location entries[kRingCapacity];  // not "slots": Qt defines that as a macro

  // Producer side. `headSeen` is the producer's own (process-local) copy of the consumer's head:
  // the shared head is read only when the ring looks full, so a flowing ring costs the producer no
  // read of the cache line the consumer keeps writing.
  bool full(std::uint64_t& headSeen) const noexcept {
    const std::uint64_t t = tail.load(std::memory_order_relaxed);
    if (t - headSeen < kRingCapacity) return false;
    headSeen = head.load(std::memory_order_acquire);
    return t - headSeen >= kRingCapacity;
  }
  // False when full.
  bool push(const Location& l, std::uint64_t& headSeen) noexcept {
    if (full(headSeen)) return false;
    const std::uint64_t t = tail.load(std::memory_order_relaxed);
    entries[t & (kRingCapacity - 1)] = l;
    tail.store(t + 1, std::memory_order_seq_cst);  // seq_cst: pairs with the consumer's sleep flag
    return true;
  }
  bool push(const Location& l) noexcept {
    std::uint64_t headSeen = head.load(std::memory_order_acquire);
    return push(l, headSeen);
  }
  // Batched production: `stage` writes the entry `staged` places after the published tail, where
  // the consumer cannot see it yet; `publish(n)` makes the n staged entries visible with one
  // store (and one cache-line transfer to the consumer) instead of n. A staged entry is not in
  // the ring until published: the producer must publish (or drop) what it staged before it lets
  // anything else push.
  bool fullAfter(std::uint64_t staged, std::uint64_t& headSeen) const noexcept {
    const std::uint64_t t = tail.load(std::memory_order_relaxed) + staged;
    if (t - headSeen < kRingCapacity) return false;
    headSeen = head.load(std::memory_order_acquire);
    return t - headSeen >= kRingCapacity;
  }
  void stage(const Location& l, std::uint64_t staged) noexcept {
    entries[(tail.load(std::memory_order_relaxed) + staged) & (kRingCapacity - 1)] = l;
  }
  void publish(std::uint64_t n) noexcept {
    tail.store(tail.load(std::memory_order_relaxed) + n, std::memory_order_seq_cst);  // seq_cst: as push
  }

  // Consumer side: how many entries wait, or nothing when the producer corrupted the indices.
  std::optional<std::uint64_t> pending() const noexcept {
    const std::uint64_t n = tail.load(std::memory_order_acquire) - head.load(std::memory_order_relaxed);
    if (n > kRingCapacity) return std::nullopt;
    return n;
  }
  // The oldest entry; only valid when pending() > 0. Copied out, so a producer scribbling on the
  // slot afterwards cannot change what the consumer validated.
  Location front() const noexcept { return entries[head.load(std::memory_order_relaxed) & (kRingCapacity - 1)]; }
  // The entry k places after the oldest; only valid when pending() > k. Copied out, as front().
  Location at(std::uint64_t k) const noexcept {
    return entries[(head.load(std::memory_order_relaxed) + k) & (kRingCapacity - 1)];
  }
  // seq_cst: the consumer may look at the producer's "wants room" flag next (Dekker).
  void pop() noexcept { head.store(head.load(std::memory_order_relaxed) + 1, std::memory_order_seq_cst); }
  // Consumes the n oldest entries with one store (batched consumption).
  void pop(std::uint64_t n) noexcept {
    head.store(head.load(std::memory_order_relaxed) + n, std::memory_order_seq_cst);
  }

  bool empty() const noexcept {
    return tail.load(std::memory_order_seq_cst) == head.load(std::memory_order_relaxed);
  }
  // Consumer side, with the consumer's own copy of the producer's tail: the shared tail is read
  // only when everything seen so far has been consumed.
  bool empty(std::uint64_t& tailSeen) const noexcept {
    if (head.load(std::memory_order_relaxed) != tailSeen) return false;
    tailSeen = tail.load(std::memory_order_seq_cst);
    return head.load(std::memory_order_relaxed) == tailSeen;
  }
};

}  // namespace ipcsync
