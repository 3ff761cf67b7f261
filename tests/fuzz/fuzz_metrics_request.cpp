// classify_http_request on arbitrary bytes (what any peer of [metrics] listen may send): never
// crashes, answers only a complete request, and serves the metrics only to GET or HEAD of
// /metrics over HTTP/1.x.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "metrics_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr std::size_t kMax = 4096;
  const auto ask = og::classify_http_request(in, kMax);
  const bool complete = in.find("\r\n\r\n") != std::string_view::npos || in.find("\n\n") != std::string_view::npos;
  if (ask == og::HttpAsk::need_more) FUZZ_CHECK(!complete && in.size() < kMax);
  if (ask == og::HttpAsk::too_large) FUZZ_CHECK(!complete && in.size() >= kMax);
  if (ask == og::HttpAsk::metrics || ask == og::HttpAsk::metrics_head) {
    FUZZ_CHECK(in.starts_with(ask == og::HttpAsk::metrics ? "GET /metrics" : "HEAD /metrics"));
    const auto line = in.substr(0, in.find('\n'));
    FUZZ_CHECK(line.find(" HTTP/1.1") != std::string_view::npos || line.find(" HTTP/1.0") != std::string_view::npos);
  }
  // A request cut before the end of its header is never answered (but when too large).
  if (complete) {
    const auto cut = in.substr(0, std::min(in.find("\r\n\r\n"), in.find("\n\n")));
    FUZZ_CHECK(og::classify_http_request(cut, kMax) ==
               (cut.size() >= kMax ? og::HttpAsk::too_large : og::HttpAsk::need_more));
  }
  return 0;
}
