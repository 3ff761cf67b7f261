// libFuzzer: the PROXY v2 builder with arbitrary TLS facts (SNI, CN, ALPN... come from the
// peer). Oracle: an independent decoder written from haproxy's proxy-protocol.txt walks the
// header and must find exactly the facts that went in — addresses and ports, each TLV once,
// inside its parent, holding the (capped) value, the verify field and client bits — and
// nothing else. Link with og_gk_core.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "proxy_protocol.hpp"

namespace {

using og::gk::ProxyInfo;

struct Reader {
  std::string_view in;
  std::size_t at = 0;
  std::string_view take(std::size_t n) {
    if (in.size() - at < n) return {};
    auto s = in.substr(at, n);
    at += n;
    return s;
  }
  std::uint8_t byte() { return at < in.size() ? static_cast<std::uint8_t>(in[at++]) : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>((byte() << 8) | byte()); }
};

std::uint16_t be16(std::string_view s) {
  return static_cast<std::uint16_t>((static_cast<std::uint8_t>(s[0]) << 8) | static_cast<std::uint8_t>(s[1]));
}

// Walks a TLV list that must exactly fill `s`; a type may appear once.
std::map<std::uint8_t, std::string> tlvs(std::string_view s) {
  std::map<std::uint8_t, std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    FUZZ_CHECK(s.size() - i >= 3);
    const auto type = static_cast<std::uint8_t>(s[i]);
    const std::size_t len = be16(s.substr(i + 1, 2));
    FUZZ_CHECK(len <= s.size() - i - 3);
    FUZZ_CHECK(out.emplace(type, std::string(s.substr(i + 3, len))).second);
    i += 3 + len;
  }
  return out;
}

// The builder's documented caps: 255 bytes per TLV value, 1024 for the client CN.
void expect_tlv(const std::map<std::uint8_t, std::string>& m, std::uint8_t type, const std::string& value,
                std::size_t cap = 255) {
  auto it = m.find(type);
  if (value.empty()) {
    FUZZ_CHECK(it == m.end());
    return;
  }
  FUZZ_CHECK(it != m.end());
  FUZZ_CHECK(it->second == value.substr(0, cap));
}

void check(const ProxyInfo& p, std::string_view out) {
  Reader r{out};
  FUZZ_CHECK(r.take(12) == std::string_view("\r\n\r\n\0\r\nQUIT\n", 12));
  FUZZ_CHECK(r.byte() == 0x21);  // v2, PROXY
  const std::uint8_t fam = r.byte();
  const std::size_t len = r.u16();
  FUZZ_CHECK(len == out.size() - 16);
  std::size_t addr_len = 0;
  if (p.src.family != p.dst.family) {
    FUZZ_CHECK(fam == 0x00);
  } else {
    const bool v4 = p.src.family == og::Family::v4;
    FUZZ_CHECK(fam == (v4 ? 0x11 : 0x21));
    const std::size_t n = v4 ? 4 : 16;
    addr_len = 2 * n + 4;
    FUZZ_CHECK(len >= addr_len);
    FUZZ_CHECK(std::memcmp(r.take(n).data(), p.src.bytes.data(), n) == 0);
    FUZZ_CHECK(std::memcmp(r.take(n).data(), p.dst.bytes.data(), n) == 0);
    FUZZ_CHECK(r.u16() == p.src_port);
    FUZZ_CHECK(r.u16() == p.dst_port);
  }
  const auto top = tlvs(out.substr(16 + addr_len));
  expect_tlv(top, og::gk::kPp2TypeAlpn, p.alpn);
  expect_tlv(top, og::gk::kPp2TypeAuthority, p.sni);
  std::size_t expected_top = (p.alpn.empty() ? 0 : 1) + (p.sni.empty() ? 0 : 1) + 1 + (p.cert_sha256 ? 1 : 0);
  FUZZ_CHECK(top.size() == expected_top);
  if (p.cert_sha256) {
    auto it = top.find(og::gk::kPp2TypeClientCertSha256);
    FUZZ_CHECK(it != top.end() && it->second.size() == 32);
    FUZZ_CHECK(std::memcmp(it->second.data(), p.cert_sha256->data(), 32) == 0);
  }
  auto ssl_it = top.find(og::gk::kPp2TypeSsl);
  FUZZ_CHECK(ssl_it != top.end());
  std::string_view ssl = ssl_it->second;
  FUZZ_CHECK(ssl.size() >= 5);
  const auto client = static_cast<std::uint8_t>(ssl[0]);
  const std::uint8_t want_client =
      og::gk::kPp2ClientSsl | (p.cert_presented ? og::gk::kPp2ClientCertConn | og::gk::kPp2ClientCertSess : 0);
  FUZZ_CHECK(client == want_client);
  const std::uint32_t verify = (std::uint32_t{static_cast<std::uint8_t>(ssl[1])} << 24) |
                               (std::uint32_t{static_cast<std::uint8_t>(ssl[2])} << 16) |
                               (std::uint32_t{static_cast<std::uint8_t>(ssl[3])} << 8) |
                               static_cast<std::uint8_t>(ssl[4]);
  // 0 means "verified": only ever for a certificate that was presented and verified.
  FUZZ_CHECK((verify == 0) == (p.cert_presented && p.cert_verified));
  const auto sub = tlvs(ssl.substr(5));
  expect_tlv(sub, og::gk::kPp2SubtypeSslVersion, p.tls_version);
  expect_tlv(sub, og::gk::kPp2SubtypeSslCn, p.client_cn, 1024);
  expect_tlv(sub, og::gk::kPp2SubtypeSslCipher, p.cipher);
  expect_tlv(sub, og::gk::kPp2SubtypeSslSigAlg, p.sig_alg);
  expect_tlv(sub, og::gk::kPp2SubtypeSslKeyAlg, p.key_alg);
  const std::size_t expected_sub =
      !p.tls_version.empty() + !p.client_cn.empty() + !p.cipher.empty() + !p.sig_alg.empty() + !p.key_alg.empty();
  FUZZ_CHECK(sub.size() == expected_sub);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 40) return 0;
  Reader r{std::string_view(reinterpret_cast<const char*>(data), size)};
  ProxyInfo p;
  const std::uint8_t flags = r.byte();
  p.src.family = (flags & 1) ? og::Family::v6 : og::Family::v4;
  p.dst.family = (flags & 2) ? og::Family::v6 : og::Family::v4;  // mixed families: UNSPEC
  p.cert_presented = flags & 4;
  p.cert_verified = flags & 8;
  auto raw = r.take(32);
  std::memcpy(p.src.bytes.data(), raw.data(), 16);
  std::memcpy(p.dst.bytes.data(), raw.data() + 16, 16);
  p.src_port = r.u16();
  p.dst_port = r.u16();
  if (flags & 16) {
    og::gk::Sha256 h{};
    std::memcpy(h.data(), raw.data(), h.size());
    p.cert_sha256 = h;
  }
  // The rest is split into the string facts, each up to a length byte's worth plus a cap
  // crossing (CN up to 1100, so the 1024 cap is reached).
  std::string* fields[] = {&p.sni, &p.alpn, &p.tls_version, &p.cipher, &p.client_cn, &p.sig_alg, &p.key_alg};
  for (std::string* f : fields) {
    std::size_t n = r.byte();
    if (f == &p.client_cn) n *= 5;
    if (f == &p.sni) n += n;  // past 255
    auto s = r.take(std::min(n, size - r.at));
    f->assign(s);
  }
  check(p, og::gk::build_proxy_v2(p));
  return 0;
}
