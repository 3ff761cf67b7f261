// The real CurlApiHttp against tests/tools/fake_cf_api.py over HTTPS on loopback (its own test
// CA, made at start): a full first issue and rotation, a 429 storm with a real Retry-After
// header, a bad token, and an upload whose answer is lost.
#include <gtest/gtest.h>

#include "aop/rotation.hpp"
#include "doubles/fake_api_server.hpp"
#include "fetch/curl_api_http.hpp"
#include "test_support.hpp"

namespace og::aop::test {
namespace {

using namespace std::chrono_literals;
using og::test::ok;

constexpr const char* kZone = "0123456789abcdef0123456789abcdef";
constexpr const char* kToken = "curl-test-token";

class CurlFakeApi : public ::testing::Test {
 protected:
  og::test::TempDir tmp;
  FakeApiServer server{tmp / "api", kZone, kToken};
  std::unique_ptr<fetch::CurlApiHttp> http;
  RotationOptions opts;
  TimePoint now = TimePoint(Seconds(1'800'000'000));

  void SetUp() override {
    ASSERT_TRUE(server.wait_ready()) << "fake_cf_api.py did not start (python3 and openssl needed)";
    ranges::HttpOptions o;
    o.ca_file = (tmp / "api" / "ca.pem").string();
    o.connect_timeout = 5s;
    o.total_timeout = 20s;
    http = std::make_unique<fetch::CurlApiHttp>(o);
    opts.state_file = tmp / "state.json";
    opts.ca_dir = tmp / "ca";
    opts.poll_interval = 1s;
  }

  void run(Rotator& rot) {
    for (int i = 0; i < 30; ++i) {
      StepResult r = rot.step(now);
      if (r.phase == Phase::idle && r.next_at > now + 1h && !r.error) return;
      if (r.next_at > now) now = r.next_at;
    }
    FAIL() << "did not finish: " << rot.state().last_error;
  }

  int count_uploads() {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(tmp / "api" / "uploads"))
      n += e.path().extension() == ".pem" ? 1 : 0;
    return n;
  }
};

TEST_F(CurlFakeApi, FirstIssueThenRotationOverHttps) {
  CfApi api(*http, server.base(), kZone, kToken, {});
  auto rot = Rotator::open(api, opts, kZone);
  ASSERT_TRUE(ok(rot));
  run(*rot);
  const std::string first = rot->state().current->id;
  auto st = server.state();
  EXPECT_EQ(st["enabled"], true);
  ASSERT_EQ(st["zone"].size(), 1u);
  EXPECT_EQ(st["zone"][0]["id"], first);
  EXPECT_EQ(st["zone"][0]["fingerprint_sha256"], rot->state().current->fingerprint_sha256);
  // The uploaded key is the one of the certificate (what an edge would present).
  EXPECT_TRUE(std::filesystem::exists(tmp / "api" / "uploads" / (first + ".key")));

  ASSERT_TRUE(ok(rot->request_rotation()));
  run(*rot);
  const std::string second = rot->state().current->id;
  EXPECT_NE(second, first);
  st = server.state();
  for (const auto& c : st["zone"]) {
    if (c["id"] == first) {
      EXPECT_NE(c["status"], "active");  // pending_deletion or deleted
    }
    if (c["id"] == second) {
      EXPECT_EQ(c["status"], "active");
    }
  }
  std::string log = server.requests();
  EXPECT_EQ(log.find("auth=bad"), std::string::npos);
  EXPECT_NE(log.find("DELETE /client/v4/zones/" + std::string(kZone) + "/origin_tls_client_auth/" + first),
            std::string::npos);
  EXPECT_EQ(count_uploads(), 2);
}

TEST_F(CurlFakeApi, RateLimitStormHonoursTheRetryAfterHeader) {
  CfApi api(*http, server.base(), kZone, kToken, {});
  auto rot = Rotator::open(api, opts, kZone);
  ASSERT_TRUE(ok(rot));
  ASSERT_FALSE(rot->step(now).error);  // issue: no API
  server.control(R"({"rate_limit": 3, "retry_after": 7})");
  for (int i = 0; i < 3; ++i) {
    StepResult r = rot->step(now);
    ASSERT_TRUE(r.error);
    EXPECT_EQ(r.error->http_status, 429);
    EXPECT_EQ(r.error->retry_after, 7s);
    EXPECT_GE(r.next_at - now, 7s);
    now = r.next_at;
  }
  run(*rot);
  EXPECT_EQ(count_uploads(), 1);
}

TEST_F(CurlFakeApi, BadTokenIsAnAuthErrorAndNothingIsDeleted) {
  {
    CfApi api(*http, server.base(), kZone, kToken, {});
    auto rot = Rotator::open(api, opts, kZone);
    ASSERT_TRUE(ok(rot));
    run(*rot);
  }
  CfApi wrong(*http, server.base(), kZone, "not-the-token", {});
  auto rot = Rotator::open(wrong, opts, kZone);
  ASSERT_TRUE(ok(rot));
  ASSERT_TRUE(ok(rot->request_rotation()));
  for (int i = 0; i < 4; ++i) {
    StepResult r = rot->step(now);
    if (r.error) {
      EXPECT_EQ(r.error->kind, ApiErrorKind::auth);
      EXPECT_EQ(r.error->http_status, 403);
      EXPECT_NE(r.error->message.find("Authentication error"), std::string::npos) << r.error->message;
      EXPECT_EQ(r.error->message.find("not-the-token"), std::string::npos);
    }
    now = std::max(now, r.next_at);
  }
  EXPECT_EQ(rot->state().last_error_kind, "auth");
  EXPECT_EQ(server.requests().find("DELETE"), std::string::npos);
  EXPECT_EQ(server.state()["zone"][0]["status"], "active");
}

TEST_F(CurlFakeApi, LostUploadAnswerIsAdoptedNotUploadedAgain) {
  CfApi api(*http, server.base(), kZone, kToken, {});
  server.control(R"({"drop_upload": 1})");
  {
    auto rot = Rotator::open(api, opts, kZone);
    ASSERT_TRUE(ok(rot));
    ASSERT_FALSE(rot->step(now).error);  // issue
    StepResult r = rot->step(now);       // upload: stored by the API, answered 502
    ASSERT_TRUE(r.error);
    EXPECT_EQ(r.error->http_status, 502);
    now = r.next_at;
  }  // restart
  auto rot = Rotator::open(api, opts, kZone);
  ASSERT_TRUE(ok(rot));
  run(*rot);
  EXPECT_EQ(count_uploads(), 1);
  ASSERT_EQ(server.state()["zone"].size(), 1u);
  EXPECT_EQ(server.state()["zone"][0]["id"], rot->state().current->id);
}

}  // namespace
}  // namespace og::aop::test
