// build_tables: the lookup structures answer exactly what the range sets say, for random sets
// and addresses next to every prefix boundary; flags and ports as the program expects them.
#include <gtest/gtest.h>

#include <random>

#include "tables.hpp"

namespace og::xdp {
namespace {

Prefix P(const char* s) { return *parse_prefix(s); }
Address A(const char* s) { return *parse_address(s); }

DesiredState state(std::vector<Prefix> edge, std::vector<Prefix> mgmt) {
  DesiredState d;
  d.edge = RangeSet::from(std::move(edge));
  d.mgmt = RangeSet::from(std::move(mgmt));
  d.ports = {443};
  return d;
}

// A source in both sets is allowed; which of the two counters it lands in depends on which
// structure answers first (docs/XDP.md), so only the unambiguous cases name the kind.
void expect_kind(const Tables& t, const DesiredState& d, const Address& a, const std::string& where) {
  const bool in_mgmt = d.mgmt.contains(a), in_edge = d.edge.contains(a);
  const std::uint32_t got = classify(t, a);
  if (in_mgmt && in_edge) {
    EXPECT_TRUE(got == OG_KIND_MGMT || got == OG_KIND_EDGE) << where;
  } else {
    EXPECT_EQ(got, in_mgmt ? OG_KIND_MGMT : in_edge ? OG_KIND_EDGE : OG_KIND_NONE) << where;
  }
}

Prefix random_prefix(std::mt19937& rng, Family f) {
  Prefix p;
  p.addr.family = f;
  const int max = max_len(f);
  // Lengths cluster around the structure's seams: /24 and /32 for IPv4, /16 and /32 for IPv6.
  static const int v4_lens[] = {8, 13, 20, 23, 24, 25, 28, 31, 32};
  static const int v6_lens[] = {12, 14, 15, 16, 17, 29, 31, 32, 33, 40, 48, 64, 127, 128};
  p.len = static_cast<std::uint8_t>(f == Family::v4 ? v4_lens[rng() % std::size(v4_lens)]
                                                    : v6_lens[rng() % std::size(v6_lens)]);
  const int bytes = f == Family::v4 ? 4 : 16;
  // Few distinct top bytes so that prefixes overlap and nest.
  for (int i = 0; i < bytes; ++i) p.addr.bytes[i] = static_cast<std::uint8_t>(i < 2 ? rng() % 3 + 32 : rng());
  for (int bit = p.len; bit < max; ++bit) p.addr.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80 >> (bit % 8)));
  return p;
}

// The first and last address of p, and their neighbours outside it.
std::vector<Address> probes(const Prefix& p) {
  Address first = p.addr, last = p.addr;
  const int max = max_len(p.family());
  for (int bit = p.len; bit < max; ++bit) last.bytes[bit / 8] |= static_cast<std::uint8_t>(0x80 >> (bit % 8));
  auto step = [&](Address a, int dir) {
    const int n = p.family() == Family::v4 ? 4 : 16;
    for (int i = n - 1; i >= 0; --i) {
      const int v = a.bytes[i] + dir;
      a.bytes[i] = static_cast<std::uint8_t>(v);
      if (v >= 0 && v <= 255) break;
    }
    return a;
  };
  return {first, last, step(first, -1), step(last, +1)};
}

TEST(XdpTables, RandomSetsAgreeWithRangeSetAtEveryBoundary) {
  std::mt19937 rng(20261129);
  for (int round = 0; round < 40; ++round) {
    std::vector<Prefix> edge, mgmt;
    for (int i = 0; i < 30; ++i) edge.push_back(random_prefix(rng, i % 2 ? Family::v4 : Family::v6));
    for (int i = 0; i < 6; ++i) mgmt.push_back(random_prefix(rng, i % 2 ? Family::v4 : Family::v6));
    const auto d = state(edge, mgmt);
    const auto t = build_tables(d);
    std::vector<Prefix> all = edge;
    all.insert(all.end(), mgmt.begin(), mgmt.end());
    for (const auto& p : all) {
      for (const auto& a : probes(p))
        expect_kind(t, d, a, "round " + std::to_string(round) + " address " + a.to_string() + " near " + p.to_string());
    }
  }
}

