// The real Clock: steady_clock for now(), system_clock for wall().
#pragma once

#include "ranges/clock.hpp"

namespace og::ranges {

class SystemClock final : public Clock {
 public:
  [[nodiscard]] time_point now() const override { return std::chrono::steady_clock::now(); }
  [[nodiscard]] std::chrono::system_clock::time_point wall() const override { return std::chrono::system_clock::now(); }
};

}  // namespace og::ranges
