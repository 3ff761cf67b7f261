// Cloudflare's response envelope {success, errors[{code, message}], messages, result},
// parsed strictly, and the typed error every API call returns. Everything in a response is
// untrusted: messages are quoted (quote_untrusted) before they reach an error string.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "originguard/duration.hpp"

namespace og::aop {

enum class ApiErrorKind {
  auth,          // 401/403 or an authentication/permission error code: the token is wrong or lacks a permission
  transient,     // transport failure, timeout, 429, 5xx: retried with backoff
  rejected,      // the API refused the request (4xx with an error envelope): retried, but it needs a look
  bad_response,  // not the envelope, or a result of the wrong shape: retried, reported
};
[[nodiscard]] const char* to_string(ApiErrorKind k);

struct ApiError {
  ApiErrorKind kind = ApiErrorKind::transient;
  std::string message;      // safe to log: no token, response text quoted
  long http_status = 0;     // 0 = no response (transport)
  Seconds retry_after{0};   // from a 429's Retry-After (0 = none)
  std::vector<long> codes;  // errors[].code, in order
  [[nodiscard]] ApiError context(std::string_view what) const {
    ApiError e = *this;
    e.message = std::string(what) + ": " + message;
    return e;
  }
};

// The Result shape (has_value, value, error) with an ApiError.
template <class T>
class [[nodiscard]] ApiResult {
 public:
  ApiResult(T v) : v_(std::in_place_index<0>, std::move(v)) {}         // NOLINT(google-explicit-constructor)
  ApiResult(ApiError e) : v_(std::in_place_index<1>, std::move(e)) {}  // NOLINT(google-explicit-constructor)
  [[nodiscard]] bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const ApiError& error() const& { return std::get<1>(v_); }

 private:
  std::variant<T, ApiError> v_;
};

struct Done {};  // the value of a call whose result is not needed

// Longest wait a Retry-After may impose; a larger value is clamped (a hostile or broken answer
// must not park the rotation for a year).
inline constexpr Seconds kMaxRetryAfter{3600};

// "120" -> 120 s (clamped to kMaxRetryAfter); anything else (HTTP-date, garbage) -> 0.
[[nodiscard]] Seconds parse_retry_after(std::string_view v);

// Classifies an HTTP response: the envelope's `result` when the call succeeded (HTTP 2xx and
// success == true, errors an array), else a typed error. `body` is capped by the transport.
[[nodiscard]] ApiResult<nlohmann::json> parse_envelope(long http_status, std::string_view body,
                                                       std::string_view retry_after);

}  // namespace og::aop
