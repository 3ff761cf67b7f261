// A normalised set of prefixes per family: sorted, duplicates and covered prefixes removed.
// Immutable once built, and copies share it: the agent holds the same 100k-prefix set as the
// fetched ranges, the edge set in force, the desired state and each enforcer's applied state,
// and a copy per holder was megabytes each (docs/BENCHMARKS.md, peak RSS).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "originguard/cidr.hpp"
#include "originguard/result.hpp"

namespace og {

class RangeSet {
 public:
  RangeSet() = default;

  // Normalises `prefixes`; `removed` (if given) receives how many duplicates or covered
  // prefixes were dropped.
  static RangeSet from(std::vector<Prefix> prefixes, std::size_t* removed = nullptr);

  [[nodiscard]] const std::vector<Prefix>& v4() const { return list(v4_); }
  [[nodiscard]] const std::vector<Prefix>& v6() const { return list(v6_); }
  [[nodiscard]] const std::vector<Prefix>& of(Family f) const { return f == Family::v4 ? v4() : v6(); }
  [[nodiscard]] std::size_t size() const { return v4().size() + v6().size(); }
  [[nodiscard]] bool empty() const { return size() == 0; }

  // The most specific prefix containing `a`, or nullptr.
  [[nodiscard]] const Prefix* match(const Address& a) const;
  [[nodiscard]] bool contains(const Address& a) const { return match(a) != nullptr; }

  // Union of two sets (used for edge ranges + extra_allow).
  [[nodiscard]] RangeSet merged(const RangeSet& other) const;

  [[nodiscard]] std::vector<std::string> strings(Family f) const;

  // By content (two sets built apart from the same prefixes are equal).
  bool operator==(const RangeSet& o) const;

 private:
  using List = std::shared_ptr<const std::vector<Prefix>>;
  static const std::vector<Prefix>& list(const List& l);
  List v4_;  // null: empty
  List v6_;
};

// Width of an allow-list, the same rule for every source of prefixes (fetched ranges, the
// stored last-known-good set, [ranges] extra_allow, [protect] mgmt_allow; docs/RANGES.md):
// no prefix broader than /8 (IPv4) or /12 (IPv6), and no list covering more addresses than
// four such prefixes (1/64 of the address space). Cloudflare's own lists cover under 1/1000
// of that bound.
inline constexpr int kBroadestV4 = 8;
inline constexpr int kBroadestV6 = 12;
inline constexpr int kMaxCoveragePrefixes = 4;

// "prefix 0.0.0.0/0 is broader than /8 (refusing to allow that much of the Internet)".
[[nodiscard]] Status check_prefix_breadth(const Prefix& p, int broadest_v4 = kBroadestV4,
                                          int broadest_v6 = kBroadestV6);
// The coverage bound alone (a normalised set counts every address once).
[[nodiscard]] Status check_coverage(const RangeSet& s);
// Both rules.
[[nodiscard]] Status check_allow_width(const RangeSet& s);

// A prefix file of the command-line tools (og-nft-apply, og-xdp-apply, benches): one prefix
// or bare address (a host prefix) per line, `#` comments, blank lines skipped; an error names
// path:line. Operator input, not a range source: the source parsers are in agent/ranges/.
[[nodiscard]] Result<RangeSet> read_prefix_file(const std::string& path);

}  // namespace og
