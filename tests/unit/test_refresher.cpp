// One refresh attempt against a mocked HTTP client: sources, fallbacks, 304s, validation.
#include <cerrno>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "doubles/mock_http_client.hpp"
#include "ranges/refresher.hpp"
#include "test_support.hpp"

namespace og::ranges {
namespace {

using og::test::read_file;
using og::test::test_data;
using test::MockHttpClient;
using test::response;
using ::testing::_;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::InSequence;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Return;
using ::testing::StrictMock;

using Kind = RefreshOutcome::Kind;

const std::string kApi(kCloudflareApiUrl);
const std::string kTextV4 = "https://www.cloudflare.com/ips-v4";
const std::string kTextV6 = "https://www.cloudflare.com/ips-v6";
const WallTime kNow = WallTime(std::chrono::seconds(1'790'000'000));

class RefresherTest : public ::testing::Test {
 protected:
  RefreshOutcome run(const RefreshInput& in = {}) {
    Refresher r(http_, cfg_);
    return r.run(in, kNow);
  }
  static std::string snapshot() { return read_file(test_data("cloudflare-ips-v4v6.json")); }
  static std::string edge() { return read_file(test_data("test-edge-ips.json")); }
  static RangeSet snapshot_set() {
    auto b = bootstrap_ranges();
    EXPECT_TRUE(og::test::ok(b));
    return b->ranges;
  }

  StrictMock<MockHttpClient> http_;
  RangesConfig cfg_;
};

TEST_F(RefresherTest, JsonApi200IsUpdated) {
  EXPECT_CALL(http_, get(kApi, "")).WillOnce(Return(response(200, "application/json", snapshot(), "W/\"hdr-1\"")));
  auto out = run();
  ASSERT_EQ(out.kind, Kind::updated) << out.error.message;
  EXPECT_EQ(out.result.ranges.v4().size(), 15u);
  EXPECT_EQ(out.result.ranges.v6().size(), 7u);
  EXPECT_EQ(out.result.source, kApi);
  EXPECT_EQ(out.result.etag, "placeholder-etag-snapshot-2026-07");  // the body's etag is shown
  EXPECT_EQ(out.result.etags, (EtagMap{{kApi, "W/\"hdr-1\""}}));    // the header is sent back
  EXPECT_EQ(out.result.fetched_at, kNow);
  EXPECT_THAT(out.notes, IsEmpty());
  EXPECT_THAT(out.error.message, IsEmpty());
}

TEST_F(RefresherTest, NotModifiedWhenTheSameSourceAnswers304) {
  RefreshInput in;
  in.current_source = kApi;
  in.etags = {{kApi, "W/\"hdr-1\""}};
  in.last_good = snapshot_set();
  EXPECT_CALL(http_, get(kApi, "W/\"hdr-1\"")).WillOnce(Return(response(304, "", "")));
  auto out = run(in);
  EXPECT_EQ(out.kind, Kind::not_modified);
  EXPECT_THAT(out.error.message, IsEmpty());
}

TEST_F(RefresherTest, NoIfNoneMatchForADifferentSource) {
  // The ETag we hold belongs to another alternative: the request must be unconditional.
  RefreshInput in;
  in.current_source = "file:///etc/originguard/ranges.json";
  in.etags = {{kApi, "W/\"hdr-1\""}};
  EXPECT_CALL(http_, get(kApi, "")).WillOnce(Return(response(200, "application/json", snapshot(), "W/\"hdr-2\"")));
  auto out = run(in);
  ASSERT_EQ(out.kind, Kind::updated) << out.error.message;
  EXPECT_EQ(out.result.etags.at(kApi), "W/\"hdr-2\"");
}

TEST_F(RefresherTest, NoIfNoneMatchWithoutAStoredEtag) {
  RefreshInput in;
  in.current_source = kApi;
  EXPECT_CALL(http_, get(kApi, "")).WillOnce(Return(response(200, "application/json", snapshot())));
  auto out = run(in);
  ASSERT_EQ(out.kind, Kind::updated) << out.error.message;
  EXPECT_THAT(out.result.etags, IsEmpty()) << "no ETag header, nothing to send next time";
}

TEST_F(RefresherTest, Unsolicited304IsAFailure) {
  EXPECT_CALL(http_, get(kApi, "")).WillOnce(Return(response(304, "", "")));
  auto out = run();
  EXPECT_EQ(out.kind, Kind::failed);
  EXPECT_THAT(out.error.message, AllOf(HasSubstr(kApi), HasSubstr("HTTP 304")));
}

struct BadAnswer {
  std::string_view name;
  Result<HttpResponse> answer;
  std::string_view why;
};

TEST_F(RefresherTest, BadAnswersFailNamingUrlAndReason) {
  const std::string html =
      "<!DOCTYPE html><html><head><title>Attention Required!</title></head><body>blocked</body></html>";
  const BadAnswer cases[] = {
      {"500", response(500, "text/plain", "internal error"), "HTTP 500"},
      {"403 challenge page", response(403, "text/html; charset=UTF-8", html), "HTTP 403 (HTML page"},
      {"200 challenge page", response(200, "text/html", html), "HTML"},
      {"200 HTML labelled json", response(200, "application/json", html), "HTML"},
      {"success false",
       response(200, "application/json",
                R"({"success":false,"errors":[{"code":10000,"message":"Authentication error"}]})"),
       "success:false (10000 Authentication error)"},
      {"truncated", response(200, "application/json", snapshot().substr(0, 300)), "not valid JSON"},
      {"empty", response(200, "application/json", ""), "empty body"},
      {"wrong content type", response(200, "image/png", "\x89PNG"), "unexpected Content-Type"},
      {"oversize", fail("body exceeds 1048576 bytes (max_body_bytes)"), "body exceeds 1048576 bytes"},
      {"timeout", fail("timed out: Operation timed out after 30000 milliseconds"), "timed out"},
      {"broad prefix",
       response(200, "application/json",
                R"({"success":true,"errors":[],"result":{"ipv4_cidrs":["0.0.0.0/0"],"ipv6_cidrs":["2001:db8::/32"]}})"),
       "refused: prefix 0.0.0.0/0 is broader than /8"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.name));
    StrictMock<MockHttpClient> http;
    EXPECT_CALL(http, get(kApi, "")).WillOnce(Return(c.answer));
    Refresher r(http, cfg_);
    auto out = r.run({}, kNow);
    EXPECT_EQ(out.kind, Kind::failed);
    EXPECT_THAT(out.error.message, HasSubstr(kApi));
    EXPECT_THAT(out.error.message, HasSubstr(std::string(c.why)));
    EXPECT_TRUE(out.result.ranges.empty()) << "a failed refresh carries no ranges";
  }
}

TEST_F(RefresherTest, FallbackToSecondAlternativeAddsANote) {
  cfg_.sources = {{kApi}, {kTextV4, kTextV6}};
  InSequence seq;
  EXPECT_CALL(http_, get(kApi, "")).WillOnce(Return(response(503, "text/html", "<html>down</html>")));
  EXPECT_CALL(http_, get(kTextV4, ""))
      .WillOnce(Return(response(200, "text/plain", read_file(test_data("ips-v4.txt")), "\"v4\"")));
  EXPECT_CALL(http_, get(kTextV6, ""))
      .WillOnce(Return(response(200, "text/plain", read_file(test_data("ips-v6.txt")), "\"v6\"")));
  auto out = run();
  ASSERT_EQ(out.kind, Kind::updated) << out.error.message;
  EXPECT_EQ(out.result.source, kTextV4 + " + " + kTextV6);
  EXPECT_EQ(out.result.ranges.v4().size(), 15u);
  EXPECT_EQ(out.result.ranges.v6().size(), 7u);
  ASSERT_THAT(out.notes, ElementsAre(AllOf(HasSubstr("fallback"), HasSubstr(kApi), HasSubstr("HTTP 503"))));
}

TEST_F(RefresherTest, UnionGroupMergesBothFamilies) {
  cfg_.sources = {{kTextV4, kTextV6}};
  EXPECT_CALL(http_, get(kTextV4, ""))
      .WillOnce(Return(response(200, "text/plain; charset=utf-8", read_file(test_data("ips-v4.txt")), "\"v4\"")));
  EXPECT_CALL(http_, get(kTextV6, ""))
      .WillOnce(Return(response(200, "text/plain; charset=utf-8", read_file(test_data("ips-v6.txt")), "\"v6\"")));
  auto out = run();
  ASSERT_EQ(out.kind, Kind::updated) << out.error.message;
  EXPECT_EQ(out.result.ranges, snapshot_set()) << "the two text lists are exactly the JSON snapshot";
  EXPECT_EQ(out.result.etags, (EtagMap{{kTextV4, "\"v4\""}, {kTextV6, "\"v6\""}}));
  EXPECT_EQ(out.result.etag, "\"v4\"");
  EXPECT_THAT(out.notes, IsEmpty());
}

TEST_F(RefresherTest, UnionGroupFailsIfOnePartFails) {
  cfg_.sources = {{kTextV4, kTextV6}};
  EXPECT_CALL(http_, get(kTextV4, ""))
      .WillOnce(Return(response(200, "text/plain", read_file(test_data("ips-v4.txt")))));
  EXPECT_CALL(http_, get(kTextV6, "")).WillOnce(Return(response(403, "text/html", "<html>challenge</html>")));
  auto out = run();
  EXPECT_EQ(out.kind, Kind::failed);
  EXPECT_THAT(out.error.message, AllOf(HasSubstr(kTextV6), HasSubstr("HTTP 403")));
}

TEST_F(RefresherTest, UnionAllUnchangedIsNotModified) {
  cfg_.sources = {{kTextV4, kTextV6}};
  RefreshInput in;
  in.current_source = kTextV4 + " + " + kTextV6;
  in.etags = {{kTextV4, "\"v4\""}, {kTextV6, "\"v6\""}};
  EXPECT_CALL(http_, get(kTextV4, "\"v4\"")).WillOnce(Return(response(304, "", "")));
  EXPECT_CALL(http_, get(kTextV6, "\"v6\"")).WillOnce(Return(response(304, "", "")));
  EXPECT_EQ(run(in).kind, Kind::not_modified);
}

TEST_F(RefresherTest, UnionPartlyChangedRefetchesTheUnchangedPart) {
  cfg_.sources = {{kTextV4, kTextV6}};
  RefreshInput in;
  in.current_source = kTextV4 + " + " + kTextV6;
  in.etags = {{kTextV4, "\"v4\""}, {kTextV6, "\"v6\""}};
  in.last_good = snapshot_set();
  InSequence seq;
  EXPECT_CALL(http_, get(kTextV4, "\"v4\"")).WillOnce(Return(response(304, "", "")));
  EXPECT_CALL(http_, get(kTextV6, "\"v6\""))
      .WillOnce(
          Return(response(200, "text/plain", read_file(test_data("ips-v6.txt")) + "\n2001:db8:cf::/48\n", "\"v6b\"")));
  EXPECT_CALL(http_, get(kTextV4, ""))
      .WillOnce(Return(response(200, "text/plain", read_file(test_data("ips-v4.txt")), "\"v4\"")));
  auto out = run(in);
  ASSERT_EQ(out.kind, Kind::updated) << out.error.message;
  EXPECT_EQ(out.result.ranges.v4().size(), 15u);
  EXPECT_EQ(out.result.ranges.v6().size(), 8u);
  EXPECT_EQ(out.result.etags, (EtagMap{{kTextV4, "\"v4\""}, {kTextV6, "\"v6b\""}}));
}

TEST_F(RefresherTest, ChinaNetworkAddsQueryToTheApiOnly) {
  cfg_.include_china_network = true;
  cfg_.sources = {{kApi}, {kTextV4, kTextV6}};
  const std::string china_body = R"({"success":true,"errors":[],"result":{
      "ipv4_cidrs":["198.51.100.0/24"],"ipv6_cidrs":["2001:db8:cf::/48"],"jdcloud_cidrs":["192.0.2.0/25"],"etag":"cn"}})";
  EXPECT_CALL(http_, get(kApi + "?networks=jdcloud", ""))
      .WillOnce(Return(response(200, "application/json", china_body)));
  auto out = run();
  ASSERT_EQ(out.kind, Kind::updated) << out.error.message;
  EXPECT_EQ(out.result.ranges.v4().size(), 2u);
  EXPECT_TRUE(out.result.ranges.contains(*parse_address("192.0.2.1")));
  EXPECT_EQ(out.result.source, kApi) << "status shows the configured URL";
}

