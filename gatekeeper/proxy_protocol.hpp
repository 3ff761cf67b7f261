// PROXY protocol headers sent to the upstream before the first byte of a connection
// (haproxy's proxy-protocol.txt). v2 carries the TLS facts as PP2_TYPE_SSL sub-TLVs, the SNI
// as PP2_TYPE_AUTHORITY and the client certificate's SHA-256 as an application TLV.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "originguard/cidr.hpp"
#include "ssl_util.hpp"

namespace og::gk {

inline constexpr std::uint8_t kPp2TypeAlpn = 0x01;
inline constexpr std::uint8_t kPp2TypeAuthority = 0x02;
inline constexpr std::uint8_t kPp2TypeSsl = 0x20;
inline constexpr std::uint8_t kPp2SubtypeSslVersion = 0x21;
inline constexpr std::uint8_t kPp2SubtypeSslCn = 0x22;
inline constexpr std::uint8_t kPp2SubtypeSslCipher = 0x23;
inline constexpr std::uint8_t kPp2SubtypeSslSigAlg = 0x24;
inline constexpr std::uint8_t kPp2SubtypeSslKeyAlg = 0x25;
inline constexpr std::uint8_t kPp2ClientSsl = 0x01;
inline constexpr std::uint8_t kPp2ClientCertConn = 0x02;
inline constexpr std::uint8_t kPp2ClientCertSess = 0x04;
// Application-specific range (0xE0-0xEF): SHA-256 of the client certificate (32 bytes).
inline constexpr std::uint8_t kPp2TypeClientCertSha256 = 0xE0;

struct ProxyInfo {
  Address src, dst;
  std::uint16_t src_port = 0, dst_port = 0;
  std::string sni, alpn, tls_version, cipher, client_cn, sig_alg, key_alg;
  bool cert_presented = false;
  bool cert_verified = false;  // verify field 0 only when the client certificate verified
  std::optional<Sha256> cert_sha256;
};

// "PROXY TCP4 a b p q\r\n". Mixed families are sent as "PROXY UNKNOWN\r\n".
[[nodiscard]] std::string build_proxy_v1(const ProxyInfo& info);
// Binary v2 header with TLVs; strings longer than a TLV can hold are truncated.
[[nodiscard]] std::string build_proxy_v2(const ProxyInfo& info);

}  // namespace og::gk
