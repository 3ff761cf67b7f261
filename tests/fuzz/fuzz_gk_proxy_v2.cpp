// libFuzzer: PROXY v2 builder with arbitrary TLS facts (SNI, CN, ALPN... come from the peer):
// the header length must match and every TLV must stay inside it. Link with og_gk_core.
#include <cstddef>
#include <cstdint>
#include <string>

#include "proxy_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  og::gk::ProxyInfo p;
  p.src.family = p.dst.family = (size & 1) ? og::Family::v6 : og::Family::v4;
  auto part = [&](std::size_t i) { return in.substr(i * in.size() / 4, in.size() / 4); };
  p.sni = part(0);
  p.client_cn = part(1);
  p.alpn = part(2);
  p.cipher = part(3);
  p.cert_presented = size & 2;
  auto out = og::gk::build_proxy_v2(p);
  std::size_t len = (static_cast<unsigned char>(out[14]) << 8) | static_cast<unsigned char>(out[15]);
  if (len != out.size() - 16) __builtin_trap();
  return 0;
}
