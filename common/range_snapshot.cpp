#include "originguard/range_snapshot.hpp"

#include <nlohmann/json.hpp>

#include "originguard/atomic_file.hpp"

namespace og {

namespace {

// A JSON string as nlohmann writes it; replace: an invalid UTF-8 byte in a string (an ETag
// from the network) must not throw.
std::string quoted(const std::string& v) {
  return nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Collects output into pieces of about kPiece bytes for the sink.
class Pieces {
 public:
  explicit Pieces(const std::function<void(std::string_view)>& sink) : sink_(sink) { buf_.reserve(kPiece + 512); }
  Pieces(const Pieces&) = delete;
  Pieces& operator=(const Pieces&) = delete;
  ~Pieces() = default;
  void put(std::string_view s) {
    buf_ += s;
    if (buf_.size() >= kPiece) flush();
  }
  void flush() {
    if (!buf_.empty()) sink_(buf_);
    buf_.clear();
  }

 private:
  static constexpr std::size_t kPiece = std::size_t{64} * 1024;
  const std::function<void(std::string_view)>& sink_;
  std::string buf_;
};

}  // namespace

// The bytes nlohmann's dump(2) gave for this object (keys sorted, two-space indent) when the
// snapshot was built as a JSON document: files on disk and their readers see no change
// (tests/unit/test_range_snapshot.cpp holds those bytes).
void encode_range_snapshot(const RangeSnapshot& s, const std::function<void(std::string_view)>& sink) {
  Pieces out(sink);
  out.put("{\n");
  auto key = [&](std::string_view k) {
    out.put("  \"");
    out.put(k);
    out.put("\": ");
  };
  if (s.fetch) {
    key("etag");
    out.put(quoted(s.fetch->etag));
    out.put(",\n");
    key("etags");
    if (s.fetch->etags.empty()) {
      out.put("{}");
    } else {
      out.put("{\n");
      bool first = true;
      for (const auto& [url, etag] : s.fetch->etags) {
        out.put(first ? "    " : ",\n    ");
        first = false;
        out.put(quoted(url));
        out.put(": ");
        out.put(quoted(etag));
      }
      out.put("\n  }");
    }
    out.put(",\n");
    key("fetched_at");
    out.put(s.fetch->fetched_at
                ? std::to_string(
                      std::chrono::duration_cast<std::chrono::seconds>(s.fetch->fetched_at->time_since_epoch()).count())
                : std::string("null"));
    out.put(",\n");
  }
  if (s.generated_at) {
    key("generated_at");
    out.put(quoted(*s.generated_at));
    out.put(",\n");
  }
  for (const Family f : {Family::v4, Family::v6}) {
    key(f == Family::v4 ? "ipv4" : "ipv6");
    const auto& list = s.ranges.of(f);
    if (list.empty()) {
      out.put("[]");
    } else {
      out.put("[\n");
      bool first = true;
      for (const auto& p : list) {
        // A prefix's text is digits, dots, colons and a slash: nothing to escape.
        out.put(first ? "    \"" : ",\n    \"");
        first = false;
        out.put(p.to_string());
        out.put("\"");
      }
      out.put("\n  ]");
    }
    out.put(",\n");
  }
  key("source");
  out.put(quoted(s.source));
  out.put(",\n");
  key("version");
  out.put("1\n}\n");
  out.flush();
}

std::string encode_range_snapshot(const RangeSnapshot& s) {
  std::string text;
  encode_range_snapshot(s, [&](std::string_view piece) { text += piece; });
  return text;
}

Status write_range_snapshot(const std::filesystem::path& target, const RangeSnapshot& s, mode_t mode) {
  auto w = AtomicFileWriter::create(target, mode);
  if (!w) return fail(w.error());
  Status written;
  encode_range_snapshot(s, [&](std::string_view piece) {
    if (written) written = w->write(piece);
  });
  if (!written) return written;
  return w->commit();
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
