#include "fetch/curl_transfer.hpp"

#include <openssl/crypto.h>

#include <cctype>

namespace og::fetch {

std::optional<std::string_view> header_value(std::string_view line, std::string_view key) {
  if (line.size() <= key.size()) return std::nullopt;
  for (std::size_t i = 0; i < key.size(); ++i)
    if (static_cast<char>(std::tolower(static_cast<unsigned char>(line[i]))) != key[i]) return std::nullopt;
  auto v = line.substr(key.size());
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
  return v;
}

void CurlTransfer::SlistDeleter::operator()(curl_slist* l) const {
  for (curl_slist* p = l; p; p = p->next)
    if (p->data) OPENSSL_cleanse(p->data, std::char_traits<char>::length(p->data));
  curl_slist_free_all(l);
}

CurlTransfer::CurlTransfer(const ranges::HttpOptions& opts, OnHeader on_header)
    : on_header_(std::move(on_header)), cap_(opts.max_body_bytes), abort_(opts.abort) {
  curl_.reset(curl_easy_init());
  CURL* c = curl_.get();
  if (!c) return;
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!opts.ca_pem.empty()) {
    curl_blob ca{const_cast<char*>(opts.ca_pem.data()), opts.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
  } else if (!opts.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, opts.ca_file.c_str());
  }
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(opts.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(opts.total_timeout.count()));
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(opts.max_body_bytes));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // the size cap applies after decoding
  curl_easy_setopt(c, CURLOPT_USERAGENT, "originguard-agent/" OG_VERSION);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header_line);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, this);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, this);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf_);
}

void CurlTransfer::add_header(const std::string& h) {
  curl_slist* next = curl_slist_append(headers_.get(), h.c_str());
  if (!next) {
    headers_failed_ = true;
    return;
  }
  (void)headers_.release();
  headers_.reset(next);
}

Result<CurlReply> CurlTransfer::perform(std::string too_big) {
  CURL* c = curl_.get();
  if (!c) return fail("curl_easy_init failed");
  if (headers_failed_) return fail("out of memory building request headers");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers_.get());
  CURLcode rc = curl_easy_perform(c);
  if (too_big_ || rc == CURLE_FILESIZE_EXCEEDED) return fail(std::move(too_big));
  if (rc == CURLE_ABORTED_BY_CALLBACK) return fail("transfer aborted (agent stopping)");
  if (rc != CURLE_OK) {
    std::string why = errbuf_[0] ? errbuf_ : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) why = "timed out: " + why;
    return fail(why);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply_.status);
  char* ct = nullptr;
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
  if (ct) reply_.content_type = ct;
  return std::move(reply_);
}

std::size_t CurlTransfer::on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<CurlTransfer*>(user);
  std::size_t len = size * n;
  if (t->reply_.body.size() + len > t->cap_) {
    t->too_big_ = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  t->reply_.body.append(data, len);
  return len;
}

std::size_t CurlTransfer::on_header_line(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<CurlTransfer*>(user);
  if (t->on_header_) t->on_header_(std::string_view(data, size * n));
  return size * n;
}

int CurlTransfer::on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<CurlTransfer*>(user);
  return (t->abort_ && t->abort_->load()) ? 1 : 0;
}

}  // namespace og::fetch
