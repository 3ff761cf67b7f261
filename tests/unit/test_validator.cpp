// Policy checks a parsed candidate must pass before it may replace the ranges in force.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ranges/validator.hpp"
#include "test_support.hpp"

namespace og::ranges {
namespace {

using test::ok;
using test::refused;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

ParsedRanges candidate(std::initializer_list<std::string_view> texts) {
  ParsedRanges r;
  for (auto t : texts) {
    auto p = parse_prefix(t);
    EXPECT_TRUE(ok(p)) << t;
    if (p) r.prefixes.push_back(*p);
  }
  return r;
}

// n distinct /24s in 10.0.0.0/8 (IPv4) or n /48s in 2001:db8::/32 (IPv6).
ParsedRanges generated(std::size_t n4, std::size_t n6) {
  ParsedRanges r;
  for (std::size_t i = 0; i < n4; ++i) {
    r.prefixes.push_back(*parse_prefix("10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24"));
  }
  for (std::size_t i = 0; i < n6; ++i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "2001:db8:%zx::/48", i);
    r.prefixes.push_back(*parse_prefix(buf));
  }
  return r;
}

RangeSet set_of(std::size_t n4, std::size_t n6) { return RangeSet::from(generated(n4, n6).prefixes); }

ValidationPolicy policy(std::size_t min4 = 1, std::size_t min6 = 1, double max_shrink = 0.5) {
  return ValidationPolicy{min4, min6, max_shrink, 8, 12};
}

TEST(ValidatorBreadth, BoundaryPerFamily) {
  struct Case {
    std::string_view prefix;
    bool accepted;
  };
  const Case cases[] = {
      {"0.0.0.0/0", false},        {"0.0.0.0/1", false}, {"8.0.0.0/7", false},     {"10.0.0.0/8", true},
      {"10.0.0.0/9", true},        {"1.2.3.4/32", true}, {"::/0", false},          {"2000::/3", false},
      {"2400::/11", false},        {"2400::/12", true},  {"2400:cb00::/32", true}, {"::1/128", true},
      {"::ffff:0.0.0.0/96", true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.prefix));
    // Pad with one prefix of each family so the minimum counts are met.
    auto cand = candidate({c.prefix, "192.0.2.0/24", "2001:db8:cf::/48"});
    auto v = validate(cand, policy(), nullptr, false);
    if (c.accepted) {
      EXPECT_TRUE(ok(v));
      continue;
    }
    ASSERT_TRUE(refused(v));
    EXPECT_THAT(v.error().message, HasSubstr("prefix " + std::string(c.prefix) + " is broader than /"));
    EXPECT_THAT(v.error().message, HasSubstr(parse_prefix(c.prefix)->family() == Family::v4 ? "/8" : "/12"));
  }
}

TEST(ValidatorBreadth, ForceDoesNotBypassBreadth) {
  auto v = validate(candidate({"0.0.0.0/0", "2001:db8::/32"}), policy(), nullptr, /*force=*/true);
  ASSERT_TRUE(refused(v));
  EXPECT_THAT(v.error().message, HasSubstr("broader than /8"));
}

// Many prefixes each within the /8 rule may still add up to much of the Internet.
TEST(ValidatorBreadth, TotalCoverageIsBounded) {
  auto four = validate(candidate({"1.0.0.0/8", "2.0.0.0/8", "3.0.0.0/8", "4.0.0.0/8", "2001:db8::/32"}), policy(),
                       nullptr, false);
  EXPECT_TRUE(ok(four)) << "four /8s are the documented limit";
  auto five = validate(candidate({"1.0.0.0/8", "2.0.0.0/8", "3.0.0.0/8", "4.0.0.0/8", "5.0.0.0/9", "2001:db8::/32"}),
                       policy(), nullptr, /*force=*/true);
  ASSERT_TRUE(refused(five));
  EXPECT_THAT(five.error().message, HasSubstr("IPv4 prefixes cover 75497472 addresses"));
  auto v6 = validate(candidate({"192.0.2.0/24", "2400::/12", "2410::/12", "2420::/12", "2430::/12", "2440::/16"}),
                     policy(), nullptr, false);
  ASSERT_TRUE(refused(v6));
  EXPECT_THAT(v6.error().message, HasSubstr("IPv6 prefixes cover"));
}

TEST(ValidatorMinimum, PerFamilyCountsAfterDeduplication) {
  struct Case {
    std::string_view name;
    ParsedRanges cand;
    std::size_t min4, min6;
    std::string_view why;  // "" = accepted
  };
  const Case cases[] = {
      {"both present", generated(1, 1), 1, 1, ""},
      {"no IPv6", generated(3, 0), 1, 1, "IPv6 set has 0 prefix(es), fewer than the minimum 1"},
      {"no IPv4", generated(0, 3), 1, 1, "IPv4 set has 0 prefix(es), fewer than the minimum 1"},
      {"empty", ParsedRanges{}, 1, 1, "IPv4 set has 0"},
      {"below a higher minimum", generated(9, 7), 10, 1, "IPv4 set has 9 prefix(es), fewer than the minimum 10"},
      {"exactly the minimum", generated(10, 7), 10, 7, ""},
      {"minimum zero allows an empty family", generated(2, 0), 1, 0, ""},
      {"duplicates do not count", candidate({"192.0.2.0/24", "192.0.2.0/24", "192.0.2.0/25", "2001:db8::/32"}), 2, 1,
       "IPv4 set has 1 prefix(es), fewer than the minimum 2"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.name));
    auto v = validate(c.cand, policy(c.min4, c.min6), nullptr, false);
    if (c.why.empty()) {
      EXPECT_TRUE(ok(v));
    } else {
      ASSERT_TRUE(refused(v));
      EXPECT_THAT(v.error().message, HasSubstr(std::string(c.why)));
    }
  }
}