TEST_F(RefresherTest, ChinaNetworkAnswerWithoutJdcloudIsRefused) {
  cfg_.include_china_network = true;
  EXPECT_CALL(http_, get(kApi + "?networks=jdcloud", ""))
      .WillOnce(Return(response(200, "application/json", snapshot())));
  auto out = run();
  EXPECT_EQ(out.kind, Kind::failed);
  EXPECT_THAT(out.error.message, AllOf(HasSubstr("jdcloud_cidrs"), HasSubstr(kApi)));
}

TEST(EffectiveUrl, Table) {
  const std::tuple<std::string, bool, std::string> cases[] = {
      {kApi, false, kApi},
      {kApi, true, kApi + "?networks=jdcloud"},
      {kApi + "?x=1", true, kApi + "?x=1&networks=jdcloud"},
      {kApi + "?networks=jdcloud", true, kApi + "?networks=jdcloud"},  // not twice
      {kTextV4, true, kTextV4},
      {"file:///var/lib/x.json", true, "file:///var/lib/x.json"},
  };
  for (const auto& [url, china, want] : cases) EXPECT_EQ(effective_url(url, china), want) << url << " " << china;
  EXPECT_EQ(describe({"a", "b", "c"}), "a + b + c");
  EXPECT_EQ(describe({"a"}), "a");
}

