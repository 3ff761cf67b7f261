// RangeStore::deserialise: the state file is read at every start, before any network access.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_ranges_common.hpp"
#include "ranges/store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto s = og::ranges::RangeStore::deserialise(text);
  if (!s) return 0;
  FUZZ_CHECK(!s->ranges.empty());
  std::vector<og::Prefix> all(s->ranges.v4());
  all.insert(all.end(), s->ranges.v6().begin(), s->ranges.v6().end());
  og::fuzz::check_prefixes(all);
  og::fuzz::check_set(all, s->ranges);
  // What was loaded is saved back unchanged.
  auto again = og::ranges::RangeStore::deserialise(og::ranges::RangeStore::serialise(*s));
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->ranges == s->ranges);
  FUZZ_CHECK(again->source == s->source);
  FUZZ_CHECK(again->etag == s->etag);
  FUZZ_CHECK(again->etags == s->etags);
  FUZZ_CHECK(again->fetched_at == s->fetched_at);
  return 0;
}
