// Human durations in config and output: "90s", "30m", "1h", "1h30m", "2d".
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "originguard/result.hpp"

namespace og {

using Seconds = std::chrono::seconds;

[[nodiscard]] Result<Seconds> parse_duration(std::string_view text);

// Compact human form: "0s", "45s", "3m 12s", "2h 5m", "3d 4h". Negative values get a "-".
[[nodiscard]] std::string format_duration(Seconds d);

}  // namespace og
