// The wire format between the agent and originguard-fetch, its unprivileged fetch helper
// (docs/SECURITY.md, "Privilege separation"). One request per process:
//
//   agent -> helper (stdin):  one JSON object (encode_request), at most kMaxRequestBytes.
//   helper -> agent (stdout): a 4-byte big-endian head length, the head (a JSON object:
//                             status, content_type, etag, retry_after, body_len, or error),
//                             then exactly body_len bytes of body.
//
// The helper parses network input (HTTP, TLS, decompression), so its output is untrusted: the
// decoder bounds every size before it allocates, refuses anything but exactly one frame, and
// checks every field's type, length and characters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "originguard/result.hpp"

namespace og::fetch {

inline constexpr std::size_t kMaxHeadBytes = std::size_t{16} * 1024;
inline constexpr std::size_t kMaxRequestBytes = std::size_t{8} * 1024 * 1024;  // a CA bundle fits
inline constexpr std::size_t kMaxCaBytes = std::size_t{4} * 1024 * 1024;

struct FetchRequest {
  std::string kind;  // "get" (ranges::HttpClient) or "api" (aop::ApiHttp)
  std::string method = "GET";
  std::string url;
  std::string if_none_match;
  std::string bearer_token;  // secret: stdin only, never argv or the environment
  std::string json_body;
  long connect_timeout_s = 10;
  long total_timeout_s = 30;
  std::size_t max_body_bytes = 1 << 20;
  std::string ca_pem;  // the CA bundle's content ("" = the helper's default trust store)
};

struct FetchResponse {
  long status = 0;
  std::string content_type;
  std::string etag;
  std::string retry_after;
  std::string body;
};

// The helper's answer: a response, or the helper's error (transport, TLS, timeout, size cap).
struct FetchOutcome {
  bool ok = false;
  std::string error;  // when !ok
  FetchResponse response;
};

[[nodiscard]] std::string encode_request(const FetchRequest& req);
[[nodiscard]] Result<FetchRequest> decode_request(std::string_view text);

[[nodiscard]] std::string encode_response(const FetchOutcome& out);
// `max_body` is the request's max_body_bytes: a longer body is refused whatever the head says.
[[nodiscard]] Result<FetchOutcome> decode_response(std::string_view frame, std::size_t max_body);
// The same, taking the body out of `frame` instead of copying it (a range list can be
// megabytes).
[[nodiscard]] Result<FetchOutcome> decode_response(std::string&& frame, std::size_t max_body);

// The whole frame's size once its head has arrived (`partial` is what was read so far):
// lets the reader allocate the frame once instead of growing it. nullopt while the head is
// incomplete, or when it is not a well-formed head for `max_body` (decode_response says why).
[[nodiscard]] std::optional<std::size_t> response_frame_size(std::string_view partial, std::size_t max_body);

// The most bytes a well-formed frame for `max_body` can have (the reader's cap).
[[nodiscard]] constexpr std::size_t max_frame_bytes(std::size_t max_body) { return 4 + kMaxHeadBytes + max_body; }

}  // namespace og::fetch
