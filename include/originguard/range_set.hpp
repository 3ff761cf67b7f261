// A normalised set of prefixes per family: sorted, duplicates and covered prefixes removed.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "originguard/cidr.hpp"

namespace og {

class RangeSet {
 public:
  RangeSet() = default;

  // Normalises `prefixes`; `removed` (if given) receives how many duplicates or covered
  // prefixes were dropped.
  static RangeSet from(std::vector<Prefix> prefixes, std::size_t* removed = nullptr);

  [[nodiscard]] const std::vector<Prefix>& v4() const { return v4_; }
  [[nodiscard]] const std::vector<Prefix>& v6() const { return v6_; }
  [[nodiscard]] const std::vector<Prefix>& of(Family f) const { return f == Family::v4 ? v4_ : v6_; }
  [[nodiscard]] std::size_t size() const { return v4_.size() + v6_.size(); }
  [[nodiscard]] bool empty() const { return size() == 0; }

  // The most specific prefix containing `a`, or nullptr.
  [[nodiscard]] const Prefix* match(const Address& a) const;
  [[nodiscard]] bool contains(const Address& a) const { return match(a) != nullptr; }

  // Union of two sets (used for edge ranges + extra_allow).
  [[nodiscard]] RangeSet merged(const RangeSet& other) const;

  [[nodiscard]] std::vector<std::string> strings(Family f) const;

  bool operator==(const RangeSet&) const = default;

 private:
  std::vector<Prefix> v4_;
  std::vector<Prefix> v6_;
};

}  // namespace og