TEST_F(RefresherTest, ShrinkIsRefusedWithoutForce) {
  RefreshInput in;
  in.current_source = kApi;
  in.etags = {{kApi, "\"e\""}};
  in.last_good = snapshot_set();
  EXPECT_CALL(http_, get(kApi, "\"e\"")).WillOnce(Return(response(200, "application/json", edge())));
  auto out = run(in);
  EXPECT_EQ(out.kind, Kind::failed);
  EXPECT_THAT(out.error.message, AllOf(HasSubstr(kApi), HasSubstr("would shrink from 15 to 2"), HasSubstr("--force")));
}

TEST_F(RefresherTest, ForceSkipsShrinkRuleAndSendsNoIfNoneMatch) {
  RefreshInput in;
  in.current_source = kApi;
  in.etags = {{kApi, "\"e\""}};
  in.last_good = snapshot_set();
  in.force = true;
  EXPECT_CALL(http_, get(kApi, "")).WillOnce(Return(response(200, "application/json", edge(), "\"e2\"")));
  auto out = run(in);
  ASSERT_EQ(out.kind, Kind::updated) << out.error.message;
  EXPECT_EQ(out.result.ranges.v4().size(), 2u);
  EXPECT_EQ(out.result.ranges.v6().size(), 1u);
  EXPECT_EQ(out.result.etag, "test-etag-1");
}

