// The real range GET: https only (redirects too, at most 5), TLS verified, timeouts, the size
// cap, If-None-Match, the ETag kept. It runs only inside originguard-fetch, the unprivileged
// helper; the agent reaches it through fetch::SubprocessHttpClient (docs/SECURITY.md).
#pragma once

#include "ranges/http_client.hpp"

namespace og::fetch {

class CurlHttpClient final : public ranges::HttpClient {
 public:
  explicit CurlHttpClient(ranges::HttpOptions opts) : opts_(std::move(opts)) {}
  Result<ranges::HttpResponse> get(const std::string& url, const std::string& if_none_match) override;

 private:
  ranges::HttpOptions opts_;
};

}  // namespace og::fetch
