#include "ipcsync/sync/restart_policy.h"

#include <gtest/gtest.h>

namespace ipcsync {
namespace {

using namespace std::chrono_literals;

SupervisionConfig config(std::uint32_t maxCrashes) {
  SupervisionConfig c;
  c.restartInitial = 200ms;
  c.restartMax = 1000ms;
  c.maxCrashes = maxCrashes;
  c.crashWindow = 60s;
  return c;
}

TEST(RestartPolicyTest, DelaysDoubleFromTheInitialOneUpToTheCap) {
  RestartPolicy p(config(100));
  const auto t0 = RestartPolicy::Clock::time_point{} + 1h;
  std::vector<long> delays;
  for (int i = 0; i < 6; ++i) delays.push_back(p.onCrash(t0 + i * 1s).delay.count());
  EXPECT_EQ(delays, (std::vector<long>{200, 400, 800, 1000, 1000, 1000}));
}

TEST(RestartPolicyTest, TheCrashThatReachesMaxCrashesWithinTheWindowGivesUp) {
  RestartPolicy p(config(3));
  const auto t0 = RestartPolicy::Clock::time_point{} + 1h;
  EXPECT_FALSE(p.onCrash(t0).giveUp);
  EXPECT_FALSE(p.onCrash(t0 + 10s).giveUp);
  const auto d = p.onCrash(t0 + 20s);
  EXPECT_TRUE(d.giveUp);
  EXPECT_EQ(d.crashesInWindow, 3u);
}

TEST(RestartPolicyTest, CrashesOlderThanTheWindowAreForgottenAndTheDelayStartsOver) {
  RestartPolicy p(config(3));
  const auto t0 = RestartPolicy::Clock::time_point{} + 1h;
  EXPECT_EQ(p.onCrash(t0).delay, 200ms);
  EXPECT_EQ(p.onCrash(t0 + 30s).delay, 400ms);
  const auto d = p.onCrash(t0 + 61s);  // the first crash has left the window
  EXPECT_FALSE(d.giveUp);
  EXPECT_EQ(d.crashesInWindow, 2u);
  EXPECT_EQ(d.delay, 400ms);
  const auto later = p.onCrash(t0 + 200s);  // a quiet window: from the start again
  EXPECT_EQ(later.crashesInWindow, 1u);
  EXPECT_EQ(later.delay, 200ms);
}

TEST(RestartPolicyTest, AHugeCrashCountDoesNotOverflowTheDelay) {
  auto c = config(1000);
  c.restartMax = std::chrono::milliseconds(86'400'000);
  RestartPolicy p(c);
  const auto t0 = RestartPolicy::Clock::time_point{} + 1h;
  std::chrono::milliseconds last{};
  for (int i = 0; i < 200; ++i) last = p.onCrash(t0 + i * 1ms).delay;
  EXPECT_EQ(last, c.restartMax);
}

}  // namespace
}  // namespace ipcsync
