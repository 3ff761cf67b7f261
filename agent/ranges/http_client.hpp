// HTTP GET seam: the refresher talks to this interface, tests mock it
// (tests/doubles/mock_http_client.hpp). The real transfer, fetch::CurlHttpClient
// (agent/fetch/curl_http_client.hpp: TLS verification on, https only, timeouts, size cap, proxy
// env respected), runs only inside originguard-fetch, the unprivileged helper; the agent reaches
// it through fetch::SubprocessHttpClient (agent/fetch/subprocess.hpp, docs/SECURITY.md).
// HttpOptions are what every implementation is built from.
#pragma once

#include <atomic>
#include <string>

#include "originguard/duration.hpp"
#include "originguard/result.hpp"

namespace og::ranges {

struct HttpResponse {
  long status = 0;
  std::string content_type;
  std::string etag;  // ETag header of the final response, verbatim (quotes included)
  std::string body;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // `if_none_match` empty = unconditional. Transport failures, a body over the size cap and
  // timeouts are errors; any HTTP status is a response.
  virtual Result<HttpResponse> get(const std::string& url, const std::string& if_none_match) = 0;
};

struct HttpOptions {
  Seconds connect_timeout{10};
  Seconds total_timeout{30};
  std::size_t max_body_bytes = 1 << 20;
  std::string ca_file;                       // "" = system trust store
  const std::atomic<bool>* abort = nullptr;  // set -> transfer aborted (agent shutdown)
  // The CA bundle's content, used instead of ca_file when set: the fetch helper gets it on
  // stdin from the agent, which read ca_file as root, and so needs no file access.
  std::string ca_pem{};
};

}  // namespace og::ranges
