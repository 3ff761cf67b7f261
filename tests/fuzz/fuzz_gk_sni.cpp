// libFuzzer: the raw server_name extension parser and host normalisation (attacker bytes
// from the ClientHello). Link with og_gk_core.
#include <cstddef>
#include <cstdint>

#include "host_match.hpp"
#include "sni.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto name = og::gk::parse_sni_extension({data, size});
  if (name) {
    if (name->size() > size) __builtin_trap();
    (void)og::gk::normalize_host(*name);
  }
  return 0;
}
