#include "fetch/curl_api_http.hpp"

#include <openssl/crypto.h>

#include "fetch/curl_transfer.hpp"

namespace og::fetch {
namespace {

// A header value must not be able to end the header (CR/LF) or smuggle control bytes.
bool header_safe(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  return true;
}

}  // namespace

Result<aop::ApiResponse> CurlApiHttp::send(const aop::ApiRequest& req) {
  if (req.method != "GET" && req.method != "POST" && req.method != "PUT" && req.method != "DELETE")
    return fail("unsupported HTTP method " + quote_untrusted(req.method));
  if (!req.url.starts_with("https://")) return fail("refusing a non-https API URL");
  if (!header_safe(req.bearer_token)) return fail("the API token has characters a header cannot carry");
  std::string retry_after;
  CurlTransfer t(opts_, [&retry_after](std::string_view line) {
    if (line.starts_with("HTTP/")) retry_after.clear();
    if (auto v = header_value(line, "retry-after:")) retry_after = std::string(v->substr(0, 64));
  });
  t.add_header("Accept: application/json");
  if (!req.json_body.empty()) t.add_header("Content-Type: application/json");
  {
    std::string auth = "Authorization: Bearer " + req.bearer_token;
    t.add_header(auth);
    OPENSSL_cleanse(auth.data(), auth.size());
  }
  if (CURL* c = t.handle()) {
    curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
    // No redirects: the API never redirects, and following one would carry the token elsewhere.
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    if (req.method == "POST" || req.method == "PUT") {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.json_body.c_str());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.json_body.size()));
    }
    if (req.method != "GET" && req.method != "POST") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  auto r = t.perform("response body exceeds " + std::to_string(opts_.max_body_bytes) + " bytes");
  if (!r) return fail(r.error());
  return aop::ApiResponse{r->status, std::move(r->content_type), std::move(retry_after), std::move(r->body)};
}

}  // namespace og::fetch
