#include "originguard/range_set.hpp"

#include <algorithm>

namespace og {

namespace {

// Sorted by address then length, a covering prefix comes before what it covers, so one pass
// that remembers the last kept prefix removes duplicates and covered prefixes.
std::vector<Prefix> normalise(std::vector<Prefix> in, std::size_t& removed) {
  std::sort(in.begin(), in.end());
  std::vector<Prefix> out;
  out.reserve(in.size());
  for (const auto& p : in) {
    if (!out.empty() && out.back().contains(p)) {
      ++removed;
      continue;
    }
    out.push_back(p);
  }
  return out;
}

}  // namespace

RangeSet RangeSet::from(std::vector<Prefix> prefixes, std::size_t* removed) {
  std::vector<Prefix> v4, v6;
  for (auto& p : prefixes) (p.family() == Family::v4 ? v4 : v6).push_back(p);
  std::size_t dropped = 0;
  RangeSet s;
  s.v4_ = normalise(std::move(v4), dropped);
  s.v6_ = normalise(std::move(v6), dropped);
  if (removed) *removed = dropped;
  return s;
}

const Prefix* RangeSet::match(const Address& a) const {
  // Normalised sets hold no nested prefixes, so at most one can match: the last prefix whose
  // address is <= a.
  const auto& v = of(a.family);
  auto it = std::upper_bound(v.begin(), v.end(), a, [](const Address& x, const Prefix& p) { return x < p.addr; });
  if (it == v.begin()) return nullptr;
  --it;
  return it->contains(a) ? &*it : nullptr;
}

RangeSet RangeSet::merged(const RangeSet& other) const {
  std::vector<Prefix> all;
  all.reserve(size() + other.size());
  for (const auto* s : {this, &other}) {
    all.insert(all.end(), s->v4_.begin(), s->v4_.end());
    all.insert(all.end(), s->v6_.begin(), s->v6_.end());
  }
  return from(std::move(all));
}

std::vector<std::string> RangeSet::strings(Family f) const {
  std::vector<std::string> out;
  for (const auto& p : of(f)) out.push_back(p.to_string());
  return out;
}

}  // namespace og
