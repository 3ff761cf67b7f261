#include <gtest/gtest.h>

#include "host_match.hpp"
#include "sni.hpp"

using namespace og::gk;

TEST(GkHostMatch, Normalize) {
  EXPECT_EQ(normalize_host("App.Example.COM.").value(), "app.example.com");
  EXPECT_FALSE(normalize_host(""));
  EXPECT_FALSE(normalize_host("a..b"));
  EXPECT_FALSE(normalize_host("a.test.."));  // one root dot is dropped; a second is an empty label
  EXPECT_FALSE(normalize_host("."));
  EXPECT_FALSE(normalize_host("a b"));
  EXPECT_FALSE(normalize_host(std::string_view("a.test\0x", 8)));
  EXPECT_FALSE(normalize_host(std::string(254, 'a')));
}

TEST(GkHostMatch, ExactBeatsWildcardAndWildcardIsOneLabel) {
  HostTable t;
  t.add("*.example.com", 1);
  t.add("api.example.com", 2);
  EXPECT_EQ(t.find("api.example.com"), 2u);
  EXPECT_EQ(t.find("www.example.com"), 1u);
  EXPECT_FALSE(t.find("example.com"));
  EXPECT_FALSE(t.find("a.b.example.com"));
  EXPECT_FALSE(t.find("evil-example.com"));
}

TEST(GkHostMatch, HostHeader) {
  EXPECT_EQ(host_header_name("a.test:8443").value(), "a.test");
  EXPECT_EQ(host_header_name("a.test").value(), "a.test");
  EXPECT_EQ(host_header_name("[::1]:443").value(), "::1");
  EXPECT_FALSE(host_header_name("a.test:x"));
  EXPECT_FALSE(host_header_name(":443"));
  // Brackets hold an IPv6 address (RFC 3986 IP-literal) and nothing else: nginx takes
  // "[a.test]" for a name of its own (its default server), never for a.test.
  EXPECT_EQ(host_header_name("[2001:db8::1]").value(), "2001:db8::1");
  EXPECT_EQ(host_header_name("[::ffff:192.0.2.1]:80").value(), "::ffff:192.0.2.1");
  for (const char* v : {"[a.test]", "[a.test]:443", "[192.0.2.1]", "[]", "[:]x", "[::1", "[a.test:1]"})
    EXPECT_FALSE(host_header_name(v)) << v;
}

TEST(GkSni, ParsesHostName) {
  const std::uint8_t ext[] = {0x00, 0x09, 0x00, 0x00, 0x06, 'a', '.', 't', 'e', 's', 't'};
  EXPECT_EQ(parse_sni_extension(ext).value(), "a.test");
}

TEST(GkSni, RejectsMalformed) {
  const std::uint8_t bad_len[] = {0x00, 0x0a, 0x00, 0x00, 0x06, 'a', '.', 't', 'e', 's', 't'};
  EXPECT_FALSE(parse_sni_extension(bad_len));
  const std::uint8_t overrun[] = {0x00, 0x04, 0x00, 0x00, 0x06, 'a'};
  EXPECT_FALSE(parse_sni_extension(overrun));
  const std::uint8_t empty[] = {0x00, 0x03, 0x00, 0x00, 0x00};
  EXPECT_FALSE(parse_sni_extension(empty));
  EXPECT_FALSE(parse_sni_extension({}));
}
