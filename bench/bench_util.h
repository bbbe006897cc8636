// Small helpers shared by the benchmarks: timing, percentiles, and the peer table.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace ipcsync::bench {

using Clock = std::chrono::steady_clock;

inline double nsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
}

// The q-quantile (0..1) of `v`, by nearest rank; sorts `v`.
inline double quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

inline double median(std::vector<double> v) { return quantile(v, 0.5); }

// Prints "  label  value unit  (peer/ours = ratio)" rows, ours first.
struct Row {
  std::string label;
  double value;
};
inline void printComparison(const std::string& title, const char* unit, const Row& ours, const std::vector<Row>& peers,
                            bool lowerIsBetter = true) {
  std::printf("%s\n", title.c_str());
  std::printf("  %-34s %12.1f %s\n", ours.label.c_str(), ours.value, unit);
  for (const auto& p : peers) {
    const double ratio = lowerIsBetter ? p.value / ours.value : ours.value / p.value;
    std::printf("  %-34s %12.1f %s   ours is %.2fx %s\n", p.label.c_str(), p.value, unit, ratio,
                ratio >= 1 ? "faster" : "slower");
  }
}

}  // namespace ipcsync::bench
