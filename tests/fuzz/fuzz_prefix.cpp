// parse_prefix / parse_address on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "originguard/cidr.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto bare : {og::BareAddress::refuse, og::BareAddress::as_host_prefix}) {
    auto p = og::parse_prefix(text, bare);
    if (!p) {
      FUZZ_CHECK(p.error().message.size() < 1024);
      continue;
    }
    FUZZ_CHECK(p->len <= og::max_len(p->family()));
    FUZZ_CHECK(p->contains(p->addr));
    FUZZ_CHECK(p->contains(*p));
    // Canonical: the printed form parses back to the same prefix, also without help.
    auto again = og::parse_prefix(p->to_string());
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *p);
    // Host bits are zero: the first address of the prefix is its address.
    if (p->family() == og::Family::v4) {
      for (std::size_t i = 4; i < 16; ++i) FUZZ_CHECK(p->addr.bytes[i] == 0);
    }
    if (bare == og::BareAddress::refuse) FUZZ_CHECK(text.find('/') != std::string_view::npos);
  }
  auto a = og::parse_address(text);
  if (a) {
    auto again = og::parse_address(a->to_string());
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *a);
    auto host = og::parse_prefix(text, og::BareAddress::as_host_prefix);
    FUZZ_CHECK(host.has_value());
    FUZZ_CHECK(host->len == og::max_len(a->family));
  }
  return 0;
}