TEST_F(RefresherTest, AllAlternativesFailJoinsReasons) {
  cfg_.sources = {{kApi}, {kTextV4, kTextV6}};
  EXPECT_CALL(http_, get(kApi, "")).WillOnce(Return(fail("Could not resolve host: api.cloudflare.com")));
  EXPECT_CALL(http_, get(kTextV4, "")).WillOnce(Return(response(500, "text/plain", "")));
  auto out = run();
  EXPECT_EQ(out.kind, Kind::failed);
  EXPECT_THAT(out.error.message, HasSubstr(kApi + ": Could not resolve host"));
  EXPECT_THAT(out.error.message, HasSubstr("; then " + kTextV4 + ": HTTP 500"));
}

// The outcome keeps the structured error, errno included (a missing or unreadable file:///
// source), not only its text: the first alternative's errno that is set.
TEST_F(RefresherTest, FailureKeepsTheErrno) {
  og::test::TempDir dir;
  const std::string missing = "file://" + (dir / "missing.json").string();
  cfg_.sources = {{kApi}, {missing}};
  EXPECT_CALL(http_, get(kApi, "")).WillOnce(Return(response(500, "text/plain", "busy")));
  auto out = run();
  EXPECT_EQ(out.kind, Kind::failed);
  EXPECT_EQ(out.error.sys_errno, ENOENT);
  EXPECT_THAT(out.error.message, HasSubstr(kApi + ": HTTP 500"));
  EXPECT_THAT(out.error.message, HasSubstr("; then " + missing + ": open "));
}

