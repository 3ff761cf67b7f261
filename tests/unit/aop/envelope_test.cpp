// Cloudflare's envelope: what is a success, and which kind of error everything else is.
#include <gtest/gtest.h>

#include "aop/envelope.hpp"

namespace og::aop::test {
namespace {

using namespace std::chrono_literals;

struct Case {
  const char* name;
  long status;
  const char* body;
  const char* retry_after;
  bool success;
  ApiErrorKind kind;
};

const Case kCases[] = {
    {"ok_object", 200, R"({"success":true,"errors":[],"messages":[],"result":{"id":"a"}})", "", true, {}},
    {"ok_null_result", 200, R"({"success":true,"errors":[],"messages":[],"result":null})", "", true, {}},
    {"ok_list", 200, R"({"success":true,"errors":[],"result":[],"result_info":{"count":0}})", "", true, {}},
    {"bad_token_403", 403,
     R"({"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null})", "",
     false, ApiErrorKind::auth},
    {"invalid_token_400", 400, R"({"success":false,"errors":[{"code":9109,"message":"Invalid access token"}]})", "",
     false, ApiErrorKind::auth},
    {"html_403", 403, "<html>forbidden</html>", "", false, ApiErrorKind::auth},
    {"rate_limited", 429, R"({"success":false,"errors":[{"code":971,"message":"Please wait"}]})", "30", false,
     ApiErrorKind::transient},
    {"rate_limited_html", 429, "<html>slow down</html>", "", false, ApiErrorKind::transient},
    {"server_error", 502, "<html>bad gateway</html>", "", false, ApiErrorKind::transient},
    {"rejected", 400, R"({"success":false,"errors":[{"code":1406,"message":"bad certificate"}]})", "", false,
     ApiErrorKind::rejected},
    {"not_found", 404, R"({"success":false,"errors":[{"code":1401,"message":"not found"}]})", "", false,
     ApiErrorKind::rejected},
    {"not_json", 200, "<html>hello</html>", "", false, ApiErrorKind::bad_response},
    {"truncated", 200, R"({"success":true,"errors":[],"res)", "", false, ApiErrorKind::bad_response},
    {"no_success", 200, R"({"errors":[],"result":{}})", "", false, ApiErrorKind::bad_response},
    {"success_string", 200, R"({"success":"true","errors":[],"result":{}})", "", false, ApiErrorKind::bad_response},
    {"no_errors", 200, R"({"success":true,"result":{}})", "", false, ApiErrorKind::bad_response},
    {"errors_not_array", 200, R"({"success":true,"errors":{},"result":{}})", "", false, ApiErrorKind::bad_response},
    {"no_result", 200, R"({"success":true,"errors":[]})", "", false, ApiErrorKind::bad_response},
    {"success_with_errors", 200, R"({"success":true,"errors":[{"code":1,"message":"x"}],"result":{}})", "", false,
     ApiErrorKind::bad_response},
    {"success_false_200", 200, R"({"success":false,"errors":[{"code":1000,"message":"x"}],"result":null})", "", false,
     ApiErrorKind::rejected},
    {"success_on_4xx", 400, R"({"success":true,"errors":[],"result":{}})", "", false, ApiErrorKind::bad_response},
    {"error_code_string", 400, R"({"success":false,"errors":[{"code":"1000","message":"x"}]})", "", false,
     ApiErrorKind::bad_response},
    {"error_no_message", 400, R"({"success":false,"errors":[{"code":1000}]})", "", false, ApiErrorKind::bad_response},
    {"array_top", 200, R"([1,2])", "", false, ApiErrorKind::bad_response},
    {"empty", 200, "", "", false, ApiErrorKind::bad_response},
};

class Envelope : public ::testing::TestWithParam<Case> {};

TEST_P(Envelope, Classifies) {
  const Case& c = GetParam();
  auto r = parse_envelope(c.status, c.body, c.retry_after);
  ASSERT_EQ(r.has_value(), c.success) << c.name << ": " << (r ? "ok" : r.error().message);
  if (!c.success) {
    EXPECT_EQ(r.error().kind, c.kind) << c.name << ": " << r.error().message;
    EXPECT_EQ(r.error().http_status, c.status);
    EXPECT_NE(r.error().message.find("HTTP " + std::to_string(c.status)), std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(Table, Envelope, ::testing::ValuesIn(kCases),
                         [](const auto& tp) { return std::string(tp.param.name); });

TEST(Envelope, ErrorCarriesCodesAndQuotedMessages) {
  auto r = parse_envelope(
      400, R"({"success":false,"errors":[{"code":1406,"message":"bad\u0000cert\n\"x\""},{"code":7,"message":"y"}]})",
      "");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().codes, (std::vector<long>{1406, 7}));
  EXPECT_NE(r.error().message.find(R"(1406 "bad\x00cert\x0a\x22x\x22")"), std::string::npos) << r.error().message;
}

TEST(Envelope, RetryAfterIsSecondsClampedAndNothingElse) {
  EXPECT_EQ(parse_retry_after("30"), 30s);
  EXPECT_EQ(parse_retry_after("0"), 0s);
  EXPECT_EQ(parse_retry_after("999999"), kMaxRetryAfter);
  EXPECT_EQ(parse_retry_after("-5"), 0s);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), 0s);
  EXPECT_EQ(parse_retry_after("12abc"), 0s);
  EXPECT_EQ(parse_retry_after("99999999999999999999"), 0s);
  auto r = parse_envelope(429, "", "45");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().retry_after, 45s);
}

// Every prefix of a good answer is either refused as a bad response or (the whole) accepted.
TEST(Envelope, EveryTruncationIsABadResponse) {
  std::string good = R"({"success":true,"errors":[],"messages":[],"result":{"id":"abc","status":"active"}})";
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto r = parse_envelope(200, good.substr(0, n), "");
    ASSERT_FALSE(r.has_value()) << n;
    EXPECT_EQ(r.error().kind, ApiErrorKind::bad_response) << n;
  }
  EXPECT_TRUE(parse_envelope(200, good, "").has_value());
}

}  // namespace
}  // namespace og::aop::test
