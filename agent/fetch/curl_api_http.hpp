// The real Cloudflare API transfer: https only, TLS verified, no redirects (one would carry the
// token elsewhere), timeouts and size cap from ranges::HttpOptions, the token only in the
// Authorization header, which is wiped from memory after the transfer. It runs only inside
// originguard-fetch; the agent uses fetch::SubprocessApiHttp.
#pragma once

#include "aop/http.hpp"
#include "ranges/http_client.hpp"

namespace og::fetch {

class CurlApiHttp final : public aop::ApiHttp {
 public:
  explicit CurlApiHttp(ranges::HttpOptions opts) : opts_(std::move(opts)) {}
  Result<aop::ApiResponse> send(const aop::ApiRequest& req) override;

 private:
  ranges::HttpOptions opts_;
};

}  // namespace og::fetch
