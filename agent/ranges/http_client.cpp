#include "ranges/http_client.hpp"

#include <curl/curl.h>

#include <memory>

#include "originguard/handle.hpp"

namespace og::ranges {
namespace {

using CurlDeleter = FreeWith<curl_easy_cleanup>;
using SlistDeleter = FreeWith<curl_slist_free_all>;

struct Transfer {
  HttpResponse resp;
  std::size_t cap = 0;
  bool too_big = false;
  const std::atomic<bool>* abort = nullptr;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t len = size * n;
  if (t->resp.body.size() + len > t->cap) {
    t->too_big = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  t->resp.body.append(data, len);
  return len;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view h(data, size * n);
  if (h.starts_with("HTTP/")) t->resp.etag.clear();  // a new response (after a redirect)
  constexpr std::string_view key = "etag:";
  if (h.size() > key.size()) {
    bool match = true;
    for (std::size_t i = 0; i < key.size(); ++i)
      if (static_cast<char>(std::tolower(static_cast<unsigned char>(h[i]))) != key[i]) match = false;
    if (match) {
      auto v = h.substr(key.size());
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
      // ETags are ASCII in practice; anything else is dropped (the next request is then
      // unconditional) rather than carried into the state file and status JSON.
      bool printable = !v.empty() && v.size() <= 256;
      for (char ch : v) printable = printable && ch > 0x20 && ch < 0x7f;
      t->resp.etag = printable ? std::string(v) : std::string();
    }
  }
  return size * n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return (t->abort && t->abort->load()) ? 1 : 0;
}

}  // namespace

Result<HttpResponse> CurlHttpClient::get(const std::string& url, const std::string& if_none_match) {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return fail("curl_easy_init failed");
  CURL* c = curl.get();
  Transfer t;
  t.cap = opts_.max_body_bytes;
  t.abort = opts_.abort;
  char errbuf[CURL_ERROR_SIZE] = {};

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add_header = [&](const std::string& h) { headers.reset(curl_slist_append(headers.release(), h.c_str())); };
  add_header("Accept: application/json, text/plain;q=0.9");
  if (!if_none_match.empty()) add_header("If-None-Match: " + if_none_match);

  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!opts_.ca_pem.empty()) {
    curl_blob ca{const_cast<char*>(opts_.ca_pem.data()), opts_.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
  } else if (!opts_.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, opts_.ca_file.c_str());
  }
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(opts_.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(opts_.total_timeout.count()));
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(opts_.max_body_bytes));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // the size cap applies after decoding
  curl_easy_setopt(c, CURLOPT_USERAGENT, "originguard-agent/" OG_VERSION);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);

  CURLcode rc = curl_easy_perform(c);
  if (t.too_big || rc == CURLE_FILESIZE_EXCEEDED)
    return fail("body exceeds " + std::to_string(opts_.max_body_bytes) + " bytes (max_body_bytes)");
  if (rc == CURLE_ABORTED_BY_CALLBACK) return fail("transfer aborted (agent stopping)");
  if (rc != CURLE_OK) {
    std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) why = "timed out: " + why;
    return fail(why);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.resp.status);
  char* ct = nullptr;
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
  if (ct) t.resp.content_type = ct;
  return std::move(t.resp);
}

}  // namespace og::ranges
