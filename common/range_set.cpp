#include "originguard/range_set.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>

namespace og {

namespace {

// Sorted by address then length, a covering prefix comes before what it covers, so one pass
// that remembers the last kept prefix removes duplicates and covered prefixes. In place: the
// set is the caller's vector, trimmed to size (a push_back-grown vector has up to twice the
// room it needs, and the set lives until the next change).
std::shared_ptr<const std::vector<Prefix>> normalise(std::vector<Prefix> in, std::size_t& removed) {
  if (in.empty()) return nullptr;
  std::sort(in.begin(), in.end());
  std::size_t kept = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (kept > 0 && in[kept - 1].contains(in[i])) {
      ++removed;
      continue;
    }
    in[kept++] = in[i];
  }
  in.resize(kept);
  if (in.capacity() - in.size() > in.size() / 8) in.shrink_to_fit();
  return std::make_shared<const std::vector<Prefix>>(std::move(in));
}

}  // namespace

RangeSet RangeSet::from(std::vector<Prefix> prefixes, std::size_t* removed) {
  // The caller's vector becomes the IPv4 half (a large set is not copied a second time); no
  // std::stable_partition, whose buffer is another copy of the whole list.
  std::vector<Prefix> v6;
  v6.reserve(static_cast<std::size_t>(
      std::count_if(prefixes.begin(), prefixes.end(), [](const Prefix& p) { return p.family() == Family::v6; })));
  for (const auto& p : prefixes)
    if (p.family() == Family::v6) v6.push_back(p);
  std::erase_if(prefixes, [](const Prefix& p) { return p.family() == Family::v6; });
  std::size_t dropped = 0;
  RangeSet s;
  s.v4_ = normalise(std::move(prefixes), dropped);
  s.v6_ = normalise(std::move(v6), dropped);
  if (removed) *removed = dropped;
  return s;
}

const std::vector<Prefix>& RangeSet::list(const List& l) {
  static const std::vector<Prefix> kEmpty;
  return l ? *l : kEmpty;
}

bool RangeSet::operator==(const RangeSet& o) const {
  auto same = [](const List& a, const List& b) { return a == b || list(a) == list(b); };
  return same(v4_, o.v4_) && same(v6_, o.v6_);
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
  // Both are normalised: with nothing to add, the union is the other set itself (shared, not
  // copied: no extra_allow is the usual case, and the edge set is large).
  if (other.empty()) return *this;
  if (empty()) return other;
  std::vector<Prefix> all;
  all.reserve(size() + other.size());
  for (const auto* s : {this, &other}) {
    all.insert(all.end(), s->v4().begin(), s->v4().end());
    all.insert(all.end(), s->v6().begin(), s->v6().end());
  }
  return from(std::move(all));
}

std::vector<std::string> RangeSet::strings(Family f) const {
  std::vector<std::string> out;
  for (const auto& p : of(f)) out.push_back(p.to_string());
  return out;
}

Status check_prefix_breadth(const Prefix& p, int broadest_v4, int broadest_v6) {
  const int broadest = p.family() == Family::v4 ? broadest_v4 : broadest_v6;
  if (p.len >= broadest) return {};
  return fail("prefix " + p.to_string() + " is broader than /" + std::to_string(broadest) +
              " (refusing to allow that much of the Internet)");
}

Status check_coverage(const RangeSet& s) {
  for (Family f : {Family::v4, Family::v6}) {
    const int bits = max_len(f);
    const int broadest = f == Family::v4 ? kBroadestV4 : kBroadestV6;
    // Powers of two up to 2^128 and their sums: exact enough in a long double for a bound.
    long double covered = 0;
    for (const auto& p : s.of(f)) covered += std::ldexp(1.0L, bits - p.len);
    const long double limit = std::ldexp(static_cast<long double>(kMaxCoveragePrefixes), bits - broadest);
    if (covered <= limit) continue;
    std::string n = f == Family::v4 ? std::to_string(static_cast<std::uint64_t>(covered))
                                    : "2^" + std::to_string(static_cast<int>(std::floor(std::log2(covered))));
    return fail(std::string(f == Family::v4 ? "IPv4" : "IPv6") + " prefixes cover " + n + " addresses, more than " +
                std::to_string(kMaxCoveragePrefixes) + " /" + std::to_string(broadest) +
                " prefixes would (refusing to allow that much of the Internet)");
  }
  return {};
}

Status check_allow_width(const RangeSet& s) {
  for (Family f : {Family::v4, Family::v6})
    for (const auto& p : s.of(f))
      if (auto st = check_prefix_breadth(p); !st) return st;
  return check_coverage(s);
}

Result<RangeSet> read_prefix_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return fail_errno("open " + path);
  std::vector<Prefix> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r' || line.back() == '\t')) line.pop_back();
    std::size_t s = line.find_first_not_of(" \t");
    if (s == std::string::npos) continue;
    auto p = parse_prefix(std::string_view(line).substr(s), BareAddress::as_host_prefix);
    if (!p) return fail(p.error().context(path + ":" + std::to_string(n)));
    out.push_back(*p);
  }
  return RangeSet::from(std::move(out));
}

}  // namespace og
