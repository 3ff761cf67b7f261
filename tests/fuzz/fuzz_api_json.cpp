// The JSON API parser, directly and through the body dispatcher.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "../doubles/api_json_reference.hpp"
#include "fuzz_ranges_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  for (bool china : {false, true}) {
    auto r = og::ranges::parse_api_json(body, china);
    og::fuzz::check_parsed(r);
    // The streaming parser and the document parser it replaced agree, error text included.
    auto dom = og::test::parse_api_json_dom(body, china);
    FUZZ_CHECK(r.has_value() == dom.has_value());
    if (r && dom) {
      FUZZ_CHECK(r->prefixes == dom->prefixes);
      FUZZ_CHECK(r->etag == dom->etag);
    } else if (!r && !dom) {
      FUZZ_CHECK(r.error().message == dom.error().message);
    }
    if (r) {
      // A China answer is the plain answer plus jdcloud_cidrs: whatever passes with it also
      // passes without it.
      if (china) FUZZ_CHECK(og::ranges::parse_api_json(body, false).has_value());
    }
    og::fuzz::check_parsed(og::ranges::parse_body(body, "application/json", china));
  }
  return 0;
}
