// What the fetch helper's two HTTPS clients (range GET, Cloudflare API) share: one libcurl easy
// handle set up the same way (https only, TLS verified, CA from HttpOptions, timeouts, the body
// size cap, abort on agent shutdown), the body read under the cap, and curl's failures mapped to
// errors. Each client adds its own headers, method and redirect policy.
#pragma once

#include <curl/curl.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "originguard/result.hpp"
#include "ranges/http_client.hpp"

namespace og::fetch {

struct CurlReply {
  long status = 0;
  std::string content_type;
  std::string body;
};

// `line` is one raw header line ("ETag: \"x\"\r\n"); the value after "key:" (key lower case)
// with surrounding blanks and the line end removed, when the line is that header.
[[nodiscard]] std::optional<std::string_view> header_value(std::string_view line, std::string_view key);

class CurlTransfer {
 public:
  // Called for every header line, the status lines of redirects included.
  using OnHeader = std::function<void(std::string_view line)>;
  CurlTransfer(const ranges::HttpOptions& opts, OnHeader on_header);
  CurlTransfer(const CurlTransfer&) = delete;  // curl holds `this` for its callbacks
  CurlTransfer& operator=(const CurlTransfer&) = delete;

  // Null when curl_easy_init failed; perform() then fails too.
  [[nodiscard]] CURL* handle() const { return curl_.get(); }
  // The list may hold a secret (Authorization): it is wiped before it is freed.
  void add_header(const std::string& h);
  // Runs the transfer; `too_big` is the error when the body exceeds max_body_bytes.
  [[nodiscard]] Result<CurlReply> perform(std::string too_big);

 private:
  struct SlistDeleter {
    void operator()(curl_slist* l) const;
  };
  static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user);
  static std::size_t on_header_line(char* data, std::size_t size, std::size_t n, void* user);
  static int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t);

  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl_{nullptr, &curl_easy_cleanup};
  std::unique_ptr<curl_slist, SlistDeleter> headers_;
  bool headers_failed_ = false;
  OnHeader on_header_;
  CurlReply reply_;
  std::size_t cap_ = 0;
  bool too_big_ = false;
  const std::atomic<bool>* abort_ = nullptr;
  char errbuf_[CURL_ERROR_SIZE] = {};
};

}  // namespace og::fetch
