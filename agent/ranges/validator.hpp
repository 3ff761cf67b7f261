// Policy checks on a parsed candidate before it may replace the ranges in force.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "originguard/config.hpp"
#include "originguard/range_set.hpp"
#include "ranges/parse.hpp"

namespace og::ranges {

struct ValidationPolicy {
  std::size_t min_ipv4 = 1;
  std::size_t min_ipv6 = 1;
  double max_shrink = 0.5;
  int broadest_v4 = kBroadestV4;  // no prefix shorter than /8
  int broadest_v6 = kBroadestV6;  // no prefix shorter than /12

  static ValidationPolicy from(const RangesConfig& c) {
    return ValidationPolicy{c.min_ipv4, c.min_ipv6, c.max_shrink, kBroadestV4, kBroadestV6};
  }
};

struct Validated {
  RangeSet set;
  std::vector<std::string> notes;  // non-fatal findings (duplicates removed, ...)
};

// `last_good` is the last set fetched and accepted (not the embedded bootstrap); the shrink
// rule compares against it unless `force`.
[[nodiscard]] Result<Validated> validate(ParsedRanges candidate, const ValidationPolicy& policy,
                                         const RangeSet* last_good, bool force);

}  // namespace og::ranges
