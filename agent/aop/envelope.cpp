#include "aop/envelope.hpp"

#include <charconv>

#include "originguard/result.hpp"

namespace og::aop {

const char* to_string(ApiErrorKind k) {
  switch (k) {
    case ApiErrorKind::auth:
      return "auth";
    case ApiErrorKind::transient:
      return "transient";
    case ApiErrorKind::rejected:
      return "rejected";
    case ApiErrorKind::bad_response:
      return "bad_response";
  }
  return "unknown";
}

Seconds parse_retry_after(std::string_view v) {
  if (v.empty() || v.size() > 12) return Seconds(0);
  long long n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || p != v.data() + v.size() || n < 0) return Seconds(0);
  return std::min(Seconds(n), kMaxRetryAfter);
}

namespace {

// Cloudflare's codes for a token that is wrong, expired or lacks the permission.
bool auth_code(long c) { return c == 10000 || c == 10001 || c == 9109 || c == 9106 || c == 9103 || c == 6003; }

ApiError make(ApiErrorKind k, long status, std::string msg) {
  ApiError e;
  e.kind = k;
  e.http_status = status;
  e.message = std::move(msg);
  return e;
}

}  // namespace

ApiResult<nlohmann::json> parse_envelope(long status, std::string_view body, std::string_view retry_after) {
  std::string where = "HTTP " + std::to_string(status);
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  bool envelope = doc.is_object() && doc.contains("success") && doc["success"].is_boolean() && doc.contains("errors") &&
                  doc["errors"].is_array();

  // errors[]: each {code: integer, message: string}; anything else makes the envelope bad.
  std::vector<long> codes;
  std::string detail;
  if (envelope) {
    for (const auto& e : doc["errors"]) {
      if (!e.is_object() || !e.contains("code") || !e["code"].is_number_integer() || !e.contains("message") ||
          !e["message"].is_string()) {
        envelope = false;
        break;
      }
      long code = e["code"].get<long>();
      codes.push_back(code);
      if (codes.size() <= 3)
        detail += (detail.empty() ? "" : "; ") + std::to_string(code) + " " +
                  quote_untrusted(e["message"].get_ref<const std::string&>(), 160);
    }
  }

  if (status == 429) {
    ApiError e =
        make(ApiErrorKind::transient, status, where + ": rate limited" + (detail.empty() ? "" : ": " + detail));
    e.retry_after = parse_retry_after(retry_after);
    e.codes = std::move(codes);
    return e;
  }
  bool any_auth_code = false;
  for (long c : codes) any_auth_code = any_auth_code || auth_code(c);
  if (status == 401 || status == 403 || (envelope && any_auth_code)) {
    ApiError e = make(ApiErrorKind::auth, status,
                      where +
                          ": the API token was refused or lacks the permission (Zone > SSL and Certificates > "
                          "Edit)" +
                          (detail.empty() ? "" : ": " + detail));
    e.codes = std::move(codes);
    return e;
  }
  if (status >= 500 || status == 408) {
    ApiError e = make(ApiErrorKind::transient, status, where + (detail.empty() ? ": server error" : ": " + detail));
    e.codes = std::move(codes);
    return e;
  }
  if (!envelope) return make(ApiErrorKind::bad_response, status, where + ": not a Cloudflare API envelope");
  bool success = doc["success"].get<bool>();
  if (status >= 200 && status < 300 && success) {
    if (!codes.empty()) return make(ApiErrorKind::bad_response, status, where + ": success with errors");
    if (!doc.contains("result")) return make(ApiErrorKind::bad_response, status, where + ": no result");
    return std::move(doc["result"]);
  }
  if (success) return make(ApiErrorKind::bad_response, status, where + ": success:true on an error status");
  ApiError e = make(ApiErrorKind::rejected, status, where + ": " + (detail.empty() ? "success:false" : detail));
  e.codes = std::move(codes);
  return e;
}

}  // namespace og::aop
