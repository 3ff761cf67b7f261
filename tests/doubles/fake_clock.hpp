// A Clock the test moves by hand: no sleeping, no timing (mirrors ranges/clock.hpp).
#pragma once

#include <chrono>

#include "ranges/clock.hpp"

namespace og::ranges::test {

class FakeClock final : public Clock {
 public:
  [[nodiscard]] time_point now() const override { return now_; }
  [[nodiscard]] std::chrono::system_clock::time_point wall() const override {
    return std::chrono::system_clock::time_point(std::chrono::seconds(1'790'000'000)) +
           std::chrono::duration_cast<std::chrono::system_clock::duration>(now_.time_since_epoch());
  }
  void advance(std::chrono::milliseconds d) { now_ += d; }

 private:
  time_point now_{std::chrono::hours(1000)};
};

}  // namespace og::ranges::test