TEST(ValidatorShrink, Table) {
  struct Case {
    std::string_view name;
    std::size_t old4, old6, new4, new6;
    double max_shrink;
    bool force;
    std::string_view why;  // "" = accepted
  };
  const Case cases[] = {
      {"unchanged", 15, 7, 15, 7, 0.5, false, ""},
      {"grows", 15, 7, 30, 9, 0.5, false, ""},
      {"shrinks a little", 10, 10, 9, 9, 0.5, false, ""},
      {"exactly 50% is allowed", 10, 10, 5, 5, 0.5, false, ""},
      {"more than 50% (IPv4)", 10, 10, 4, 10, 0.5, false,
       "IPv4 set would shrink from 10 to 4 prefixes (-60%, limit 50%)"},
      {"more than 50% (IPv6)", 10, 7, 10, 3, 0.5, false,
       "IPv6 set would shrink from 7 to 3 prefixes (-57%, limit 50%)"},
      {"shrink hint names --force", 15, 7, 2, 1, 0.5, false, "agentctl refresh --force"},
      {"force accepts a big shrink", 15, 7, 2, 1, 0.5, true, ""},
      {"old family empty: no reference", 10, 0, 10, 1, 0.5, false, ""},
      {"limit 0: any shrink refused", 10, 10, 9, 10, 0.0, false, "-10%, limit 0%"},
      {"limit 0: same size fine", 10, 10, 10, 10, 0.0, false, ""},
      {"limit 1: everything but empty", 10, 10, 1, 1, 1.0, false, ""},
      // Exactly at the limit is not "more than" the limit, whatever the binary fraction.
      {"exactly 10%", 10, 10, 9, 9, 0.1, false, ""},
      {"exactly 30%", 10, 10, 7, 7, 0.3, false, ""},
      {"exactly 70%", 10, 10, 3, 3, 0.7, false, ""},
      {"exactly 90%", 10, 10, 1, 1, 0.9, false, ""},
      {"just over 70%", 100, 10, 29, 10, 0.7, false, "IPv4 set would shrink from 100 to 29"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.name));
    auto last = set_of(c.old4, c.old6);
    auto v = validate(generated(c.new4, c.new6), policy(1, 0, c.max_shrink), &last, c.force);
    if (c.why.empty()) {
      ASSERT_TRUE(ok(v));
      EXPECT_EQ(v->set.v4().size(), c.new4);
      EXPECT_EQ(v->set.v6().size(), c.new6);
    } else {
      ASSERT_TRUE(refused(v));
      EXPECT_THAT(v.error().message, HasSubstr(std::string(c.why)));
    }
  }
}

TEST(ValidatorShrink, NoLastGoodMeansNoShrinkCheck) {
  auto v = validate(generated(1, 1), policy(), nullptr, false);
  ASSERT_TRUE(ok(v));
  EXPECT_EQ(v->set.size(), 2u);
}

TEST(ValidatorShrink, ComparesNormalisedCounts) {
  // 10 listed, but 6 are duplicates of the other 4: the candidate really has 4.
  auto cand = generated(4, 1);
  for (int i = 0; i < 6; ++i) cand.prefixes.push_back(cand.prefixes[static_cast<std::size_t>(i % 4)]);
  auto last = set_of(10, 1);
  auto v = validate(cand, policy(), &last, false);
  ASSERT_TRUE(refused(v));
  EXPECT_THAT(v.error().message, HasSubstr("from 10 to 4"));
}

TEST(ValidatorNotes, DuplicatesAndCoveredAreRemovedAndReported) {
  auto v = validate(candidate({"192.0.2.0/24", "192.0.2.0/24", "192.0.2.128/25", "2001:db8::/32", "2001:db8:1::/48"}),
                    policy(), nullptr, false);
  ASSERT_TRUE(ok(v));
  EXPECT_THAT(v->set.strings(Family::v4), ElementsAre("192.0.2.0/24"));
  EXPECT_THAT(v->set.strings(Family::v6), ElementsAre("2001:db8::/32"));
  EXPECT_THAT(v->notes, ElementsAre("3 duplicate or covered prefix(es) removed"));

  auto clean = validate(generated(3, 3), policy(), nullptr, false);
  ASSERT_TRUE(ok(clean));
  EXPECT_THAT(clean->notes, IsEmpty());
}

TEST(ValidatorPolicy, FromConfig) {
  RangesConfig c;
  c.min_ipv4 = 12;
  c.min_ipv6 = 5;
  c.max_shrink = 0.25;
  auto p = ValidationPolicy::from(c);
  EXPECT_EQ(p.min_ipv4, 12u);
  EXPECT_EQ(p.min_ipv6, 5u);
  EXPECT_DOUBLE_EQ(p.max_shrink, 0.25);
  EXPECT_EQ(p.broadest_v4, 8);
  EXPECT_EQ(p.broadest_v6, 12);
}

}  // namespace
}  // namespace og::ranges
