#include "originguard/range_snapshot.hpp"

#include <nlohmann/json.hpp>

namespace og {

std::string encode_range_snapshot(const RangeSnapshot& s) {
  nlohmann::json j;
  j["version"] = 1;
  j["ipv4"] = s.ranges.strings(Family::v4);
  j["ipv6"] = s.ranges.strings(Family::v6);
  j["source"] = s.source;
  if (s.generated_at) j["generated_at"] = *s.generated_at;
  if (s.fetch) {
    j["etag"] = s.fetch->etag;
    j["etags"] = s.fetch->etags;
    j["fetched_at"] =
        s.fetch->fetched_at
            ? nlohmann::json(
                  std::chrono::duration_cast<std::chrono::seconds>(s.fetch->fetched_at->time_since_epoch()).count())
            : nlohmann::json(nullptr);
  }
  // replace: an invalid UTF-8 byte in a string (an ETag from the network) must not throw.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<RangeSnapshot> decode_range_snapshot(std::string_view text, SnapshotDecoding how) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("not a JSON object");
  // Never j.value() or operator[]: they throw or insert on a wrong type, and this is input.
  if (auto v = j.find("version"); v == j.end() || !v->is_number_integer() || v->get<long long>() != 1)
    return fail("unknown version (expected \"version\": 1)");
  RangeSnapshot s;
  std::vector<Prefix> ps;
  for (const Family fam : {Family::v4, Family::v6}) {
    const std::string key = fam == Family::v4 ? "ipv4" : "ipv6";
    auto it = j.find(key);
    if (it == j.end() && !how.both_lists) continue;
    if (it == j.end() || !it->is_array()) return fail("missing list " + key + " (an array of prefixes)");
    for (const auto& e : *it) {
      if (!e.is_string()) return fail("non-string in " + key);
      const auto& text_prefix = e.get_ref<const std::string&>();
      auto p = parse_prefix(text_prefix);
      if (!p) return fail(key + ": " + p.error().message);
      if (p->family() != fam) return fail(key + ": " + quote_untrusted(text_prefix) + " is of the other family");
      ps.push_back(*p);
    }
  }
  s.ranges = RangeSet::from(std::move(ps));
  if (auto it = j.find("source"); it != j.end() && it->is_string()) s.source = *it;
  if (auto it = j.find("generated_at"); it != j.end() && it->is_string()) s.generated_at = *it;
  const bool state = j.contains("etag") || j.contains("etags") || j.contains("fetched_at");
  if (!state) return s;
  auto& f = s.fetch.emplace();
  if (auto it = j.find("etag"); it != j.end() && it->is_string()) f.etag = *it;
  if (auto it = j.find("etags"); it != j.end() && it->is_object())
    for (auto& [k, v] : it->items())
      if (v.is_string()) f.etags[k] = v.get<std::string>();
  if (auto it = j.find("fetched_at"); it != j.end() && it->is_number_integer()) {
    const bool in_range = it->is_number_unsigned()
                              ? it->get<unsigned long long>() <= kSnapshotMaxEpoch
                              : it->get<long long>() >= 0 && it->get<long long>() <= kSnapshotMaxEpoch;
    if (!in_range) return fail("fetched_at out of range");
    f.fetched_at = std::chrono::system_clock::time_point(std::chrono::seconds(it->get<long long>()));
  }
  return s;
}

}  // namespace og
