// Refresh scheduling over a fake clock and a scripted random source: no sleeping, no timing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>

#include "doubles/fake_clock.hpp"
#include "ranges/scheduler.hpp"

namespace og::ranges {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

using test::FakeClock;

// Returns the scripted values in order, then keeps returning the last one.
class ScriptedRng {
 public:
  explicit ScriptedRng(std::vector<double> v) : v_(v.begin(), v.end()) {}
  double operator()() {
    double x = v_.front();
    if (v_.size() > 1) v_.pop_front();
    ++calls_;
    return x;
  }
  [[nodiscard]] int calls() const { return calls_; }

 private:
  std::deque<double> v_;
  int calls_ = 0;
};

ScheduleConfig cfg(std::chrono::seconds interval = 3600s, double jitter = 0.1, std::chrono::seconds rmin = 30s,
                   std::chrono::seconds rmax = 3600s) {
  return ScheduleConfig{interval, jitter, rmin, rmax};
}

constexpr double kAlmostOne = 0.9999999999;

TEST(SchedulerSuccess, DelayWithinJitterBounds) {
  struct Case {
    double u;
    milliseconds want_min, want_max;  // inclusive
  };
  const Case cases[] = {
      {0.0, 3240s, 3240s},                                           // interval * (1 - jitter)
      {0.25, 3420s - 1ms, 3420s},                                    // (float rounding may cost a millisecond)
      {0.5, 3600s, 3600s},                                           // exactly the interval
      {0.75, 3780s - 1ms, 3780s}, {kAlmostOne, 3959s, 3960s - 1ms},  // just under interval * (1 + jitter)
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.u);
    FakeClock clock;
    RefreshScheduler s(cfg(), clock, [u = c.u] { return u; });
    auto d = s.success_delay();
    EXPECT_GE(d, c.want_min);
    EXPECT_LE(d, c.want_max);
    // Never outside interval * (1 +- jitter).
    EXPECT_GE(d, 3240s);
    EXPECT_LT(d, 3960s);
  }
}

TEST(SchedulerSuccess, OnSuccessSchedulesFromNow) {
  FakeClock clock;
  ScriptedRng rng({0.5});
  RefreshScheduler s(cfg(600s, 0.2), clock, std::ref(rng));
  EXPECT_EQ(s.until_next(), 0ms) << "a new scheduler is due at once";
  clock.advance(5s);
  s.on_success();
  EXPECT_EQ(s.next_due(), clock.now() + 600s);
  EXPECT_EQ(s.until_next(), 600s);
  clock.advance(100s);
  EXPECT_EQ(s.until_next(), 500s);
  clock.advance(1000s);
  EXPECT_EQ(s.until_next(), 0ms) << "overdue is 0, never negative";
  EXPECT_EQ(rng.calls(), 1);
}

TEST(SchedulerSuccess, ZeroJitterIsExact) {
  FakeClock clock;
  for (double u : {0.0, 0.3, kAlmostOne}) {
    RefreshScheduler s(cfg(3600s, 0.0), clock, [u] { return u; });
    EXPECT_EQ(s.success_delay(), 3600s);
  }
}

TEST(SchedulerBackoff, GrowsByDoublingAndCaps) {
  FakeClock clock;
  RefreshScheduler s(cfg(3600s, 0.1, 30s, 3600s), clock, [] { return 0.5; });
  const std::pair<int, milliseconds> cases[] = {
      {1, 30s},
      {2, 60s},
      {3, 120s},
      {4, 240s},
      {5, 480s},
      {6, 960s},
      {7, 1920s},
      {8, 3600s},
      {9, 3600s},
      {30, 3600s},
      {64, 3600s},
      {1000, 3600s},
      {std::numeric_limits<int>::max(), 3600s},
  };
  for (auto [n, want] : cases) {
    SCOPED_TRACE(n);
    EXPECT_EQ(s.backoff_base(n), want);
  }
}

TEST(SchedulerBackoff, CapThatIsNotAPowerOfTwoMultiple) {
  FakeClock clock;
  RefreshScheduler s(cfg(3600s, 0.1, 7s, 50s), clock, [] { return 0.0; });
  EXPECT_EQ(s.backoff_base(1), 7s);
  EXPECT_EQ(s.backoff_base(2), 14s);
  EXPECT_EQ(s.backoff_base(3), 28s);
  EXPECT_EQ(s.backoff_base(4), 50s);
  EXPECT_EQ(s.backoff_base(5), 50s);
  RefreshScheduler flat(cfg(3600s, 0.1, 60s, 60s), clock, [] { return 0.0; });
  EXPECT_EQ(flat.backoff_base(1), 60s);
  EXPECT_EQ(flat.backoff_base(10), 60s);
}

