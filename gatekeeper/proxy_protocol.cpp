#include "proxy_protocol.hpp"

namespace og::gk {
namespace {

void put16(std::string& out, std::size_t v) {
  out += static_cast<char>((v >> 8) & 0xff);
  out += static_cast<char>(v & 0xff);
}

// Each value is capped so that the whole header stays far below the 16-bit length limit.
void tlv(std::string& out, std::uint8_t type, std::string_view value, std::size_t cap = 255) {
  value = value.substr(0, cap);
  out += static_cast<char>(type);
  put16(out, value.size());
  out += value;
}

}  // namespace

std::string build_proxy_v1(const ProxyInfo& info) {
  if (info.src.family != info.dst.family) return "PROXY UNKNOWN\r\n";
  return std::string("PROXY ") + (info.src.family == Family::v4 ? "TCP4 " : "TCP6 ") + info.src.to_string() + " " +
         info.dst.to_string() + " " + std::to_string(info.src_port) + " " + std::to_string(info.dst_port) + "\r\n";
}

std::string build_proxy_v2(const ProxyInfo& info) {
  static constexpr char kSig[] = "\r\n\r\n\0\r\nQUIT\n";
  std::string body;
  std::uint8_t fam = 0x00;  // UNSPEC
  if (info.src.family == info.dst.family) {
    const std::size_t n = info.src.family == Family::v4 ? 4 : 16;
    fam = info.src.family == Family::v4 ? 0x11 : 0x21;  // TCP over IPv4 / IPv6
    body.append(reinterpret_cast<const char*>(info.src.bytes.data()), n);
    body.append(reinterpret_cast<const char*>(info.dst.bytes.data()), n);
    put16(body, info.src_port);
    put16(body, info.dst_port);
  }
  if (!info.alpn.empty()) tlv(body, kPp2TypeAlpn, info.alpn);
  if (!info.sni.empty()) tlv(body, kPp2TypeAuthority, info.sni);
  std::string ssl;
  std::uint8_t client = kPp2ClientSsl;
  if (info.cert_presented) client |= kPp2ClientCertConn | kPp2ClientCertSess;
  ssl += static_cast<char>(client);
  const std::uint32_t verify = info.cert_presented && info.cert_verified ? 0 : 1;
  for (int shift = 24; shift >= 0; shift -= 8) ssl += static_cast<char>((verify >> shift) & 0xff);
  if (!info.tls_version.empty()) tlv(ssl, kPp2SubtypeSslVersion, info.tls_version);
  if (!info.client_cn.empty()) tlv(ssl, kPp2SubtypeSslCn, info.client_cn, 1024);
  if (!info.cipher.empty()) tlv(ssl, kPp2SubtypeSslCipher, info.cipher);
  if (!info.sig_alg.empty()) tlv(ssl, kPp2SubtypeSslSigAlg, info.sig_alg);
  if (!info.key_alg.empty()) tlv(ssl, kPp2SubtypeSslKeyAlg, info.key_alg);
  tlv(body, kPp2TypeSsl, ssl, ssl.size());
  if (info.cert_sha256)
    tlv(body, kPp2TypeClientCertSha256,
        std::string_view(reinterpret_cast<const char*>(info.cert_sha256->data()), info.cert_sha256->size()));
  std::string out(kSig, 12);
  out += static_cast<char>(0x21);  // version 2, PROXY command
  out += static_cast<char>(fam);
  put16(out, body.size());
  out += body;
  return out;
}

}  // namespace og::gk
