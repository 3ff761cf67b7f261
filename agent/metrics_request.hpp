// What a client of the metrics endpoint asks for (pure: unit-tested and fuzzed apart from the
// server in metrics_server.hpp).
#pragma once

#include <cstddef>
#include <string_view>

namespace og {

// What the bytes a client has sent so far ask for. Nothing is decided before the end of the
// request's header (so no answer races a request still being sent); then the request line must
// be `GET|HEAD /metrics[?...] HTTP/1.0|1.1`. Header fields are bounded by `max_bytes` and
// otherwise ignored.
enum class HttpAsk { need_more, metrics, metrics_head, bad_request, not_found, bad_method, too_large };
[[nodiscard]] HttpAsk classify_http_request(std::string_view received, std::size_t max_bytes);

}  // namespace og
