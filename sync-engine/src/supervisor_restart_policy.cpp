#include "ipcsync/sync/restart_policy.h"

#include <algorithm>

namespace ipcsync {

RestartPolicy::Decision RestartPolicy::onCrash(Clock::time_point now) {
  while (!m_crashes.empty() && now - m_crashes.front() >= m_config.crashWindow) m_crashes.pop_front();
  m_crashes.push_back(now);
  Decision d;
  d.crashesInWindow = static_cast<std::uint32_t>(m_crashes.size());
  if (d.crashesInWindow >= m_config.maxCrashes) {
    d.giveUp = true;
    return d;
  }
  // initial * 2^(n-1), computed without overflow: stop doubling once the cap is reached.
  auto delay = m_config.restartInitial;
  for (std::uint32_t i = 1; i < d.crashesInWindow && delay < m_config.restartMax; ++i) delay *= 2;
  d.delay = std::min(delay, m_config.restartMax);
  return d;
}

}  // namespace ipcsync
