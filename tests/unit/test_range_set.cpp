// RangeSet: normalisation per family, lookup, union.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "originguard/range_set.hpp"
#include "test_support.hpp"

namespace og {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<Prefix> prefixes(std::initializer_list<std::string_view> texts) {
  std::vector<Prefix> out;
  for (auto t : texts) {
    auto p = parse_prefix(t);
    EXPECT_TRUE(test::ok(p)) << t;
    if (p) out.push_back(*p);
  }
  return out;
}

Address addr(std::string_view t) {
  auto a = parse_address(t);
  EXPECT_TRUE(test::ok(a)) << t;
  return a ? *a : Address{};
}

struct NormaliseCase {
  std::string_view name;
  std::vector<std::string_view> in;
  std::vector<std::string> v4, v6;
  std::size_t removed;
};

TEST(RangeSetNormalise, Table) {
  const NormaliseCase cases[] = {
      {"empty", {}, {}, {}, 0},
      {"sorted per family",
       {"2400:cb00::/32", "198.51.100.0/24", "192.0.2.0/25", "2001:db8::/48"},
       {"192.0.2.0/25", "198.51.100.0/24"},
       {"2001:db8::/48", "2400:cb00::/32"},
       0},
      {"exact duplicates", {"192.0.2.0/24", "192.0.2.0/24", "192.0.2.0/24"}, {"192.0.2.0/24"}, {}, 2},
      {"covered after covering", {"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"}, {"10.0.0.0/8"}, {}, 2},
      {"covered before covering", {"10.1.2.0/24", "10.1.0.0/16", "10.0.0.0/8"}, {"10.0.0.0/8"}, {}, 2},
      {"same address, longer first", {"10.0.0.0/16", "10.0.0.0/8"}, {"10.0.0.0/8"}, {}, 1},
      {"adjacent are kept (no aggregation)",
       {"192.0.2.0/25", "192.0.2.128/25"},
       {"192.0.2.0/25", "192.0.2.128/25"},
       {},
       0},
      {"covered and disjoint mixed",
       {"10.0.0.0/8", "11.0.0.0/8", "10.255.255.0/24", "11.1.0.0/16", "12.0.0.0/8"},
       {"10.0.0.0/8", "11.0.0.0/8", "12.0.0.0/8"},
       {},
       2},
      {"v6 duplicates and covered",
       {"2400:cb00::/32", "2400:cb00:1::/48", "2400:cb00::/32", "2606:4700::/32"},
       {},
       {"2400:cb00::/32", "2606:4700::/32"},
       2},
      {"families never cover each other", {"0.0.0.0/0", "::/0", "::ffff:1.2.3.0/120"}, {"0.0.0.0/0"}, {"::/0"}, 1},
      {"v4-mapped is not v4", {"1.2.3.0/24", "::ffff:1.2.3.0/120"}, {"1.2.3.0/24"}, {"::ffff:1.2.3.0/120"}, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.name));
    std::vector<Prefix> in;
    for (auto t : c.in) in.push_back(*parse_prefix(t));
    std::size_t removed = 999;
    auto s = RangeSet::from(in, &removed);
    EXPECT_EQ(s.strings(Family::v4), c.v4);
    EXPECT_EQ(s.strings(Family::v6), c.v6);
    EXPECT_EQ(removed, c.removed);
    EXPECT_EQ(s.size(), c.v4.size() + c.v6.size());
    EXPECT_EQ(s.empty(), s.size() == 0);
    // Normalising is idempotent.
    std::vector<Prefix> again(s.v4());
    again.insert(again.end(), s.v6().begin(), s.v6().end());
    std::size_t removed2 = 999;
    EXPECT_EQ(RangeSet::from(again, &removed2), s);
    EXPECT_EQ(removed2, 0u);
  }
}

TEST(RangeSetNormalise, OrderOfInputDoesNotMatter) {
  auto a = RangeSet::from(prefixes({"10.0.0.0/8", "2400:cb00::/32", "192.0.2.0/24", "10.9.0.0/16"}));
  auto b = RangeSet::from(prefixes({"10.9.0.0/16", "192.0.2.0/24", "2400:cb00::/32", "10.0.0.0/8"}));
  EXPECT_EQ(a, b);
}

