#include "ranges/scheduler.hpp"

#include <algorithm>
#include <random>

namespace og::ranges {

using std::chrono::milliseconds;

RefreshScheduler::RefreshScheduler(ScheduleConfig cfg, const Clock& clock, std::function<double()> uniform01)
    : cfg_(cfg), clock_(clock), rng_(std::move(uniform01)) {
  if (!rng_) {
    auto gen = std::make_shared<std::mt19937_64>(std::random_device{}());
    rng_ = [gen] { return std::uniform_real_distribution<double>(0.0, 1.0)(*gen); };
  }
  next_ = clock_.now();
}

milliseconds RefreshScheduler::backoff_base(int n) const {
  const auto cap = std::chrono::duration_cast<milliseconds>(cfg_.retry_max);
  auto d = std::chrono::duration_cast<milliseconds>(cfg_.retry_min);
  for (int i = 1; i < n && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

milliseconds RefreshScheduler::success_delay() {
  double u = rng_() * 2.0 - 1.0;
  double ms = static_cast<double>(std::chrono::duration_cast<milliseconds>(cfg_.interval).count());
  return milliseconds(static_cast<long long>(ms * (1.0 + cfg_.jitter * u)));
}

milliseconds RefreshScheduler::failure_delay(int n) {
  auto base = backoff_base(n);
  double half = static_cast<double>(base.count()) / 2.0;
  return milliseconds(static_cast<long long>(half + half * rng_()));
}

void RefreshScheduler::on_success() {
  failures_ = 0;
  next_ = clock_.now() + success_delay();
}

void RefreshScheduler::on_failure() {
  ++failures_;
  next_ = clock_.now() + failure_delay(failures_);
}

milliseconds first_refresh_delay(std::chrono::system_clock::time_point fetched_at,
                                 std::chrono::system_clock::time_point now, Seconds interval) {
  const auto age = std::chrono::duration_cast<milliseconds>(now - fetched_at);
  const auto full = std::chrono::duration_cast<milliseconds>(interval);
  if (age < milliseconds(0) || age >= full) return milliseconds(0);
  return full - age;
}

milliseconds RefreshScheduler::until_next() const {
  auto d = std::chrono::duration_cast<milliseconds>(next_ - clock_.now());
  return std::max(d, milliseconds(0));
}

}  // namespace og::ranges
