// Strict CIDR parsing: what range sources and config may contain, and what must be refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "originguard/cidr.hpp"
#include "test_support.hpp"

namespace og {
namespace {

using test::ok;
using test::refused;
using ::testing::HasSubstr;

struct Accepted {
  std::string_view text;
  Family family;
  int len;
  std::string_view canonical;  // to_string() of the parsed prefix
};
void PrintTo(const Accepted& c, std::ostream* os) { *os << ::testing::PrintToString(std::string(c.text)); }

class PrefixAccepted : public ::testing::TestWithParam<Accepted> {};

TEST_P(PrefixAccepted, ParsesToCanonicalForm) {
  const auto& c = GetParam();
  auto p = parse_prefix(c.text);
  ASSERT_TRUE(ok(p)) << c.text;
  EXPECT_EQ(p->family(), c.family);
  EXPECT_EQ(p->len, c.len);
  EXPECT_EQ(p->to_string(), c.canonical);
  // The canonical text parses back to the same prefix.
  auto again = parse_prefix(p->to_string());
  ASSERT_TRUE(ok(again));
  EXPECT_EQ(*again, *p);
}

INSTANTIATE_TEST_SUITE_P(
    Cidr, PrefixAccepted,
    ::testing::Values(Accepted{"0.0.0.0/0", Family::v4, 0, "0.0.0.0/0"},
                      Accepted{"10.0.0.0/8", Family::v4, 8, "10.0.0.0/8"},
                      Accepted{"104.16.0.0/13", Family::v4, 13, "104.16.0.0/13"},
                      Accepted{"192.0.2.0/25", Family::v4, 25, "192.0.2.0/25"},
                      Accepted{"192.0.2.128/25", Family::v4, 25, "192.0.2.128/25"},
                      Accepted{"1.2.3.4/32", Family::v4, 32, "1.2.3.4/32"},
                      Accepted{"255.255.255.255/32", Family::v4, 32, "255.255.255.255/32"},
                      Accepted{"255.255.255.254/31", Family::v4, 31, "255.255.255.254/31"},
                      Accepted{"128.0.0.0/1", Family::v4, 1, "128.0.0.0/1"},
                      Accepted{"0.0.0.0/32", Family::v4, 32, "0.0.0.0/32"}, Accepted{"::/0", Family::v6, 0, "::/0"},
                      Accepted{"::/128", Family::v6, 128, "::/128"}, Accepted{"::1/128", Family::v6, 128, "::1/128"},
                      Accepted{"2400:cb00::/32", Family::v6, 32, "2400:cb00::/32"},
                      Accepted{"2a06:98c0::/29", Family::v6, 29, "2a06:98c0::/29"},
                      Accepted{"2001:DB8:CF::/48", Family::v6, 48, "2001:db8:cf::/48"},  // hex case is not ambiguous
                      Accepted{"2001:0db8:0000::/48", Family::v6, 48, "2001:db8::/48"},  // zero-padded groups neither
                      Accepted{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", Family::v6, 128,
                               "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"},
                      Accepted{"8000::/1", Family::v6, 1, "8000::/1"},
                      Accepted{"::ffff:1.2.3.4/128", Family::v6, 128, "::ffff:1.2.3.4/128"},  // v4-mapped stays IPv6
                      Accepted{"::ffff:1.2.3.0/120", Family::v6, 120, "::ffff:1.2.3.0/120"}));

struct Refused {
  std::string_view text;
  std::string_view why;  // substring of the error message
};
void PrintTo(const Refused& c, std::ostream* os) { *os << ::testing::PrintToString(std::string(c.text)); }

class PrefixRefused : public ::testing::TestWithParam<Refused> {};

TEST_P(PrefixRefused, WithReason) {
  const auto& c = GetParam();
  auto p = parse_prefix(c.text);
  ASSERT_TRUE(refused(p)) << "accepted \"" << c.text << "\" as " << p->to_string();
  EXPECT_THAT(p.error().message, HasSubstr(std::string(c.why))) << c.text;
}

INSTANTIATE_TEST_SUITE_P(
    Cidr, PrefixRefused,
    ::testing::Values(
        // boundaries
        Refused{"0.0.0.0/33", "length > 32"}, Refused{"1.2.3.4/999", "length > 32"}, Refused{"::/129", "length > 128"},
        Refused{"256.0.0.0/8", "octet out of range"}, Refused{"1.2.3.1000/32", "octet out of range"},
        // leading zeros: octal in inet_aton, decimal elsewhere
        Refused{"010.0.0.0/8", "leading zero"}, Refused{"10.0.0.01/32", "leading zero"},
        Refused{"10.00.0.0/16", "leading zero"}, Refused{"10.0.0.0/08", "leading zero"},
        Refused{"0.0.0.0/00", "leading zero"}, Refused{"10.0.0.0/0008", "bad length"},
        // shape
        Refused{"", "empty"}, Refused{"/8", "empty"}, Refused{"1.2.3/24", "4 dot-separated octets"},
        Refused{"1.2.3.4.5/32", "trailing characters"}, Refused{"1..2.3/24", "octet"},
        Refused{"1.2.3.4/", "bad length"}, Refused{"1.2.3.4/-1", "non-numeric length"},
        Refused{"1.2.3.4/+8", "non-numeric length"}, Refused{"1.2.3.4/3a", "non-numeric length"},
        Refused{"1.2.3.4/32/32", "bad length"}, Refused{"0x7f.0.0.1/32", "octets"}, Refused{"-1.0.0.0/8", "octet"},
        Refused{":::/0", "not a valid IPv6"}, Refused{"1:2:3:4:5:6:7:8:9/128", "not a valid IPv6"},
        Refused{"2001:db8::g/32", "invalid character"}, Refused{"2001:db8:::/48", "not a valid IPv6"},
        Refused{"[2001:db8::]/32", "invalid character"},
        Refused{"2001:db8::1:2:3:4:5:6:7:8:9:a:b:c:d:e:f:0:1:2:3/128", "too long"},
        // scoped addresses
        Refused{"fe80::1%eth0/128", "scoped address"}, Refused{"fe80::%1/64", "scoped address"},
        Refused{"1.2.3.4%eth0/32", "trailing characters"},
        // whitespace, CR, tabs: the caller trims lines, the parser never does
        Refused{" 1.2.3.0/24", "octet"}, Refused{"1.2.3.0/24 ", "non-numeric length"},
        Refused{"1.2.3.0/24\r", "non-numeric length"}, Refused{"1.2.3.0/24\n", "non-numeric length"},
        Refused{"1.2.3.0\t/24", "trailing characters"}, Refused{"1.2.3.0 /24", "trailing characters"},
        Refused{"2400:cb00::/32\r", "non-numeric length"}, Refused{"2400:cb00:: /32", "invalid character"},
        Refused{std::string_view("1.2.3.0/24\0", 11), "non-numeric length"},
        // missing length (range sources must say what they mean)
        Refused{"1.2.3.4", "missing /length"}, Refused{"2001:db8::1", "missing /length"},
        // concatenation without newline: "...0/22" + "103.21..." and v4 file + v6 file
        Refused{"1.2.3.4/22103.21.244.0/22", "bad length"}, Refused{"131.0.72.0/222400:cb00::/32", "bad length"},
        Refused{"131.0.72.0/22103.21.244.0", "bad length"}, Refused{"131.0.72.0/2210", "bad length"}));

struct HostBits {
  std::string_view text;
  std::string_view canonical;
};
void PrintTo(const HostBits& c, std::ostream* os) { *os << ::testing::PrintToString(std::string(c.text)); }

class PrefixHostBits : public ::testing::TestWithParam<HostBits> {};

TEST_P(PrefixHostBits, RefusedNamingTheCanonicalForm) {
  auto p = parse_prefix(GetParam().text);
  ASSERT_TRUE(refused(p));
  EXPECT_THAT(p.error().message, HasSubstr("host bits set"));
  EXPECT_THAT(p.error().message, HasSubstr("canonical form is " + std::string(GetParam().canonical)));
  EXPECT_THAT(p.error().message, HasSubstr(std::string(GetParam().text)));  // the input is quoted
}

INSTANTIATE_TEST_SUITE_P(
    Cidr, PrefixHostBits,
    ::testing::Values(HostBits{"104.16.0.1/13", "104.16.0.0/13"}, HostBits{"104.23.255.255/13", "104.16.0.0/13"},
                      HostBits{"255.255.255.255/31", "255.255.255.254/31"}, HostBits{"1.2.3.4/0", "0.0.0.0/0"},
                      HostBits{"192.0.2.128/24", "192.0.2.0/24"}, HostBits{"2400:cb00::1/32", "2400:cb00::/32"},
                      HostBits{"2a06:98c7::/29", "2a06:98c0::/29"}, HostBits{"::1/127", "::/127"},
                      HostBits{"::ffff:1.2.3.4/120", "::ffff:1.2.3.0/120"}));

TEST(CidrBareAddress, AsHostPrefixGivesFullLength) {
  auto v4 = parse_prefix("192.0.2.7", BareAddress::as_host_prefix);
  ASSERT_TRUE(ok(v4));
  EXPECT_EQ(v4->to_string(), "192.0.2.7/32");
  auto v6 = parse_prefix("2001:db8::7", BareAddress::as_host_prefix);
  ASSERT_TRUE(ok(v6));
  EXPECT_EQ(v6->to_string(), "2001:db8::7/128");
  // An explicit length still follows every rule.
  auto hb = parse_prefix("192.0.2.7/24", BareAddress::as_host_prefix);
  ASSERT_TRUE(refused(hb));
  EXPECT_THAT(hb.error().message, HasSubstr("canonical form is 192.0.2.0/24"));
  EXPECT_TRUE(refused(parse_prefix("fe80::1%eth0", BareAddress::as_host_prefix)));
  EXPECT_TRUE(refused(parse_prefix("010.0.0.1", BareAddress::as_host_prefix)));
  EXPECT_TRUE(refused(parse_prefix(" 192.0.2.7", BareAddress::as_host_prefix)));
}

TEST(CidrErrorMessage, LongInputIsCutInTheMessage) {
  std::string garbage(5000, '9');
  auto p = parse_prefix(garbage + "/8");
  ASSERT_TRUE(refused(p));
  EXPECT_LT(p.error().message.size(), 400u) << "error messages must not echo unbounded input";
}

struct AddressCase {
  std::string_view text;
  bool valid;
  Family family;
  std::string_view canonical;
};
void PrintTo(const AddressCase& c, std::ostream* os) { *os << ::testing::PrintToString(std::string(c.text)); }

class AddressParse : public ::testing::TestWithParam<AddressCase> {};

TEST_P(AddressParse, StrictlyAsDocumented) {
  const auto& c = GetParam();
  auto a = parse_address(c.text);
  if (!c.valid) {
    EXPECT_TRUE(refused(a)) << "accepted \"" << c.text << "\"";
    if (!a) {
      EXPECT_THAT(a.error().message, HasSubstr("address"));
    }
    return;
  }
  ASSERT_TRUE(ok(a)) << c.text;
  EXPECT_EQ(a->family, c.family);
  EXPECT_EQ(a->to_string(), c.canonical);
}

INSTANTIATE_TEST_SUITE_P(
    Cidr, AddressParse,
    ::testing::Values(
        AddressCase{"0.0.0.0", true, Family::v4, "0.0.0.0"},
        AddressCase{"255.255.255.255", true, Family::v4, "255.255.255.255"},
        AddressCase{"192.0.2.1", true, Family::v4, "192.0.2.1"}, AddressCase{"::", true, Family::v6, "::"},
        AddressCase{"::1", true, Family::v6, "::1"}, AddressCase{"::ffff:1.2.3.4", true, Family::v6, "::ffff:1.2.3.4"},
        AddressCase{"2001:db8:0:0:0:0:0:1", true, Family::v6, "2001:db8::1"}, AddressCase{"", false, Family::v4, ""},
        AddressCase{"255.255.255.256", false, Family::v4, ""}, AddressCase{"01.2.3.4", false, Family::v4, ""},
        AddressCase{"1.2.3.4 ", false, Family::v4, ""}, AddressCase{"\t1.2.3.4", false, Family::v4, ""},
        AddressCase{"1.2.3.4\r\n", false, Family::v4, ""}, AddressCase{"1.2.3", false, Family::v4, ""},
        AddressCase{"1.2.3.4/32", false, Family::v4, ""}, AddressCase{"fe80::1%eth0", false, Family::v6, ""},
        AddressCase{"::ffff:1.2.3.04", false, Family::v6, ""}, AddressCase{"::ffff:256.2.3.4", false, Family::v6, ""},
        AddressCase{":", false, Family::v6, ""}, AddressCase{"::1 ", false, Family::v6, ""}));

TEST(CidrContains, AddressesAndPrefixes) {
  auto p = *parse_prefix("104.16.0.0/13");
  EXPECT_TRUE(p.contains(*parse_address("104.16.0.0")));
  EXPECT_TRUE(p.contains(*parse_address("104.23.255.255")));
  EXPECT_FALSE(p.contains(*parse_address("104.24.0.0")));
  EXPECT_FALSE(p.contains(*parse_address("104.15.255.255")));
  EXPECT_TRUE(p.contains(*parse_prefix("104.20.0.0/16")));
  EXPECT_TRUE(p.contains(p));
  EXPECT_FALSE(p.contains(*parse_prefix("104.0.0.0/8")));  // broader is not inside

  auto all4 = *parse_prefix("0.0.0.0/0");
  EXPECT_TRUE(all4.contains(*parse_address("255.255.255.255")));
  EXPECT_FALSE(all4.contains(*parse_address("::")));  // never across families
  auto all6 = *parse_prefix("::/0");
  EXPECT_TRUE(all6.contains(*parse_address("ffff::1")));
  EXPECT_FALSE(all6.contains(*parse_address("0.0.0.0")));
  EXPECT_FALSE(all6.contains(all4));

  auto host6 = *parse_prefix("2001:db8::1/128");
  EXPECT_TRUE(host6.contains(*parse_address("2001:db8::1")));
  EXPECT_FALSE(host6.contains(*parse_address("2001:db8::2")));
  auto odd6 = *parse_prefix("2a06:98c0::/29");
  EXPECT_TRUE(odd6.contains(*parse_address("2a06:98c7:ffff::1")));
  EXPECT_FALSE(odd6.contains(*parse_address("2a06:98c8::")));
}

}  // namespace
}  // namespace og
