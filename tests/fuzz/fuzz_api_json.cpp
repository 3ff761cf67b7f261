// The JSON API parser, directly and through the body dispatcher.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_ranges_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  for (bool china : {false, true}) {
    auto r = og::ranges::parse_api_json(body, china);
    og::fuzz::check_parsed(r);
    if (r) {
      // A China answer is the plain answer plus jdcloud_cidrs: whatever passes with it also
      // passes without it.
      if (china) FUZZ_CHECK(og::ranges::parse_api_json(body, false).has_value());
    }
    og::fuzz::check_parsed(og::ranges::parse_body(body, "application/json", china));
  }
  return 0;
}