TEST(RangeSetMatch, MostSpecificOrNone) {
  auto s = RangeSet::from(prefixes({"173.245.48.0/20", "104.16.0.0/13", "104.24.0.0/14", "192.0.2.0/25",
                                    "2400:cb00::/32", "2a06:98c0::/29", "2001:db8:cf::/48"}));
  struct Case {
    std::string_view address;
    const char* want;  // nullptr = no match
  };
  const Case cases[] = {
      {"104.16.0.0", "104.16.0.0/13"},
      {"104.23.255.255", "104.16.0.0/13"},
      {"104.24.0.1", "104.24.0.0/14"},
      {"104.28.0.0", nullptr},
      {"104.15.255.255", nullptr},
      {"173.245.63.255", "173.245.48.0/20"},
      {"173.245.64.0", nullptr},
      {"0.0.0.0", nullptr},
      {"255.255.255.255", nullptr},
      {"192.0.2.127", "192.0.2.0/25"},
      {"192.0.2.128", nullptr},
      {"2400:cb00::1", "2400:cb00::/32"},
      {"2400:cb01::", nullptr},
      {"2a06:98c7:ffff:ffff:ffff:ffff:ffff:ffff", "2a06:98c0::/29"},
      {"2001:db8:cf:1::5", "2001:db8:cf::/48"},
      {"2001:db8:bad::1", nullptr},
      {"::", nullptr},
      {"::ffff:104.16.0.1", nullptr},  // v4-mapped v6 is matched against the v6 list only
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.address));
    const Prefix* m = s.match(addr(c.address));
    if (c.want == nullptr) {
      EXPECT_EQ(m, nullptr) << "matched " << m->to_string();
      EXPECT_FALSE(s.contains(addr(c.address)));
    } else {
      ASSERT_NE(m, nullptr);
      EXPECT_EQ(m->to_string(), c.want);
      EXPECT_TRUE(s.contains(addr(c.address)));
    }
  }
}

TEST(RangeSetMatch, LongestWinsEvenWhenInputNested) {
  // Nested input collapses to the covering prefix, so the covering one is what matches.
  auto s = RangeSet::from(prefixes({"10.1.2.0/24", "10.0.0.0/8"}));
  ASSERT_NE(s.match(addr("10.1.2.3")), nullptr);
  EXPECT_EQ(s.match(addr("10.1.2.3"))->to_string(), "10.0.0.0/8");
}

TEST(RangeSetMatch, EmptySetAndOtherFamily) {
  RangeSet empty;
  EXPECT_EQ(empty.match(addr("1.2.3.4")), nullptr);
  EXPECT_EQ(empty.match(addr("::1")), nullptr);
  auto only6 = RangeSet::from(prefixes({"::/0"}));
  EXPECT_EQ(only6.match(addr("1.2.3.4")), nullptr);
  EXPECT_NE(only6.match(addr("::1")), nullptr);
  auto only4 = RangeSet::from(prefixes({"0.0.0.0/0"}));
  EXPECT_NE(only4.match(addr("1.2.3.4")), nullptr);
  EXPECT_EQ(only4.match(addr("::1")), nullptr);
}

TEST(RangeSetMerged, UnionIsNormalisedPerFamily) {
  auto edge = RangeSet::from(prefixes({"104.16.0.0/13", "2400:cb00::/32"}));
  auto extra = RangeSet::from(prefixes({"104.16.5.0/24", "192.0.2.7/32", "2400:cb00::/32", "2001:db8::1/128"}));
  auto u = edge.merged(extra);
  EXPECT_THAT(u.strings(Family::v4), ElementsAre("104.16.0.0/13", "192.0.2.7/32"));
  EXPECT_THAT(u.strings(Family::v6), ElementsAre("2001:db8::1/128", "2400:cb00::/32"));
  EXPECT_EQ(edge.merged(extra), extra.merged(edge));
  EXPECT_EQ(edge.merged(RangeSet{}), edge);
  EXPECT_EQ(RangeSet{}.merged(edge), edge);
  EXPECT_THAT(RangeSet{}.merged(RangeSet{}).strings(Family::v4), IsEmpty());
  // The inputs are unchanged.
  EXPECT_EQ(edge.size(), 2u);
  EXPECT_EQ(extra.size(), 4u);
}

// The agent holds one set as the fetched ranges, the edge set in force, the desired state and
// each enforcer's applied state: copies share the prefixes instead of duplicating them, and
// a union with nothing is the set itself. Equality stays by content.
TEST(RangeSetSharing, CopiesShareThePrefixes) {
  auto edge = RangeSet::from(prefixes({"104.16.0.0/13", "2400:cb00::/32"}));
  const RangeSet copy = edge;  // NOLINT(performance-unnecessary-copy-initialization): the copy is the point
  EXPECT_EQ(&copy.v4(), &edge.v4());
  EXPECT_EQ(&copy.v6(), &edge.v6());
  EXPECT_EQ(&edge.merged(RangeSet{}).v4(), &edge.v4());
  EXPECT_EQ(&RangeSet{}.merged(edge).v6(), &edge.v6());
  auto again = RangeSet::from(prefixes({"2400:cb00::/32", "104.16.0.0/13"}));
  EXPECT_NE(&again.v4(), &edge.v4());
  EXPECT_EQ(again, edge);
  EXPECT_NE(again, RangeSet::from(prefixes({"104.16.0.0/13"})));
  EXPECT_EQ(RangeSet{}, RangeSet::from({}));
  // Built from a vector with room to spare (push_back-grown), the set keeps little of it.
  std::vector<Prefix> grown;
  for (int i = 0; i < 1000; ++i)
    grown.push_back(*parse_prefix("10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24"));
  grown.reserve(4000);
  auto big = RangeSet::from(std::move(grown));
  EXPECT_EQ(big.v4().size(), 1000u);
  EXPECT_LE(big.v4().capacity(), 1000u + 1000u / 8);
}

}  // namespace
}  // namespace og
