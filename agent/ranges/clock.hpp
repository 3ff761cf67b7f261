// The time seam: the scheduler, the agent and the enforcer set read time only through this, so
// unit tests drive it (tests/doubles/fake_clock.hpp); SystemClock (system_clock.hpp) is the real
// one.
#pragma once

#include <chrono>

namespace og::ranges {

class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  // Monotonic: intervals, backoff, deadlines.
  [[nodiscard]] virtual time_point now() const = 0;
  // Wall clock: what status reports and what the last-known-good file records.
  [[nodiscard]] virtual std::chrono::system_clock::time_point wall() const = 0;
};

}  // namespace og::ranges
