// When to refresh next: the interval with +-jitter after a success (or a 304), jittered
// exponential backoff after failures. Pure logic over a Clock so tests drive time.
#pragma once

#include <chrono>
#include <functional>

#include "originguard/config.hpp"
#include "ranges/clock.hpp"

namespace og::ranges {

struct ScheduleConfig {
  Seconds interval{3600};
  double jitter = 0.1;
  Seconds retry_min{30};
  Seconds retry_max{3600};
  static ScheduleConfig from(const RangesConfig& c) { return {c.refresh_interval, c.jitter, c.retry_min, c.retry_max}; }
};

// Delay before the first refresh after a start: what is left of the interval for a
// last-known-good set younger than it (a restarting fleet does not stampede the API), none for
// an older one, and none for one fetched "in the future" (a clock set back, an edited state
// file), which would otherwise postpone every refresh.
[[nodiscard]] std::chrono::milliseconds first_refresh_delay(std::chrono::system_clock::time_point fetched_at,
                                                            std::chrono::system_clock::time_point now,
                                                            Seconds interval);

class RefreshScheduler {
 public:
  // `uniform01` returns values in [0, 1); the default is a seeded std::mt19937_64.
  RefreshScheduler(ScheduleConfig cfg, const Clock& clock, std::function<double()> uniform01 = {});

  void set_config(ScheduleConfig cfg) { cfg_ = cfg; }
  void on_success();  // a 200 that validated, or a 304
  void on_failure();  // fetch or validation failed
  void schedule_in(std::chrono::milliseconds d) { next_ = clock_.now() + d; }

  [[nodiscard]] Clock::time_point next_due() const { return next_; }
  [[nodiscard]] std::chrono::milliseconds until_next() const;
  [[nodiscard]] int consecutive_failures() const { return failures_; }

  // Un-jittered backoff for the n-th consecutive failure (n >= 1): retry_min * 2^(n-1),
  // capped at retry_max.
  [[nodiscard]] std::chrono::milliseconds backoff_base(int n) const;
  // Delay after a success: interval * (1 + jitter * u), u uniform in [-1, 1).
  [[nodiscard]] std::chrono::milliseconds success_delay();
  // Delay after the n-th failure: "equal jitter", uniform in [base/2, base).
  [[nodiscard]] std::chrono::milliseconds failure_delay(int n);

 private:
  ScheduleConfig cfg_;
  const Clock& clock_;
  std::function<double()> rng_;
  Clock::time_point next_{};
  int failures_ = 0;
};

}  // namespace og::ranges