TEST_F(RefresherTest, SuccessCarriesNoError) {
  cfg_.sources = {{"file://" + test_data("ips-v4.txt").string(), "file://" + test_data("ips-v6.txt").string()}};
  auto out = run();
  ASSERT_EQ(out.kind, Kind::updated) << out.error.message;
  EXPECT_THAT(out.error.message, IsEmpty());
  EXPECT_EQ(out.error.sys_errno, 0);
}

TEST_F(RefresherTest, ValidationFailureFallsBack) {
  cfg_.sources = {{kApi}, {"file://" + test_data("cloudflare-ips-v4v6.json").string()}};
  cfg_.min_ipv4 = 10;
  EXPECT_CALL(http_, get(kApi, "")).WillOnce(Return(response(200, "application/json", edge())));
  auto out = run();
  ASSERT_EQ(out.kind, Kind::updated) << out.error.message;
  EXPECT_EQ(out.result.ranges, snapshot_set());
  EXPECT_THAT(out.result.source, HasSubstr("file://"));
  ASSERT_THAT(out.notes, ElementsAre(AllOf(HasSubstr("fallback"), HasSubstr("fewer than the minimum 10"))));
}

TEST_F(RefresherTest, FileSourcesNeedNoHttp) {
  cfg_.sources = {{"file://" + test_data("ips-v4.txt").string(), "file://" + test_data("ips-v6.txt").string()}};
  auto out = run();  // StrictMock: any HTTP call fails the test
  ASSERT_EQ(out.kind, Kind::updated) << out.error.message;
  EXPECT_EQ(out.result.ranges, snapshot_set());
  EXPECT_THAT(out.result.etags, IsEmpty());
}

// Memory follows the body, not [ranges] max_body_bytes (a 64 MiB cap used to mean a 64 MiB
// buffer, and ~80 MB peak RSS, for a 1.5 KB file).
TEST(ReadFileUrl, BufferFollowsTheBodyNotTheCap) {
  og::test::TempDir dir;
  const std::string small(1500, '1'), large(100000, '2');
  og::test::write_file(dir / "small.txt", small);
  og::test::write_file(dir / "large.txt", large);
  auto r = read_file_url("file://" + (dir / "small.txt").string(), 64u << 20);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->body, small);
  EXPECT_LE(r->body.capacity(), 64u << 10);
  r = read_file_url("file://" + (dir / "large.txt").string(), 64u << 20);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->body, large);
  EXPECT_LE(r->body.capacity(), 4 * large.size());
  // The cap itself: exactly cap bytes pass, one more does not.
  EXPECT_TRUE(read_file_url("file://" + (dir / "small.txt").string(), 1500));
  auto over = read_file_url("file://" + (dir / "small.txt").string(), 1499);
  ASSERT_FALSE(over);
  EXPECT_THAT(over.error().message, HasSubstr("exceeds 1499 bytes"));
}

TEST_F(RefresherTest, FileSourceErrors) {
  og::test::TempDir dir;
  og::test::write_file(dir / "big.txt", std::string(2048, '\n'));
  og::test::write_file(dir / "html.txt", "<html></html>");
  cfg_.max_body_bytes = 1024;
  const std::pair<std::string, std::string_view> cases[] = {
      {"file://" + (dir / "missing.json").string(), "No such file or directory"},
      {"file://" + (dir / "big.txt").string(), "exceeds 1024 bytes"},
      {"file://" + (dir / "html.txt").string(), "HTML"},
  };
  for (const auto& [url, why] : cases) {
    SCOPED_TRACE(url);
    cfg_.sources = {{url}};
    auto out = run();
    EXPECT_EQ(out.kind, Kind::failed);
    EXPECT_THAT(out.error.message, AllOf(HasSubstr(url), HasSubstr(std::string(why))));
  }
}

}  // namespace
}  // namespace og::ranges
