#include <gtest/gtest.h>

#include <ctime>

#include "edge_ranges.hpp"
#include "tls_policy.hpp"
#include "verdict_cache.hpp"

using namespace og::gk;

namespace {
Sha256 h(std::uint8_t b) {
  Sha256 x{};
  x.fill(b);
  return x;
}
}  // namespace

TEST(GkPins, AnyCertOfTheChainMatches) {
  EXPECT_TRUE(pins_match({h(1), h(2)}, {}, {}, {}));  // no pins: allowed
  EXPECT_TRUE(pins_match({h(1), h(2)}, {h(9)}, {h(2)}, {}));
  EXPECT_TRUE(pins_match({h(1)}, {h(9)}, {h(3)}, {h(9)}));
  EXPECT_FALSE(pins_match({h(1), h(2)}, {h(8)}, {h(3)}, {h(9)}));
}

TEST(GkPins, DecodesBase64) {
  // The origin-pull CA's SPKI pin (CN=origin-pull.cloudflare.net, serial 5791BA9556C22E61).
  auto p = decode_pin("4u+f6FrDn1Itx3NQXzmYdap1rBDEl2bKiZ+PmbB9o0w=");
  ASSERT_TRUE(p);
  EXPECT_EQ(base64(*p), "4u+f6FrDn1Itx3NQXzmYdap1rBDEl2bKiZ+PmbB9o0w=");
  EXPECT_FALSE(decode_pin("short"));
}

TEST(GkPins, EmbeddedOriginPullCaHasTheDocumentedPin) {
  namespace e = og::gk::embedded;
  auto certs = load_certs_pem(e::kOriginPullCaPem, "embedded");
  ASSERT_TRUE(certs) << certs.error().message;
  auto pin = spki_sha256((*certs)[0].get());
  ASSERT_TRUE(pin);
  EXPECT_EQ(base64(*pin), "4u+f6FrDn1Itx3NQXzmYdap1rBDEl2bKiZ+PmbB9o0w=");
  EXPECT_EQ(subject_cn((*certs)[0].get()), "origin-pull.cloudflare.net");
}

TEST(GkSubject, CnOrSan) {
  EXPECT_TRUE(subject_match("x", {}, {}, {}));
  EXPECT_TRUE(subject_match("Origin-Pull.Cloudflare.net", {}, {"origin-pull.cloudflare.net"}, {}));
  EXPECT_TRUE(subject_match("x", {"a.zone", "b.zone"}, {}, {"B.zone"}));
  EXPECT_FALSE(subject_match("x", {"a.zone"}, {"y"}, {"c.zone"}));
}

TEST(GkVerdictCache, ExpiryAndCapacity) {
  VerdictCache c(2);
  const std::time_t now = 1'000'000;
  c.insert(h(1), now - 10, now + 10);
  EXPECT_TRUE(c.lookup(h(1), now));
  EXPECT_TRUE(c.lookup(h(1), now + 9));
  EXPECT_FALSE(c.lookup(h(1), now + 10));  // X509_verify_cert's bound: expired at notAfter/nextUpdate
  EXPECT_FALSE(c.lookup(h(1), now));       // and was dropped
  c.insert(h(5), now + 5, now + 10);
  EXPECT_TRUE(c.lookup(h(5), now + 5));
  EXPECT_FALSE(c.lookup(h(5), now + 4));  // before the chain's notBefore (a clock set back)
  c.insert(h(2), now, now + 10);
  c.insert(h(3), now, now + 10);
  c.insert(h(4), now, now + 10);
  EXPECT_LE(c.size(), 2u);
  EXPECT_TRUE(c.lookup(h(4), now));
  VerdictCache off(0);
  off.insert(h(1), now, now + 10);
  EXPECT_FALSE(off.lookup(h(1), now));
}

TEST(GkEdgeRanges, ParsesAgentSnapshot) {
  auto s = parse_edge_ranges(
      R"({"version":1,"generated_at":"2026-01-01T00:00:00Z","ipv4":["198.51.100.0/24"],"ipv6":["2001:db8:cf::/48"]})");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(s->contains(*og::parse_address("198.51.100.7")));
  EXPECT_FALSE(s->contains(*og::parse_address("203.0.113.1")));
  EXPECT_FALSE(parse_edge_ranges(R"({"version":2})"));
  EXPECT_FALSE(parse_edge_ranges(R"({"version":1,"ipv4":["2001:db8::/32"]})"));
  EXPECT_FALSE(parse_edge_ranges("<html>"));
}
