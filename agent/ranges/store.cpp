#include "ranges/store.hpp"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "originguard/atomic_file.hpp"
#include "originguard/range_snapshot.hpp"

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
  RangeSnapshot snap;
  snap.ranges = s.ranges;
  snap.source = s.source;
  snap.fetch = RangeSnapshot::Fetch{s.etag, s.etags, s.fetched_at};
  return encode_range_snapshot(snap);
}

Result<StoredRanges> RangeStore::deserialise(std::string_view text) {
  auto snap = decode_range_snapshot(text);
  if (!snap) return fail(snap.error());
  if (snap->ranges.empty()) return fail("no prefixes");
  // Anyone who could write this file could otherwise widen what the edge sets allow.
  if (auto st = check_allow_width(snap->ranges); !st) return fail(st.error());
  StoredRanges s;
  s.ranges = std::move(snap->ranges);
  s.source = std::move(snap->source);
  if (snap->fetch) {
    s.etag = std::move(snap->fetch->etag);
    s.etags = std::move(snap->fetch->etags);
    s.fetched_at = snap->fetch->fetched_at;
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
  // Streamed into the file: a 100k-prefix set is never held whole as text.
  RangeSnapshot snap;
  snap.ranges = s.ranges;
  snap.source = s.source;
  snap.fetch = RangeSnapshot::Fetch{s.etag, s.etags, s.fetched_at};
  return write_range_snapshot(file(), snap, 0644);
}

}  // namespace og::ranges
