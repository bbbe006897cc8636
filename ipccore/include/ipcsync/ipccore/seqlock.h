// SeqLocked<T>: one writer, many readers, no reader ever sees a torn value.
//
// The value lives in shared memory that readers may map read-only, so readers never write.
// The writer makes the sequence odd, stores the value word by word, and makes it even again;
// a reader copies the words between two loads of the sequence and retries when they differ or
// are odd. Every word is accessed atomically (release stores, acquire loads), so the protocol
// is free of data races in the C++ model and clean under ThreadSanitizer, and costs plain
// moves on x86-64. Exactly one writer at a time is the caller's contract (in ipcsync: the
// engine alone writes the admin segment).
#pragma once

#include <sched.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>

namespace ipcsync {

template <typename T>
class SeqLocked {
  static_assert(std::is_trivially_copyable_v<T>);
  static_assert(sizeof(T) % sizeof(std::uint64_t) == 0, "pad T to whole 64-bit words");
  static constexpr std::size_t kWords = sizeof(T) / sizeof(std::uint64_t);
  static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);

 public:
  // Writer side. Not thread-safe against another writer.
  void store(const T& value) noexcept {
    const std::uint64_t s = m_sequence.load(std::memory_order_relaxed);
    m_sequence.store(s + 1, std::memory_order_relaxed);
    std::uint64_t words[kWords];
    std::memcpy(words, &value, sizeof(T));
    for (std::size_t i = 0; i < kWords; ++i)  // release: each word is ordered after "odd"
      std::atomic_ref<std::uint64_t>(m_words[i]).store(words[i], std::memory_order_release);
    m_sequence.store(s + 2, std::memory_order_release);
  }

  // Reader side: a consistent copy, retrying while a store is in progress (stores are short);
  // nothing when the value stays inconsistent for `attempts` tries, as it does forever when its
  // writer died in the middle of a store.
  std::optional<T> load(int attempts = 100000) const noexcept {
    T out;
    for (int i = 0; i < attempts; ++i) {
      if (tryLoad(out)) return out;
      if (i % 64 == 63) sched_yield();
    }
    return std::nullopt;
  }

  // One attempt; false when a store raced with the copy.
  bool tryLoad(T& out) const noexcept {
    const std::uint64_t before = m_sequence.load(std::memory_order_acquire);
    if (before & 1U) return false;
    std::uint64_t words[kWords];
    for (std::size_t i = 0; i < kWords; ++i)  // acquire: the check below cannot move above
      words[i] = std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(m_words[i]))
                     .load(std::memory_order_acquire);
    if (m_sequence.load(std::memory_order_relaxed) != before) return false;
    std::memcpy(&out, words, sizeof(T));
    return true;
  }

  std::uint64_t sequence() const noexcept { return m_sequence.load(std::memory_order_acquire); }

 private:
  std::atomic<std::uint64_t> m_sequence{0};
  alignas(8) std::uint64_t m_words[kWords]{};
};

}  // namespace ipcsync
