#include "ranges/validator.hpp"

#include <cmath>

namespace og::ranges {

Result<Validated> validate(ParsedRanges candidate, const ValidationPolicy& policy, const RangeSet* last_good,
                           bool force) {
  for (const auto& p : candidate.prefixes)
    if (auto st = check_prefix_breadth(p, policy.broadest_v4, policy.broadest_v6); !st) return fail(st.error());
  Validated out;
  std::size_t removed = 0;
  // Moved, not copied: a fetched list can be 100k prefixes (pass it as an rvalue).
  out.set = RangeSet::from(std::move(candidate.prefixes), &removed);
  if (auto st = check_coverage(out.set); !st) return fail(st.error());
  if (removed) out.notes.push_back(std::to_string(removed) + " duplicate or covered prefix(es) removed");

  struct Fam {
    Family f;
    const char* name;
    std::size_t min;
  };
  for (const Fam& fam : {Fam{Family::v4, "IPv4", policy.min_ipv4}, Fam{Family::v6, "IPv6", policy.min_ipv6}}) {
    std::size_t n = out.set.of(fam.f).size();
    if (n < fam.min) {
      return fail(std::string(fam.name) + " set has " + std::to_string(n) + " prefix(es), fewer than the minimum " +
                  std::to_string(fam.min));
    }
    if (!last_good || force) continue;
    std::size_t old_n = last_good->of(fam.f).size();
    if (old_n == 0) continue;
    if (n >= old_n) continue;
    // Compare the lost fraction itself: `kept < 1 - max_shrink` refused a shrink of exactly
    // the limit when 1 - max_shrink is inexact (1 - 0.7 = 0.30000000000000004).
    double lost = static_cast<double>(old_n - n) / static_cast<double>(old_n);
    if (lost > policy.max_shrink) {
      int pct = static_cast<int>(std::lround(lost * 100));
      return fail(std::string(fam.name) + " set would shrink from " + std::to_string(old_n) + " to " +
                  std::to_string(n) + " prefixes (-" + std::to_string(pct) + "%, limit " +
                  std::to_string(static_cast<int>(std::lround(policy.max_shrink * 100))) +
                  "%); run `agentctl refresh --force` to accept it");
    }
  }
  return out;
}

}  // namespace og::ranges
