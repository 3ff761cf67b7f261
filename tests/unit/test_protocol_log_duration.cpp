// Small shared pieces: durations, the control protocol, log line formatting.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "originguard/control_protocol.hpp"
#include "originguard/duration.hpp"
#include "originguard/log.hpp"
#include "test_support.hpp"

namespace og {
namespace {

using namespace std::chrono_literals;
using test::ok;
using test::refused;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- durations --------------------------------------------------------------------------

TEST(Duration, Format) {
  const std::pair<std::chrono::seconds, std::string_view> cases[] = {
      {0s, "0s"},       {1s, "1s"},         {59s, "59s"},           {60s, "1m"},
      {61s, "1m 1s"},   {192s, "3m 12s"},   {3599s, "59m 59s"},     {3600s, "1h"},
      {3660s, "1h 1m"}, {7500s, "2h 5m"},   {7501s, "2h 5m"},       {86399s, "23h 59m"},
      {86400s, "1d"},   {277200s, "3d 5h"}, {90000s, "1d 1h"},      {-90s, "-1m 30s"},
      {-5s, "-5s"},     {-86400s, "-1d"},   {365 * 86400s, "365d"},
  };
  for (const auto& [d, want] : cases) EXPECT_EQ(format_duration(d), want) << d.count();
}

TEST(Duration, Parse) {
  const std::pair<std::string_view, std::optional<std::chrono::seconds>> cases[] = {
      {"0s", 0s},
      {"45s", 45s},
      {"30m", 1800s},
      {"1h", 3600s},
      {"1h30m", 5400s},
      {"2d", 172800s},
      {"1d1h1m1s", 90061s},
      {"90m", 5400s},
      {"1m1m", 120s},
      {"007s", 7s},
      {"", std::nullopt},
      {"1", std::nullopt},
      {"s", std::nullopt},
      {"1y", std::nullopt},
      {"1 h", std::nullopt},
      {" 1h", std::nullopt},
      {"1h ", std::nullopt},
      {"-1s", std::nullopt},
      {"+1s", std::nullopt},
      {"1.5h", std::nullopt},
      {"1S", std::nullopt},
      {"100000001s", std::nullopt},
      {"1158d", std::nullopt},
      {"99999999999999999999s", std::nullopt},
  };
  for (const auto& [text, want] : cases) {
    SCOPED_TRACE(std::string(text));
    auto r = parse_duration(text);
    if (want) {
      ASSERT_TRUE(ok(r));
      EXPECT_EQ(*r, *want);
    } else {
      EXPECT_TRUE(refused(r));
    }
  }
}

// ---- control protocol -------------------------------------------------------------------

TEST(ControlProtocol, AcceptsWellFormedRequests) {
  struct Case {
    std::string_view line;
    std::string_view cmd;
    bool force;
    nlohmann::json params;
  };
  const Case cases[] = {
      {R"({"cmd":"status"})", "status", false, nlohmann::json::object()},
      {R"({"cmd":"refresh","force":true})", "refresh", true, nlohmann::json::object()},
      {R"({"cmd":"refresh","force":false})", "refresh", false, nlohmann::json::object()},
      {"{\"cmd\":\"reload\"}\n", "reload", false, nlohmann::json::object()},
      {R"( { "cmd" : "version" } )", "version", false, nlohmann::json::object()},
      {R"({"cmd":"nft-uninstall","yes":true,"n":3})", "nft-uninstall", false, {{"yes", true}, {"n", 3}}},
      {R"({"cmd":"abcdefghijklmnopqrstuvwxyzabcdef"})", "abcdefghijklmnopqrstuvwxyzabcdef", false,
       nlohmann::json::object()},  // 32 characters
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.line));
    auto r = parse_control_request(c.line);
    ASSERT_TRUE(ok(r));
    EXPECT_EQ(r->cmd, c.cmd);
    EXPECT_EQ(r->force, c.force);
    EXPECT_EQ(nlohmann::json::parse(r->params), c.params) << "cmd and force are not repeated in params";
  }
}

TEST(ControlProtocol, RefusesMalformedRequests) {
  const std::pair<std::string, std::string_view> cases[] = {
      {"", "not a JSON object"},
      {"status", "not a JSON object"},
      {"[\"status\"]", "not a JSON object"},
      {"\"status\"", "not a JSON object"},
      {"{\"cmd\":\"status\"", "not a JSON object"},
      {"{\"cmd\":\"status\"}{\"cmd\":\"reload\"}", "not a JSON object"},
      {"{}", "no string \"cmd\""},
      {"{\"cmd\":1}", "no string \"cmd\""},
      {"{\"cmd\":null}", "no string \"cmd\""},
      {"{\"cmd\":[\"status\"]}", "no string \"cmd\""},
      {"{\"cmd\":\"\"}", "bad command name"},
      {"{\"cmd\":\"Status\"}", "bad command name"},
      {"{\"cmd\":\"status \"}", "bad command name"},
      {"{\"cmd\":\"nft_uninstall\"}", "bad command name"},
      {"{\"cmd\":\"../etc\"}", "bad command name"},
      {"{\"cmd\":\"st\\u0000atus\"}", "bad command name"},
      {"{\"cmd\":\"st\\u00e4tus\"}", "bad command name"},
      {"{\"cmd\":\"abcdefghijklmnopqrstuvwxyzabcdefg\"}", "bad command name"},  // 33
      {"{\"cmd\":\"refresh\",\"force\":1}", "\"force\" must be a boolean"},
      {"{\"cmd\":\"refresh\",\"force\":\"true\"}", "\"force\" must be a boolean"},
      {"{\"cmd\":\"refresh\",\"force\":null}", "\"force\" must be a boolean"},
      // Duplicate keys: JSON parsers disagree on which one counts (this one takes the last,
      // a log or a filter reading the first would see "status" where "uninstall" runs).
      {"{\"cmd\":\"status\",\"cmd\":\"uninstall\"}", "duplicate key \"cmd\""},
      {"{\"cmd\":\"refresh\",\"force\":false,\"force\":true}", "duplicate key \"force\""},
      {"{\"cmd\":\"explain\",\"ip\":\"198.51.100.1\",\"ip\":\"203.0.113.9\"}", "duplicate key \"ip\""},
      {"{\"cmd\":\"status\",\"x\":{\"a\":1,\"a\":2}}", "duplicate key \"a\""},
      {"{\"cmd\":\"status\",\"x\":[{\"a\":1},{\"b\":1,\"b\":1}]}", "duplicate key \"b\""},
  };
  for (const auto& [line, why] : cases) {
    SCOPED_TRACE(line);
    auto r = parse_control_request(line);
    ASSERT_TRUE(refused(r));
    EXPECT_THAT(r.error().message, HasSubstr(std::string(why)));
  }
}

