#include <gtest/gtest.h>

#include "proxy_protocol.hpp"

using namespace og::gk;

namespace {
ProxyInfo v4info() {
  ProxyInfo p;
  p.src = *og::parse_address("198.51.100.7");
  p.dst = *og::parse_address("192.0.2.1");
  p.src_port = 51000;
  p.dst_port = 443;
  return p;
}
}  // namespace

TEST(GkProxyProtocol, V1) {
  EXPECT_EQ(build_proxy_v1(v4info()), "PROXY TCP4 198.51.100.7 192.0.2.1 51000 443\r\n");
  auto p = v4info();
  p.dst = *og::parse_address("::1");
  EXPECT_EQ(build_proxy_v1(p), "PROXY UNKNOWN\r\n");
}

TEST(GkProxyProtocol, V2HeaderAndSslTlv) {
  auto p = v4info();
  p.sni = "a.test";
  p.tls_version = "TLSv1.3";
  p.client_cn = "origin-pull.cloudflare.net";
  p.cert_presented = true;
  p.cert_verified = true;
  auto out = build_proxy_v2(p);
  ASSERT_GE(out.size(), 16u + 12u);
  EXPECT_EQ(out.substr(0, 12), std::string("\r\n\r\n\0\r\nQUIT\n", 12));
  EXPECT_EQ(static_cast<unsigned char>(out[12]), 0x21);
  EXPECT_EQ(static_cast<unsigned char>(out[13]), 0x11);
  const std::size_t len = (static_cast<unsigned char>(out[14]) << 8) | static_cast<unsigned char>(out[15]);
  EXPECT_EQ(len, out.size() - 16);
  // Walk the TLVs: authority then SSL with client flags 0x07 and verify 0.
  std::size_t i = 16 + 12;
  bool saw_authority = false, saw_ssl = false;
  while (i + 3 <= out.size()) {
    auto type = static_cast<unsigned char>(out[i]);
    std::size_t l = (static_cast<unsigned char>(out[i + 1]) << 8) | static_cast<unsigned char>(out[i + 2]);
    ASSERT_LE(i + 3 + l, out.size());
    auto v = out.substr(i + 3, l);
    if (type == kPp2TypeAuthority) {
      saw_authority = true;
      EXPECT_EQ(v, "a.test");
    }
    if (type == kPp2TypeSsl) {
      saw_ssl = true;
      EXPECT_EQ(static_cast<unsigned char>(v[0]), 0x07);
      EXPECT_EQ(v.substr(1, 4), std::string(4, '\0'));
      EXPECT_NE(v.find("origin-pull.cloudflare.net"), std::string::npos);
    }
    i += 3 + l;
  }
  EXPECT_EQ(i, out.size());
  EXPECT_TRUE(saw_authority);
  EXPECT_TRUE(saw_ssl);
}

TEST(GkProxyProtocol, V2LongFieldsStayWellFormed) {
  auto p = v4info();
  p.sni = std::string(100000, 'a');
  p.client_cn = std::string(100000, 'c');
  auto out = build_proxy_v2(p);
  const std::size_t len = (static_cast<unsigned char>(out[14]) << 8) | static_cast<unsigned char>(out[15]);
  EXPECT_EQ(len, out.size() - 16);
  EXPECT_LT(out.size(), 4096u);
}
