// The HTTP seam of the Cloudflare API client: JSON requests with a bearer token. CfApi talks
// to ApiHttp, unit tests mock it (tests/doubles/mock_api_http.hpp). The real transfer,
// fetch::CurlApiHttp (agent/fetch/curl_api_http.hpp), runs only inside originguard-fetch, the
// unprivileged helper; the agent uses fetch::SubprocessApiHttp.
//
// The token is secret: it goes into the Authorization header and nowhere else (not into
// errors, logs or the dry-run plan). Implementations must keep it so.
#pragma once

#include <string>

#include "originguard/result.hpp"

namespace og::aop {

struct ApiRequest {
  std::string method;  // GET, POST, PUT, DELETE
  std::string url;
  std::string bearer_token;  // secret
  std::string json_body;     // "" = no body
};

struct ApiResponse {
  long status = 0;
  std::string content_type;
  std::string retry_after;  // Retry-After header of the response, verbatim ("" = absent)
  std::string body;
};

class ApiHttp {
 public:
  virtual ~ApiHttp() = default;
  // Transport failures (refused, TLS, timeout, size cap, aborted) are errors; any HTTP status
  // is a response.
  virtual Result<ApiResponse> send(const ApiRequest& req) = 0;
};

}  // namespace og::aop
