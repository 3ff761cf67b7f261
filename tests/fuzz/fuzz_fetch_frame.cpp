// The fetch helper's response frame as the agent reads it (agent/fetch/frame.cpp): the helper
// parses network input, so its output is untrusted. Input: byte 0 picks the max_body cap, the
// rest is the frame.
//
// Oracles: on garbage, never a crash, and an accepted body is never over the cap nor are the
// header fields over their limits or non-printable; an accepted frame re-encodes to exactly the
// input (the frame is canonical only up to the head's JSON spelling, so the check is on the
// decoded values: encode, decode again, same values); and a frame built from fuzz-chosen
// values by the encoder always decodes to those values.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fetch/frame.hpp"
#include "fuzz_check.hpp"

namespace {

constexpr std::size_t kCaps[] = {0, 1, 16, 1024, 65536, 1 << 20};

bool printable(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c >= 0x7f) return false;
  return true;
}

void same(const og::fetch::FetchOutcome& a, const og::fetch::FetchOutcome& b) {
  FUZZ_CHECK(a.ok == b.ok);
  if (!a.ok) {
    FUZZ_CHECK(a.error == b.error);
    return;
  }
  FUZZ_CHECK(a.response.status == b.response.status);
  FUZZ_CHECK(a.response.content_type == b.response.content_type);
  FUZZ_CHECK(a.response.etag == b.response.etag);
  FUZZ_CHECK(a.response.retry_after == b.response.retry_after);
  FUZZ_CHECK(a.response.body == b.response.body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t cap = kCaps[data[0] % (sizeof kCaps / sizeof kCaps[0])];
  std::string_view frame(reinterpret_cast<const char*>(data + 1), size - 1);

  auto r = og::fetch::decode_response(frame, cap);
  if (r) {
    FUZZ_CHECK(frame.size() <= og::fetch::max_frame_bytes(cap));
    if (r->ok) {
      FUZZ_CHECK(r->response.body.size() <= cap);
      FUZZ_CHECK(r->response.status >= 100 && r->response.status <= 999);
      FUZZ_CHECK(r->response.etag.size() <= 256 && printable(r->response.etag));
      FUZZ_CHECK(r->response.content_type.size() <= 256 && printable(r->response.content_type));
      FUZZ_CHECK(r->response.retry_after.size() <= 64 && printable(r->response.retry_after));
    } else {
      FUZZ_CHECK(!r->error.empty() && printable(r->error));
    }
    // Round trip of what the encoder writes for the decoded values.
    auto again = og::fetch::decode_response(og::fetch::encode_response(*r), cap);
    FUZZ_CHECK(again.has_value());
    same(*r, *again);
  }

  // The encoder's frame for values taken from the input (split in four at the first bytes)
  // always decodes to them when they are within the limits.
  og::fetch::FetchOutcome o;
  o.ok = true;
  o.response.status = 100 + static_cast<long>(data[0]);
  std::string_view rest = frame;
  auto take = [&](std::size_t max) {
    std::size_t n = rest.empty() ? 0 : static_cast<unsigned char>(rest.front()) % (max + 1);
    if (!rest.empty()) rest.remove_prefix(1);
    n = std::min(n, rest.size());
    std::string s(rest.substr(0, n));
    rest.remove_prefix(n);
    for (char& c : s)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    return s;
  };
  o.response.content_type = take(64);
  o.response.etag = take(64);
  o.response.retry_after = take(64);
  o.response.body = std::string(rest);
  auto enc = og::fetch::decode_response(og::fetch::encode_response(o), o.response.body.size());
  FUZZ_CHECK(enc.has_value());
  same(o, *enc);
  if (!o.response.body.empty())
    FUZZ_CHECK(!og::fetch::decode_response(og::fetch::encode_response(o), o.response.body.size() - 1).has_value());
  return 0;
}
