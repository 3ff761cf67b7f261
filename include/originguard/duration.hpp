// Human durations in config and output: "90s", "30m", "1h", "1h30m", "2d"; UTC timestamps.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "originguard/result.hpp"

namespace og {

using Seconds = std::chrono::seconds;

// Upper bound of every configured duration, integer seconds or string (about 3.2 years):
// far below what overflows a timer's nanoseconds, far above any sensible setting.
inline constexpr Seconds kMaxDuration{100'000'000};

[[nodiscard]] Result<Seconds> parse_duration(std::string_view text);

// Compact human form: "0s", "45s", "3m 12s", "2h 5m", "3d 4h". Negative values get a "-".
[[nodiscard]] std::string format_duration(Seconds d);

// ISO 8601 / RFC 3339 UTC to the second: "2026-01-31T12:00:00Z".
[[nodiscard]] std::string format_utc(std::chrono::system_clock::time_point t);

}  // namespace og
