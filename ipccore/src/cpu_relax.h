// A hint to the CPU that the caller is spinning on memory another core writes: it lets the other
// hyperthread run and avoids the memory-order flush when the wait ends.
#pragma once

namespace ipcsync {

inline void cpuRelax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace ipcsync
