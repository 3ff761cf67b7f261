#include "aop/http.hpp"

#include <curl/curl.h>
#include <openssl/crypto.h>

#include <cctype>
#include <memory>

#include "originguard/handle.hpp"

namespace og::aop {
namespace {

using CurlDeleter = FreeWith<curl_easy_cleanup>;
// The Authorization header is in this list: wiped before it is freed.
struct SlistDeleter {
  void operator()(curl_slist* l) const {
    for (curl_slist* p = l; p; p = p->next)
      if (p->data) OPENSSL_cleanse(p->data, std::char_traits<char>::length(p->data));
    curl_slist_free_all(l);
  }
};

struct Transfer {
  ApiResponse resp;
  std::size_t cap = 0;
  bool too_big = false;
  const std::atomic<bool>* abort = nullptr;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t len = size * n;
  if (t->resp.body.size() + len > t->cap) {
    t->too_big = true;
    return 0;
  }
  t->resp.body.append(data, len);
  return len;
}

bool header_is(std::string_view h, std::string_view key) {
  if (h.size() <= key.size()) return false;
  for (std::size_t i = 0; i < key.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(h[i])) != key[i]) return false;
  return true;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view h(data, size * n);
  if (h.starts_with("HTTP/")) t->resp.retry_after.clear();
  constexpr std::string_view key = "retry-after:";
  if (header_is(h, key)) {
    auto v = h.substr(key.size());
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
    t->resp.retry_after = std::string(v.substr(0, 64));
  }
  return size * n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return (t->abort && t->abort->load()) ? 1 : 0;
}

// A header value must not be able to end the header (CR/LF) or smuggle control bytes.
bool header_safe(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  return true;
}

}  // namespace

Result<ApiResponse> CurlApiHttp::send(const ApiRequest& req) {
  if (req.method != "GET" && req.method != "POST" && req.method != "PUT" && req.method != "DELETE")
    return fail("unsupported HTTP method " + quote_untrusted(req.method));
  if (!req.url.starts_with("https://")) return fail("refusing a non-https API URL");
  if (!header_safe(req.bearer_token)) return fail("the API token has characters a header cannot carry");
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return fail("curl_easy_init failed");
  CURL* c = curl.get();
  Transfer t;
  t.cap = opts_.max_body_bytes;
  t.abort = opts_.abort;
  char errbuf[CURL_ERROR_SIZE] = {};

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add_header = [&](const std::string& h) { headers.reset(curl_slist_append(headers.release(), h.c_str())); };
  add_header("Accept: application/json");
  if (!req.json_body.empty()) add_header("Content-Type: application/json");
  {
    std::string auth = "Authorization: Bearer " + req.bearer_token;
    add_header(auth);
    OPENSSL_cleanse(auth.data(), auth.size());
  }
  if (!headers) return fail("out of memory building request headers");

  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
  // No redirects: the API never redirects, and following one would carry the token elsewhere.
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
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
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "originguard-agent/" OG_VERSION);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  if (req.method == "POST" || req.method == "PUT") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.json_body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.json_body.size()));
  }
  if (req.method != "GET" && req.method != "POST") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
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
    return fail("response body exceeds " + std::to_string(opts_.max_body_bytes) + " bytes");
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

}  // namespace og::aop
