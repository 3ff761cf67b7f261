// The one-CIDR-per-line parser, directly and through the body dispatcher (typed and sniffed).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_ranges_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = og::ranges::parse_text_list(body);
  og::fuzz::check_parsed(r);
  if (r) {
    // Never more prefixes than lines.
    std::size_t lines = 1;
    for (char c : body) lines += c == '\n';
    FUZZ_CHECK(r->prefixes.size() <= lines);
  }
  auto typed = og::ranges::parse_body(body, "text/plain; charset=utf-8", false);
  og::fuzz::check_parsed(typed);
  if (typed) FUZZ_CHECK(!typed->prefixes.empty());
  og::fuzz::check_parsed(og::ranges::parse_body(body, "", false));
  return 0;
}