TEST(XdpTables, Ipv4BitmapAndTrie) {
  const auto t = build_tables(state({P("10.0.0.0/8"), P("192.0.2.128/25"), P("198.51.100.0/24")}, {}));
  EXPECT_EQ(t.v4_bitmap.size(), OG_V4_BITMAP_WORDS);
  ASSERT_EQ(t.v4_lpm.size(), 1u);  // only the /25; the /24 and /8 are bitmap bits
  EXPECT_EQ(t.v4_lpm[0].first.prefixlen, 25u);
  EXPECT_TRUE(t.config.flags & OG_CFG_V4_LPM);
  EXPECT_EQ(classify(t, A("10.200.1.1")), OG_KIND_EDGE);
  EXPECT_EQ(classify(t, A("192.0.2.127")), OG_KIND_NONE);
  // A long prefix inside a /24 that is allowed whole needs no trie entry.
  const auto t2 = build_tables(state({P("198.51.100.0/24"), P("198.51.100.7/32")}, {}));
  EXPECT_TRUE(t2.v4_lpm.empty());
  EXPECT_FALSE(t2.config.flags & OG_CFG_V4_LPM);
}

TEST(XdpTables, Ipv6HashExpansionAndShortPrefixes) {
  const auto t = build_tables(state({P("2a06:98c0::/29"), P("2400:cb00::/32"), P("2001:db8:cf::/48")}, {}));
  EXPECT_EQ(t.v6_top.size(), 8u + 1u + 1u);  // /29 -> 8 entries, /32, and the /48's PARTIAL /32
  EXPECT_EQ(t.v6_lpm.size(), 1u);
  EXPECT_FALSE(t.config.flags & OG_CFG_V6_SHORT);
  const auto s = build_tables(state({P("3ffc::/14")}, {}));
  EXPECT_TRUE(s.v6_top.empty());
  EXPECT_TRUE(s.config.flags & OG_CFG_V6_SHORT);
  EXPECT_EQ(classify(s, A("3fff::1")), OG_KIND_EDGE);
  EXPECT_EQ(classify(s, A("3ffb::1")), OG_KIND_NONE);
}

TEST(XdpTables, ManagementWinsWhereBothCover) {
  const auto t = build_tables(state({P("198.51.100.0/24"), P("2400:cb00::/32")},
                                    {P("198.51.100.0/24"), P("198.51.0.0/16"), P("2400:cb00::/32")}));
  EXPECT_EQ(classify(t, A("198.51.100.1")), OG_KIND_MGMT);
  EXPECT_EQ(classify(t, A("198.51.7.1")), OG_KIND_MGMT);  // a management /16 around an edge /24
  EXPECT_EQ(classify(t, A("2400:cb00::1")), OG_KIND_MGMT);
}

TEST(XdpTables, PortsAndModeFlags) {
  auto d = state({}, {});
  d.ports = {0, 80, 443, 65535};
  d.mode = ProtectMode::audit;
  const auto t = build_tables(d);
  for (int p = 0; p <= 65535; ++p) {
    const bool want = p == 0 || p == 80 || p == 443 || p == 65535;
    ASSERT_EQ(port_protected(t.config, static_cast<std::uint16_t>(p)), want) << p;
  }
  EXPECT_TRUE(t.config.flags & OG_CFG_AUDIT);
  d.mode = ProtectMode::enforce;
  EXPECT_FALSE(build_tables(d).config.flags & OG_CFG_AUDIT);
}

TEST(XdpTables, EmptySetsAllowNothing) {
  const auto t = build_tables(state({}, {}));
  EXPECT_EQ(classify(t, A("198.51.100.1")), OG_KIND_NONE);
  EXPECT_EQ(classify(t, A("2400:cb00::1")), OG_KIND_NONE);
  EXPECT_EQ(t.config.flags, 0u);
}

}  // namespace
}  // namespace og::xdp
