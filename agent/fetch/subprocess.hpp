// The agent's HTTP clients: each request runs in originguard-fetch, a short-lived helper that
// drops root before it touches the network (docs/SECURITY.md, "Privilege separation"), so the
// agent links no libcurl and initialises no TLS library at idle. The helper is untrusted: a
// crash, a timeout, a bad or truncated frame, a nonzero exit or output over the cap is an
// error, never a partial body taken as good.
#pragma once

#include <string>

#include "aop/http.hpp"
#include "fetch/frame.hpp"
#include "ranges/http_client.hpp"

namespace og::fetch {

// Where the agent finds the helper: next to its own executable (the build tree), then
// <exe dir>/../libexec/originguard/ (an installed tree under any prefix: /usr/sbin ->
// /usr/libexec), then the libexec path fixed at build time (OG_FETCH_HELPER_PATH).
[[nodiscard]] std::string default_helper_path();

struct SpawnOptions {
  std::string helper;             // "" = default_helper_path()
  std::chrono::seconds grace{5};  // beyond total_timeout before the helper is killed
};

// The shared core: runs the helper for one request. `ca_file` (from opts) is read here, by the
// agent, and sent as content. Errors: the helper's own (transport, TLS, timeout, size cap) and
// every failure of the helper itself.
[[nodiscard]] Result<FetchResponse> run_helper(FetchRequest req, const ranges::HttpOptions& opts,
                                               const SpawnOptions& spawn);

class SubprocessHttpClient final : public ranges::HttpClient {
 public:
  explicit SubprocessHttpClient(ranges::HttpOptions opts, SpawnOptions spawn = {})
      : opts_(std::move(opts)), spawn_(std::move(spawn)) {}
  Result<ranges::HttpResponse> get(const std::string& url, const std::string& if_none_match) override;

 private:
  ranges::HttpOptions opts_;
  SpawnOptions spawn_;
};

class SubprocessApiHttp final : public aop::ApiHttp {
 public:
  explicit SubprocessApiHttp(ranges::HttpOptions opts, SpawnOptions spawn = {})
      : opts_(std::move(opts)), spawn_(std::move(spawn)) {}
  Result<aop::ApiResponse> send(const aop::ApiRequest& req) override;

 private:
  ranges::HttpOptions opts_;
  SpawnOptions spawn_;
};

}  // namespace og::fetch
