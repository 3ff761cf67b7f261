#include "originguard/duration.hpp"

#include <cstdint>
#include <ctime>

namespace og {

namespace {
std::string too_large() { return "duration too large (at most " + std::to_string(kMaxDuration.count()) + "s)"; }
}  // namespace

Result<Seconds> parse_duration(std::string_view text) {
  if (text.empty()) return fail("empty duration");
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t n = 0;
    std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      n = n * 10 + (text[i] - '0');
      if (n > kMaxDuration.count()) return fail(too_large());
      ++i;
    }
    if (i == start) return fail("expected a number in duration \"" + std::string(text) + "\"");
    if (i == text.size()) return fail("missing unit (s, m, h, d) in duration \"" + std::string(text) + "\"");
    std::int64_t unit = 0;
    switch (text[i]) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      default:
        // The unit byte may be half of a UTF-8 character: quote it escaped, never raw.
        return fail("unknown unit " + quote_untrusted(text.substr(i, 1)) + " in duration \"" + std::string(text) +
                    "\"");
    }
    ++i;
    total += n * unit;
    if (total > kMaxDuration.count()) return fail(too_large());
  }
  return Seconds(total);
}

std::string format_duration(Seconds d) {
  std::int64_t s = d.count();
  std::string sign;
  if (s < 0) {
    sign = "-";
    s = -s;
  }
  auto two = [&](std::int64_t a, const char* ua, std::int64_t b, const char* ub) {
    std::string out = sign + std::to_string(a) + ua;
    if (b) out += " " + std::to_string(b) + ub;
    return out;
  };
  if (s < 60) return sign + std::to_string(s) + "s";
  if (s < 3600) return two(s / 60, "m", s % 60, "s");
  if (s < 86400) return two(s / 3600, "h", (s % 3600) / 60, "m");
  return two(s / 86400, "d", (s % 86400) / 3600, "h");
}

std::string format_utc(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace og
