// The API client against a StrictMock of the HTTP seam: exact requests, the token only in the
// bearer field, ids checked before they reach a URL, result shapes checked.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "aop/cf_api.hpp"
#include "doubles/fake_cf.hpp"
#include "doubles/mock_api_http.hpp"

namespace og::aop::test {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::Field;
using ::testing::Return;
using ::testing::StrictMock;

const std::string kZonePath = std::string(kBase) + "/zones/" + kZone + "/origin_tls_client_auth";

std::string ok_body(const std::string& result) {
  return R"({"success":true,"errors":[],"messages":[],"result":)" + result + "}";
}

TEST(CfApi, UploadSendsCertificateAndKeyWithTheBearerToken) {
  StrictMock<MockApiHttp> http;
  CfApi api(http, std::string(kBase) + "/", kZone, kToken, {});
  ApiRequest seen;
  EXPECT_CALL(http, send(_)).WillOnce([&](const ApiRequest& r) {
    seen = r;
    return Result<ApiResponse>(json_response(200, ok_body(R"({"id":"abc123","status":"pending_deployment"})")));
  });
  auto r = api.upload("CERT PEM", "KEY PEM");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->id, "abc123");
  EXPECT_EQ(r->status, "pending_deployment");
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.url, kZonePath);
  EXPECT_EQ(seen.bearer_token, kToken);
  auto body = nlohmann::json::parse(seen.json_body);
  EXPECT_EQ(body, (nlohmann::json{{"certificate", "CERT PEM"}, {"private_key", "KEY PEM"}}));
  EXPECT_EQ(seen.url.find(kToken), std::string::npos);
}

TEST(CfApi, ZoneActivationPutsSettingsAndChecksTheAnswer) {
  StrictMock<MockApiHttp> http;
  CfApi api(http, kBase, kZone, kToken, {});
  EXPECT_CALL(http, send(AllOf(Field(&ApiRequest::method, "PUT"), Field(&ApiRequest::url, kZonePath + "/settings"),
                               Field(&ApiRequest::json_body, R"({"enabled":true})"))))
      .WillOnce(Return(Result<ApiResponse>(json_response(200, ok_body(R"({"enabled":true})")))))
      .WillOnce(Return(Result<ApiResponse>(json_response(200, ok_body(R"({"enabled":false})")))));
  EXPECT_TRUE(api.activate("abc").has_value());
  auto r = api.activate("abc");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ApiErrorKind::bad_response);
}

TEST(CfApi, PerHostnameUsesHostnameCertificatesAndAssociatesEachHostname) {
  StrictMock<MockApiHttp> http;
  CfApi api(http, kBase, kZone, kToken, {"a.example.com", "b.example.com"});
  EXPECT_CALL(http, send(AllOf(Field(&ApiRequest::method, "POST"),
                               Field(&ApiRequest::url, kZonePath + "/hostnames/certificates"))))
      .WillOnce(
          Return(Result<ApiResponse>(json_response(200, ok_body(R"({"id":"h1","status":"pending_deployment"})")))));
  EXPECT_CALL(http, send(AllOf(Field(&ApiRequest::method, "PUT"), Field(&ApiRequest::url, kZonePath + "/hostnames"))))
      .WillOnce([](const ApiRequest& r) {
        auto cfg = nlohmann::json::parse(r.json_body).at("config");
        EXPECT_EQ(cfg.size(), 2u);
        EXPECT_EQ(cfg[1], (nlohmann::json{{"hostname", "b.example.com"}, {"cert_id", "h1"}, {"enabled", true}}));
        return Result<ApiResponse>(json_response(200, ok_body("[]")));
      });
  EXPECT_CALL(http, send(AllOf(Field(&ApiRequest::method, "DELETE"),
                               Field(&ApiRequest::url, kZonePath + "/hostnames/certificates/old1"))))
      .WillOnce(Return(Result<ApiResponse>(json_response(200, ok_body(R"({"id":"old1"})")))));
  ASSERT_TRUE(api.upload("C", "K").has_value());
  ASSERT_TRUE(api.activate("h1").has_value());
  ASSERT_TRUE(api.remove("old1").has_value());
}

TEST(CfApi, IdsThatCouldLeaveTheirPathSegmentAreRefusedWithoutACall) {
  StrictMock<MockApiHttp> http;  // no call expected
  CfApi api(http, kBase, kZone, kToken, {});
  for (const std::string& id :
       std::vector<std::string>{"../settings", "a/b", "", "a?b", "a b", std::string(65, 'a'), "a%2f"}) {
    EXPECT_FALSE(api.remove(id).has_value()) << id;
    EXPECT_FALSE(api.get(id).has_value()) << id;
    EXPECT_FALSE(api.activate(id).has_value()) << id;
  }
}

TEST(CfApi, AnsweredIdsAreCheckedToo) {
  StrictMock<MockApiHttp> http;
  CfApi api(http, kBase, kZone, kToken, {});
  EXPECT_CALL(http, send(_))
      .WillOnce(Return(Result<ApiResponse>(json_response(200, ok_body(R"({"id":"../x","status":"active"})")))))
      .WillOnce(Return(Result<ApiResponse>(json_response(200, ok_body(R"([{"id":"ok1"},{"id":7}])")))))
      .WillOnce(Return(Result<ApiResponse>(json_response(200, ok_body(R"({"id":"other","status":"active"})")))));
  EXPECT_EQ(api.upload("C", "K").error().kind, ApiErrorKind::bad_response);
  EXPECT_EQ(api.list().error().kind, ApiErrorKind::bad_response);
  EXPECT_EQ(api.get("mine").error().kind, ApiErrorKind::bad_response);  // answered for another id
}

TEST(CfApi, TransportErrorsAreTransientAndNameTheCallNotTheToken) {
  StrictMock<MockApiHttp> http;
  CfApi api(http, kBase, kZone, kToken, {});
  EXPECT_CALL(http, send(_)).WillOnce(Return(Result<ApiResponse>(fail("Connection refused"))));
  auto r = api.list();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ApiErrorKind::transient);
  EXPECT_EQ(r.error().http_status, 0);
  EXPECT_NE(r.error().message.find("GET /zones/"), std::string::npos);
  EXPECT_EQ(r.error().message.find(kToken), std::string::npos);
}

TEST(CfApi, ListParsesStatusesAndRefusesOddOnes) {
  StrictMock<MockApiHttp> http;
  CfApi api(http, kBase, kZone, kToken, {});
  EXPECT_CALL(http, send(_))
      .WillOnce(Return(Result<ApiResponse>(json_response(
          200, ok_body(R"([{"id":"a1","status":"active","expires_on":"2030-01-01T00:00:00Z","certificate":"PEM"},
                           {"id":"a2","status":"pending_deletion","serial_number":"0A1B"}])")))))
      .WillOnce(Return(Result<ApiResponse>(json_response(200, ok_body(R"([{"id":"a1","status":"<script>"}])")))))
      .WillOnce(Return(Result<ApiResponse>(json_response(200, ok_body(R"({"id":"a1"})")))));
  auto l = api.list();
  ASSERT_TRUE(l.has_value()) << l.error().message;
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0].status, "active");
  EXPECT_EQ((*l)[0].certificate, "PEM");
  EXPECT_EQ((*l)[1].serial_number, "0A1B");
  EXPECT_EQ(api.list().error().kind, ApiErrorKind::bad_response);
  EXPECT_EQ(api.list().error().kind, ApiErrorKind::bad_response);  // not a list
}

}  // namespace
}  // namespace og::aop::test