TEST(ControlProtocol, SameKeyInDifferentObjectsIsNoDuplicate) {
  auto r = parse_control_request(R"({"cmd":"status","x":{"cmd":1,"a":{"cmd":2}},"y":[{"a":1},{"a":2}]})");
  ASSERT_TRUE(ok(r));
  EXPECT_EQ(r->cmd, "status");
}

TEST(ControlProtocol, SizeCap) {
  const std::string base = R"({"cmd":"status"})";
  std::string at_cap = base + std::string(kMaxControlLine - base.size(), ' ');
  ASSERT_EQ(at_cap.size(), kMaxControlLine);
  EXPECT_TRUE(ok(parse_control_request(at_cap)));
  auto over = parse_control_request(at_cap + " ");
  ASSERT_TRUE(refused(over));
  EXPECT_THAT(over.error().message, HasSubstr("too large"));
  EXPECT_TRUE(refused(parse_control_request(std::string(10 * kMaxControlLine, '{'))));
}

TEST(ControlProtocol, EncodeRoundTrip) {
  const ControlRequest cases[] = {
      {"status", false, "", {}},
      {"refresh", true, "", {}},
      {"refresh", false, "{}", {}},
      {"nft-uninstall", false, R"({"yes":true})", {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.cmd);
    auto line = encode_control_request(c);
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.back(), '\n') << "one request per line";
    EXPECT_EQ(line.find('\n'), line.size() - 1);
    auto back = parse_control_request(line);
    ASSERT_TRUE(ok(back));
    EXPECT_EQ(back->cmd, c.cmd);
    EXPECT_EQ(back->force, c.force);
    auto want = c.params.empty() ? nlohmann::json::object() : nlohmann::json::parse(c.params);
    EXPECT_EQ(nlohmann::json::parse(back->params), want);
  }
  // cmd/force in params do not override the explicit fields.
  auto enc = encode_control_request({"status", false, R"({"cmd":"reload","force":true})", {}});
  auto back = parse_control_request(enc);
  ASSERT_TRUE(ok(back));
  EXPECT_EQ(back->cmd, "status");
  EXPECT_THAT(enc, HasSubstr("\"force\":true")) << "params are sent as given";
}

// ---- log lines --------------------------------------------------------------------------

TEST(LogFormat, QuotingTable) {
  using log::Field;
  using log::Level;
  struct Case {
    std::string got;
    std::string_view want;
  };
  const Case cases[] = {
      {log::format(Level::info, "start", {}), "level=info event=start"},
      {log::format(Level::debug, "x", {{"k", "v"}}), "level=debug event=x k=v"},
      {log::format(Level::warn, "x", {{"url", "https://a.example/p?q=1"}}),
       "level=warn event=x url=\"https://a.example/p?q=1\""},
      {log::format(Level::error, "x", {{"msg", "two words"}}), "level=error event=x msg=\"two words\""},
      {log::format(Level::info, "x", {{"q", "say \"hi\""}}), R"(level=info event=x q="say \"hi\"")"},
      {log::format(Level::info, "x", {{"p", "C:\\dir"}}), R"(level=info event=x p="C:\\dir")"},
      {log::format(Level::info, "x", {{"e", ""}}), "level=info event=x e=\"\""},
      {log::format(Level::info, "x", {{"nl", "a\nb"}}), "level=info event=x nl=\"a\\nb\""},
      {log::format(Level::info, "x", {{"tab", "a\tb"}}), "level=info event=x tab=\"a\tb\""},
      {log::format(Level::info, "x", {{"n", 42}, {"neg", -7}, {"ok", true}, {"no", false}}),
       "level=info event=x n=42 neg=-7 ok=true no=false"},
      {log::format(Level::info, "x", {{"null", static_cast<const char*>(nullptr)}}), "level=info event=x null=\"\""},
      {log::format(Level::info, "two words", {}), "level=info event=\"two words\""},
  };
  for (const auto& c : cases) EXPECT_EQ(c.got, c.want);
}

TEST(LogFormat, OneEventIsOneLine) {
  auto line = log::format(log::Level::error, "refresh_failed",
                          {{"error", "line 1\nline 2\r\nline 3"}, {"body", std::string(300, 'x') + "\n"}});
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
}

}  // namespace
}  // namespace og
