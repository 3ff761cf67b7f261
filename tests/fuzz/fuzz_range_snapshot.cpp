// The range snapshot codec: the state file is read at every agent start, the export file by
// the gatekeeper whenever it changes. Oracle: whatever decodes encodes to something that
// decodes to the same snapshot, and encoding is then stable byte for byte.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_ranges_common.hpp"
#include "originguard/range_snapshot.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const bool both : {true, false}) {
    auto s = og::decode_range_snapshot(text, {.both_lists = both});
    if (!s) continue;
    std::vector<og::Prefix> all(s->ranges.v4());
    all.insert(all.end(), s->ranges.v6().begin(), s->ranges.v6().end());
    og::fuzz::check_prefixes(all);
    og::fuzz::check_set(all, s->ranges);
    for (const auto& p : s->ranges.v4()) FUZZ_CHECK(p.family() == og::Family::v4);
    for (const auto& p : s->ranges.v6()) FUZZ_CHECK(p.family() == og::Family::v6);
    const std::string encoded = og::encode_range_snapshot(*s);
    auto again = og::decode_range_snapshot(encoded);  // both lists are always written
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *s);
    FUZZ_CHECK(og::encode_range_snapshot(*again) == encoded);
  }
  return 0;
}
