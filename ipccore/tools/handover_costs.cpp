// ipcsync-handover-costs: what each step of a hand-over costs on this machine, per object and
// per 4 KiB page, beside a memcpy of the same size. One process, no engine: the kernel's share
// of the hand-over path, which decides whether handing over can beat copying
// (docs/design/handover.md).
//
//   ipcsync-handover-costs [MiB]      (default 4; medians of 11 rounds)
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "handover_pool.h"

namespace {

using Clock = std::chrono::steady_clock;
double usSince(Clock::time_point t0) { return std::chrono::duration<double, std::micro>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 4;
  if (mib == 0 || mib > 1024) {
    std::fprintf(stderr, "usage: ipcsync-handover-costs [MiB 1..1024]\n");
    return 2;
  }
  const std::uint64_t size = mib << 20;
  const double pages = static_cast<double>(size) / 4096;
  std::vector<std::byte> source(size, std::byte{7}), sink(size);
  enum Step { kPrepare, kFill, kMemcpy, kUnmapWritable, kSeal, kMapLazy, kReadFaulting, kReadMapped, kRelease, kSteps };
  const char* names[kSteps] = {"prepare (memfd, zero-fill, map populated)", "fill the loan (memcpy into it)",
                               "memcpy between two buffers", "unmap the writable mapping (send)",
                               "seal against writing (send)", "map read-only, lazily (receive)",
                               "read every byte, faulting", "read every byte again, mapped",
                               "unmap and free (release)"};
  std::vector<double> t[kSteps];
  for (int round = 0; round < 11; ++round) {
    auto t0 = Clock::now();
    auto o = ipcsync::HandoverPool::prepare("costs", size, true);
    if (!o) {
      std::fprintf(stderr, "%s\n", o.error().message().c_str());
      return 1;
    }
    t[kPrepare].push_back(usSince(t0));
    t0 = Clock::now();
    std::memcpy(o->data, source.data(), size);
    t[kFill].push_back(usSince(t0));
    t0 = Clock::now();
    std::memcpy(sink.data(), source.data(), size);
    t[kMemcpy].push_back(usSince(t0));
    t0 = Clock::now();
    ::munmap(o->data, size);
    t[kUnmapWritable].push_back(usSince(t0));
    t0 = Clock::now();
    if (::fcntl(o->fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
      std::perror("seal");
      return 1;
    }
    t[kSeal].push_back(usSince(t0));
    t0 = Clock::now();
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, o->fd.get(), 0);
    if (p == MAP_FAILED) {
      std::perror("mmap");
      return 1;
    }
    o->fd.reset();  // as the receiver does: the mapping keeps the object
    t[kMapLazy].push_back(usSince(t0));
    t0 = Clock::now();
    std::memcpy(sink.data(), p, size);
    t[kReadFaulting].push_back(usSince(t0));
    t0 = Clock::now();
    std::memcpy(sink.data(), p, size);
    t[kReadMapped].push_back(usSince(t0));
    t0 = Clock::now();
    ::munmap(p, size);
    t[kRelease].push_back(usSince(t0));
  }
  std::printf("hand-over steps for %llu MiB (%.0f pages of 4 KiB), medians of 11 rounds\n",
              static_cast<unsigned long long>(mib), pages);
  std::printf("  %-44s %10s %12s\n", "", "us", "us per page");
  for (int s = 0; s < kSteps; ++s) {
    std::sort(t[s].begin(), t[s].end());
    const double m = t[s][t[s].size() / 2];
    std::printf("  %-44s %10.1f %12.3f\n", names[s], m, m / pages);
  }
  return 0;
}
