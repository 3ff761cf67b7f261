#include "ranges/store.hpp"

#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "originguard/atomic_file.hpp"

namespace og::embedded {
extern const std::string_view kBootstrapRangesJson;
}

namespace og::ranges {

Result<StoredRanges> bootstrap_ranges() {
  auto parsed = parse_api_json(embedded::kBootstrapRangesJson, false);
  if (!parsed) return fail(parsed.error().context("embedded snapshot"));
  StoredRanges s;
  s.ranges = RangeSet::from(parsed->prefixes);
  s.source = std::string(kBootstrapSource);
  s.etag = parsed->etag;
  return s;
}

std::string RangeStore::serialise(const StoredRanges& s) {
  nlohmann::json j;
  j["version"] = 1;
  j["ipv4"] = s.ranges.strings(Family::v4);
  j["ipv6"] = s.ranges.strings(Family::v6);
  j["source"] = s.source;
  j["etag"] = s.etag;
  j["etags"] = s.etags;
  j["fetched_at"] =
      s.fetched_at
          ? nlohmann::json(std::chrono::duration_cast<std::chrono::seconds>(s.fetched_at->time_since_epoch()).count())
          : nlohmann::json(nullptr);
  // replace: an invalid UTF-8 byte in a string must not make saving throw.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<StoredRanges> RangeStore::deserialise(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("not a JSON object");
  // Never j.value(): it throws on a wrong type, and this file is input like any other.
  if (auto v = j.find("version"); v == j.end() || !v->is_number_integer() || v->get<long long>() != 1)
    return fail("unknown version");
  StoredRanges s;
  std::vector<Prefix> ps;
  for (const char* key : {"ipv4", "ipv6"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_array()) return fail(std::string("missing list ") + key);
    for (const auto& e : *it) {
      if (!e.is_string()) return fail(std::string("non-string in ") + key);
      auto p = parse_prefix(e.get_ref<const std::string&>());
      if (!p) return fail(p.error());
      ps.push_back(*p);
    }
  }
  s.ranges = RangeSet::from(std::move(ps));
  if (s.ranges.empty()) return fail("no prefixes");
  // Anyone who could write this file could otherwise widen what the edge sets allow.
  if (auto st = check_allow_width(s.ranges); !st) return fail(st.error());
  if (auto it = j.find("source"); it != j.end() && it->is_string()) s.source = *it;
  if (auto it = j.find("etag"); it != j.end() && it->is_string()) s.etag = *it;
  if (auto it = j.find("etags"); it != j.end() && it->is_object())
    for (auto& [k, v] : it->items())
      if (v.is_string()) s.etags[k] = v.get<std::string>();
  if (auto it = j.find("fetched_at"); it != j.end() && it->is_number_integer()) {
    // Bounded so the conversion to system_clock's nanoseconds cannot overflow.
    // (system_clock counts int64 nanoseconds: it ends in 2262.)
    constexpr long long kMaxEpoch = 1LL << 32;  // year 2106
    bool in_range = it->is_number_unsigned() ? it->get<unsigned long long>() <= kMaxEpoch
                                             : it->get<long long>() >= 0 && it->get<long long>() <= kMaxEpoch;
    if (!in_range) return fail("fetched_at out of range");
    s.fetched_at = WallTime(std::chrono::seconds(it->get<long long>()));
  }
  return s;
}

Result<std::optional<StoredRanges>> RangeStore::load() const {
  remove_stale_temps(file());
  std::ifstream in(file(), std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::optional<StoredRanges>{};
    return fail_errno("open " + file().string());
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  auto s = deserialise(ss.str());
  if (!s) return fail(s.error().context(file().string()));
  return std::optional<StoredRanges>(std::move(*s));
}

Status RangeStore::save(const StoredRanges& s) const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return fail("create " + dir_.string() + ": " + ec.message());
  return write_file_atomic(file(), serialise(s), 0644);
}

}  // namespace og::ranges
