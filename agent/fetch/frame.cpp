#include "fetch/frame.hpp"

#include <nlohmann/json.hpp>

namespace og::fetch {
namespace {

using nlohmann::json;

// Printable ASCII of at most `max` bytes: what a header value taken into state files, logs and
// status JSON may be.
bool printable(std::string_view s, std::size_t max) {
  if (s.size() > max) return false;
  for (unsigned char c : s)
    if (c < 0x20 || c >= 0x7f) return false;
  return true;
}

Result<std::string> get_string(const json& j, const char* key, std::size_t max, bool printable_only) {
  auto it = j.find(key);
  if (it == j.end()) return std::string();
  if (!it->is_string()) return fail(std::string("field ") + key + " is not a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max) return fail(std::string("field ") + key + " is too long");
  if (printable_only && !printable(s, max)) return fail(std::string("field ") + key + " has non-printable bytes");
  return s;
}

Result<std::uint64_t> get_uint(const json& j, const char* key, std::uint64_t max) {
  auto it = j.find(key);
  if (it == j.end()) return fail(std::string("field ") + key + " is missing");
  if (!it->is_number_unsigned()) return fail(std::string("field ") + key + " is not an unsigned integer");
  auto v = it->get<std::uint64_t>();
  if (v > max) return fail(std::string("field ") + key + " is out of range");
  return v;
}

}  // namespace

std::string encode_request(const FetchRequest& req) {
  json j{{"kind", req.kind},
         {"method", req.method},
         {"url", req.url},
         {"if_none_match", req.if_none_match},
         {"bearer_token", req.bearer_token},
         {"json_body", req.json_body},
         {"connect_timeout_s", static_cast<std::uint64_t>(std::max(0L, req.connect_timeout_s))},
         {"total_timeout_s", static_cast<std::uint64_t>(std::max(0L, req.total_timeout_s))},
         {"max_body_bytes", static_cast<std::uint64_t>(req.max_body_bytes)},
         {"ca_pem", req.ca_pem}};
  // Invalid UTF-8 (a body or token nobody validated) is replaced, not thrown on.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<FetchRequest> decode_request(std::string_view text) {
  if (text.size() > kMaxRequestBytes) return fail("request too large");
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("request is not a JSON object");
  FetchRequest r;
  auto str = [&](const char* key, std::size_t max, bool pr, std::string& out) -> Status {
    auto v = get_string(j, key, max, pr);
    if (!v) return fail(v.error());
    out = std::move(*v);
    return {};
  };
  if (auto st = str("kind", 8, true, r.kind); !st) return fail(st.error());
  if (r.kind != "get" && r.kind != "api") return fail("unknown request kind");
  if (auto st = str("method", 8, true, r.method); !st) return fail(st.error());
  if (auto st = str("url", 8192, true, r.url); !st) return fail(st.error());
  if (auto st = str("if_none_match", 256, true, r.if_none_match); !st) return fail(st.error());
  if (auto st = str("bearer_token", 4096, true, r.bearer_token); !st) return fail(st.error());
  if (auto st = str("json_body", kMaxRequestBytes, false, r.json_body); !st) return fail(st.error());
  if (auto st = str("ca_pem", kMaxCaBytes, false, r.ca_pem); !st) return fail(st.error());
  auto ct = get_uint(j, "connect_timeout_s", 3600);
  auto tt = get_uint(j, "total_timeout_s", 3600);
  auto mb = get_uint(j, "max_body_bytes", std::uint64_t{1} << 32);
  if (!ct) return fail(ct.error());
  if (!tt) return fail(tt.error());
  if (!mb) return fail(mb.error());
  r.connect_timeout_s = static_cast<long>(*ct);
  r.total_timeout_s = static_cast<long>(*tt);
  r.max_body_bytes = static_cast<std::size_t>(*mb);
  return r;
}

std::string encode_response(const FetchOutcome& out) {
  json head;
  if (out.ok) {
    head = json{{"status", out.response.status},
                {"content_type", out.response.content_type},
                {"etag", out.response.etag},
                {"retry_after", out.response.retry_after},
                {"body_len", static_cast<std::uint64_t>(out.response.body.size())}};
  } else {
    head = json{{"error", out.error}, {"body_len", 0}};
  }
  std::string h = head.dump(-1, ' ', true, json::error_handler_t::replace);
  std::string frame;
  frame.reserve(4 + h.size() + (out.ok ? out.response.body.size() : 0));
  auto n = static_cast<std::uint32_t>(h.size());
  frame += static_cast<char>((n >> 24) & 0xff);
  frame += static_cast<char>((n >> 16) & 0xff);
  frame += static_cast<char>((n >> 8) & 0xff);
  frame += static_cast<char>(n & 0xff);
  frame += h;
  if (out.ok) frame += out.response.body;
  return frame;
}

namespace {

// Reads the head of `frame` (not its body) into `out`; the head's length in `head_len`.
Result<FetchOutcome> decode_head(std::string_view frame, std::size_t max_body, std::size_t& head_len);

}  // namespace

std::optional<std::size_t> response_frame_size(std::string_view partial, std::size_t max_body) {
  if (partial.size() < 4) return std::nullopt;
  auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(partial[i])); };
  const std::size_t head_len = (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
  if (head_len == 0 || head_len > kMaxHeadBytes || partial.size() - 4 < head_len) return std::nullopt;
  json head = json::parse(partial.substr(4, head_len), nullptr, false);
  if (head.is_discarded() || !head.is_object()) return std::nullopt;
  auto body_len = get_uint(head, "body_len", max_body);
  if (!body_len) return std::nullopt;
  return 4 + head_len + static_cast<std::size_t>(*body_len);
}

Result<FetchOutcome> decode_response(std::string&& frame, std::size_t max_body) {
  std::size_t head_len = 0;
  auto out = decode_head(frame, max_body, head_len);
  if (!out) return out;
  if (out->ok) {
    // In place: the body keeps the frame's buffer, moved down over the head.
    frame.erase(0, 4 + head_len);
    out->response.body = std::move(frame);
  }
  return out;
}

Result<FetchOutcome> decode_response(std::string_view frame, std::size_t max_body) {
  std::size_t head_len = 0;
  auto out = decode_head(frame, max_body, head_len);
  if (out && out->ok) out->response.body.assign(frame.substr(4 + head_len));
  return out;
}

namespace {

Result<FetchOutcome> decode_head(std::string_view frame, std::size_t max_body, std::size_t& head_len_out) {
  if (frame.size() < 4) return fail("fetch helper: truncated frame (no head length)");
  auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(frame[i])); };
  const std::size_t head_len = (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
  if (head_len == 0 || head_len > kMaxHeadBytes) return fail("fetch helper: frame head too large");
  if (frame.size() - 4 < head_len) return fail("fetch helper: truncated frame (head)");
  json head = json::parse(frame.substr(4, head_len), nullptr, false);
  if (head.is_discarded() || !head.is_object()) return fail("fetch helper: frame head is not a JSON object");
  auto body_len = get_uint(head, "body_len", max_body);
  if (!body_len) return fail("fetch helper: " + body_len.error().message);
  const std::size_t rest = frame.size() - 4 - head_len;
  if (rest < *body_len) return fail("fetch helper: truncated frame (body)");
  if (rest > *body_len) return fail("fetch helper: trailing bytes after the frame");

  FetchOutcome out;
  if (head.contains("error")) {
    auto e = get_string(head, "error", 1024, false);
    if (!e) return fail("fetch helper: " + e.error().message);
    if (*body_len != 0) return fail("fetch helper: an error frame with a body");
    // The helper's own words (curl's error text): printable ASCII only, as they reach logs
    // and status JSON.
    for (char& c : *e)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    out.error = e->empty() ? "fetch helper failed without a reason" : std::move(*e);
    return out;
  }
  auto status = get_uint(head, "status", 999);
  if (!status) return fail("fetch helper: " + status.error().message);
  if (*status < 100) return fail("fetch helper: HTTP status out of range");
  auto ct = get_string(head, "content_type", 256, true);
  auto etag = get_string(head, "etag", 256, true);
  auto ra = get_string(head, "retry_after", 64, true);
  if (!ct) return fail("fetch helper: " + ct.error().message);
  if (!etag) return fail("fetch helper: " + etag.error().message);
  if (!ra) return fail("fetch helper: " + ra.error().message);
  out.ok = true;
  out.response.status = static_cast<long>(*status);
  out.response.content_type = std::move(*ct);
  out.response.etag = std::move(*etag);
  out.response.retry_after = std::move(*ra);
  head_len_out = head_len;
  return out;
}

}  // namespace

}  // namespace og::fetch
