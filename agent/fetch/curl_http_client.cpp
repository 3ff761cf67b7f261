#include "fetch/curl_http_client.hpp"

#include "fetch/curl_transfer.hpp"

namespace og::fetch {

Result<ranges::HttpResponse> CurlHttpClient::get(const std::string& url, const std::string& if_none_match) {
  std::string etag;
  CurlTransfer t(opts_, [&etag](std::string_view line) {
    if (line.starts_with("HTTP/")) etag.clear();  // a new response (after a redirect)
    auto v = header_value(line, "etag:");
    if (!v) return;
    // ETags are ASCII in practice; anything else is dropped (the next request is then
    // unconditional) rather than carried into the state file and status JSON.
    bool printable = !v->empty() && v->size() <= 256;
    for (char ch : *v) printable = printable && ch > 0x20 && ch < 0x7f;
    etag = printable ? std::string(*v) : std::string();
  });
  t.add_header("Accept: application/json, text/plain;q=0.9");
  if (!if_none_match.empty()) t.add_header("If-None-Match: " + if_none_match);
  if (CURL* c = t.handle()) {
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  }
  auto r = t.perform("body exceeds " + std::to_string(opts_.max_body_bytes) + " bytes (max_body_bytes)");
  if (!r) return fail(r.error());
  return ranges::HttpResponse{r->status, std::move(r->content_type), std::move(etag), std::move(r->body)};
}

}  // namespace og::fetch
