// libFuzzer: the gatekeeper TOML config parser (operator input, but --check-config must never
// crash on any file). Link with og_gk_core.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)og::gk::parse_gatekeeper_config(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.toml");
  return 0;
}
