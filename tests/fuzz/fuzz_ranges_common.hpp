// Properties every accepted range list must have, shared by the range-parser fuzz targets.
#pragma once

#include <nlohmann/json.hpp>

#include "fuzz_check.hpp"
#include "originguard/range_set.hpp"
#include "ranges/parse.hpp"
#include "ranges/validator.hpp"

namespace og::fuzz {

// Errors and etags reach status JSON: nlohmann's encoder throws on invalid UTF-8.
inline void check_encodable(const std::string& s) {
  bool threw = false;
  try {
    (void)nlohmann::json(s).dump();
  } catch (const nlohmann::json::exception&) {
    threw = true;
  }
  FUZZ_CHECK(!threw);
}

// Every prefix a parser returns is canonical: printing and re-parsing gives it back.
inline void check_prefixes(const std::vector<Prefix>& ps) {
  for (const auto& p : ps) {
    auto again = parse_prefix(p.to_string());
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == p);
    FUZZ_CHECK(p.len <= max_len(p.family()));
  }
}

// Normalisation: sorted, no prefix inside another, every input covered by the set.
inline void check_set(const std::vector<Prefix>& in, const RangeSet& s) {
  for (Family f : {Family::v4, Family::v6}) {
    const auto& v = s.of(f);
    for (std::size_t i = 0; i < v.size(); ++i) {
      FUZZ_CHECK(v[i].family() == f);
      if (i > 0) {
        FUZZ_CHECK(v[i - 1] < v[i]);
        FUZZ_CHECK(!v[i - 1].contains(v[i]));
      }
    }
  }
  for (const auto& p : in) {
    const Prefix* m = s.match(p.addr);
    FUZZ_CHECK(m != nullptr);
    FUZZ_CHECK(m->contains(p));
  }
}

inline void check_parsed(const Result<ranges::ParsedRanges>& r) {
  if (!r) {
    FUZZ_CHECK(!r.error().message.empty());
    FUZZ_CHECK(r.error().message.size() < 4096);  // untrusted input is never echoed whole
    check_encodable(r.error().message);
    return;
  }
  check_prefixes(r->prefixes);
  FUZZ_CHECK(r->etag.size() <= 256);
  check_encodable(r->etag);
  auto v = ranges::validate(*r, ranges::ValidationPolicy{}, nullptr, false);
  if (v) {
    check_set(r->prefixes, v->set);
    for (const auto& p : v->set.v4()) FUZZ_CHECK(p.len >= 8);
    for (const auto& p : v->set.v6()) FUZZ_CHECK(p.len >= 12);
  }
}

}  // namespace og::fuzz