TEST(SchedulerBackoff, FailureDelayIsEqualJitter) {
  for (double u : {0.0, 0.1, 0.5, kAlmostOne}) {
    SCOPED_TRACE(u);
    FakeClock clock;
    RefreshScheduler s(cfg(), clock, [u] { return u; });
    for (int n = 1; n <= 10; ++n) {
      auto base = s.backoff_base(n);
      auto d = s.failure_delay(n);
      EXPECT_GE(d, base / 2) << "n=" << n;
      EXPECT_LT(d, base) << "n=" << n;
    }
  }
  FakeClock clock;
  RefreshScheduler s(cfg(), clock, [] { return 0.0; });
  EXPECT_EQ(s.failure_delay(1), 15s);
  EXPECT_EQ(s.failure_delay(3), 60s);
}

TEST(SchedulerBackoff, ConsecutiveFailuresThenSuccessResets) {
  FakeClock clock;
  ScriptedRng rng({0.0});  // lower bound everywhere: base/2 for failures, interval*(1-j) for success
  RefreshScheduler s(cfg(3600s, 0.1, 30s, 300s), clock, std::ref(rng));
  const milliseconds want[] = {15s, 30s, 60s, 120s, 150s, 150s};
  for (int i = 0; i < 6; ++i) {
    s.on_failure();
    EXPECT_EQ(s.consecutive_failures(), i + 1);
    EXPECT_EQ(s.until_next(), want[i]) << "failure " << i + 1;
    clock.advance(s.until_next());
    EXPECT_EQ(s.until_next(), 0ms);
  }
  s.on_success();
  EXPECT_EQ(s.consecutive_failures(), 0);
  EXPECT_EQ(s.until_next(), 3240s);
  s.on_failure();
  EXPECT_EQ(s.consecutive_failures(), 1);
  EXPECT_EQ(s.until_next(), 15s) << "backoff starts over after a success";
}

TEST(SchedulerConfig, FromRangesConfigAndLiveUpdate) {
  RangesConfig rc;
  rc.refresh_interval = 7200s;
  rc.jitter = 0.2;
  rc.retry_min = 10s;
  rc.retry_max = 100s;
  auto sc = ScheduleConfig::from(rc);
  EXPECT_EQ(sc.interval, 7200s);
  EXPECT_DOUBLE_EQ(sc.jitter, 0.2);
  EXPECT_EQ(sc.retry_min, 10s);
  EXPECT_EQ(sc.retry_max, 100s);

  FakeClock clock;
  RefreshScheduler s(sc, clock, [] { return 0.5; });
  EXPECT_EQ(s.success_delay(), 7200s);
  s.set_config(cfg(60s, 0.1, 5s, 20s));
  EXPECT_EQ(s.success_delay(), 60s);
  EXPECT_EQ(s.backoff_base(4), 20s);
}

TEST(SchedulerConfig, ScheduleInOverridesNextDue) {
  FakeClock clock;
  RefreshScheduler s(cfg(), clock, [] { return 0.5; });
  s.on_success();
  s.schedule_in(0ms);  // `agentctl refresh`
  EXPECT_EQ(s.until_next(), 0ms);
  s.schedule_in(42s);
  EXPECT_EQ(s.until_next(), 42s);
}

TEST(SchedulerDefaultRng, StaysInBounds) {
  // The real random source (seeded mt19937) must respect the same bounds.
  FakeClock clock;
  RefreshScheduler s(cfg(), clock);
  for (int i = 0; i < 1000; ++i) {
    auto d = s.success_delay();
    ASSERT_GE(d, 3240s);
    ASSERT_LT(d, 3960s);
    auto f = s.failure_delay(3);
    ASSERT_GE(f, 60s);
    ASSERT_LT(f, 120s);
  }
}

TEST(FirstRefreshDelay, YoungSetWaitsOutTheIntervalOthersRefreshNow) {
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'790'000'000));
  EXPECT_EQ(first_refresh_delay(now - 10min, now, 1h), milliseconds(50min));
  EXPECT_EQ(first_refresh_delay(now - 1h, now, 1h), milliseconds(0));
  EXPECT_EQ(first_refresh_delay(now - 3h, now, 1h), milliseconds(0));
  // A fetch time in the future must not postpone the refresh by as much (up to year 2106).
  EXPECT_EQ(first_refresh_delay(now + 1s, now, 1h), milliseconds(0));
  EXPECT_EQ(first_refresh_delay(now + std::chrono::hours(24 * 365 * 80), now, 1h), milliseconds(0));
}

}  // namespace
}  // namespace og::ranges
