// RestartPolicy: when to restart a crashed plugin host, and when to give up on it.
//
// Each crash is remembered with its time. The delay before the next start doubles with every
// crash still inside the crash window (initial, 2x, 4x, ... capped at the maximum), so a host
// that ran quietly for a whole window starts again from the initial delay. The crash that brings
// the count inside the window to max_crashes fails the instance for good. Pure logic, no clock
// of its own: callers pass the time. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>

#include "ipcsync/sync/plugin_config.h"

namespace ipcsync {

class RestartPolicy {
 public:
  using Clock = std::chrono::steady_clock;

  struct Decision {
    bool giveUp = false;                 // max_crashes reached within the window: FAILED
    std::chrono::milliseconds delay{0};  // otherwise: start again after this
    std::uint32_t crashesInWindow = 0;   // including this one
  };

  explicit RestartPolicy(SupervisionConfig config) : m_config(config) {}

  // Records a crash at `now` and says what to do.
  Decision onCrash(Clock::time_point now);

 private:
  SupervisionConfig m_config;
  std::deque<Clock::time_point> m_crashes;  // within the window, oldest first
};

}  // namespace ipcsync
