// Cloudflare's API envelope as the AOP client parses it (agent/aop/envelope.cpp): the whole
// response is untrusted. Input: byte 0 picks the HTTP status, bytes up to the first '\n' after
// it are the Retry-After header, the rest is the body.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "aop/envelope.hpp"
#include "fuzz_check.hpp"

namespace {

constexpr long kStatuses[] = {200, 201, 204, 400, 401, 403, 404, 408, 409, 429, 500, 502, 503, 302, 100, 299};

bool auth_code(long c) { return c == 10000 || c == 10001 || c == 9109 || c == 9106 || c == 9103 || c == 6003; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  long status = kStatuses[data[0] % (sizeof kStatuses / sizeof kStatuses[0])];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::size_t nl = rest.find('\n');
  std::string_view retry = nl == std::string_view::npos ? std::string_view() : rest.substr(0, nl);
  std::string_view body = nl == std::string_view::npos ? rest : rest.substr(nl + 1);

  auto r = og::aop::parse_envelope(status, body, retry);
  if (r) {
    // A success is only ever a 2xx whose body is an envelope saying so, and the result is the body's.
    FUZZ_CHECK(status >= 200 && status < 300);
    auto doc = nlohmann::json::parse(body, nullptr, false);
    FUZZ_CHECK(doc.is_object());
    FUZZ_CHECK(doc["success"] == true);
    FUZZ_CHECK(doc["errors"].is_array() && doc["errors"].empty());
    FUZZ_CHECK(doc["result"] == *r);
    // Round trip: the same result in a fresh envelope parses to the same value.
    nlohmann::json again = {{"success", true}, {"errors", nlohmann::json::array()}, {"result", *r}};
    auto r2 = og::aop::parse_envelope(200, again.dump(), "");
    FUZZ_CHECK(r2.has_value() && *r2 == *r);
    return 0;
  }
  const og::aop::ApiError& e = r.error();
  FUZZ_CHECK(e.http_status == status);
  // Messages go to logs and status JSON: printable ASCII only, whatever the body held.
  FUZZ_CHECK(!e.message.empty() && e.message.size() < 4096);
  for (char c : e.message) FUZZ_CHECK(c >= 0x20 && c < 0x7f);
  FUZZ_CHECK(e.retry_after.count() >= 0 && e.retry_after <= og::aop::kMaxRetryAfter);
  FUZZ_CHECK(e.retry_after.count() == 0 || status == 429);
  bool any_auth = false;
  for (long c : e.codes) any_auth = any_auth || auth_code(c);
  switch (e.kind) {
    case og::aop::ApiErrorKind::auth:
      FUZZ_CHECK(status == 401 || status == 403 || any_auth);
      break;
    case og::aop::ApiErrorKind::transient:
      FUZZ_CHECK(status == 429 || status == 408 || status >= 500);
      break;
    case og::aop::ApiErrorKind::rejected:
      FUZZ_CHECK(status != 429 && status != 401 && status != 403 && status != 408 && status < 500);
      break;
    case og::aop::ApiErrorKind::bad_response:
      break;
  }
  // A 429 is transient whatever the body says (never an auth error that would stop retries).
  if (status == 429) FUZZ_CHECK(e.kind == og::aop::ApiErrorKind::transient);
  return 0;
}
