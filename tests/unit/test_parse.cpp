// Parsers for range-source answers: text lists, the JSON API, and the body dispatcher.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "doubles/api_json_reference.hpp"
#include "ranges/parse.hpp"
#include "test_support.hpp"

namespace og::ranges {
namespace {

using test::ok;
using test::read_file;
using test::refused;
using test::test_data;
using ::testing::HasSubstr;
using ::testing::Not;

std::size_t count(const ParsedRanges& r, Family f) {
  std::size_t n = 0;
  for (const auto& p : r.prefixes) n += p.family() == f;
  return n;
}

// ---- text lists -------------------------------------------------------------------------

TEST(ParseTextList, SharedFilesWithoutTrailingNewline) {
  const auto v4 = read_file(test_data("ips-v4.txt"));
  const auto v6 = read_file(test_data("ips-v6.txt"));
  ASSERT_FALSE(v4.empty());
  ASSERT_NE(v4.back(), '\n') << "test data is supposed to lack the final newline";
  ASSERT_NE(v6.back(), '\n');

  auto r4 = parse_text_list(v4);
  ASSERT_TRUE(ok(r4));
  EXPECT_EQ(r4->prefixes.size(), 15u);
  EXPECT_EQ(count(*r4, Family::v4), 15u);
  EXPECT_EQ(r4->prefixes.back().to_string(), "131.0.72.0/22");  // the last line, no newline after it

  auto r6 = parse_text_list(v6);
  ASSERT_TRUE(ok(r6));
  EXPECT_EQ(r6->prefixes.size(), 7u);
  EXPECT_EQ(count(*r6, Family::v6), 7u);
  EXPECT_EQ(r6->prefixes.back().to_string(), "2c0f:f248::/32");

  // Same through the dispatcher, as the text endpoints label them.
  auto b4 = parse_body(v4, "text/plain; charset=utf-8", false);
  ASSERT_TRUE(ok(b4));
  EXPECT_EQ(b4->prefixes.size(), 15u);
  auto b6 = parse_body(v6, "text/plain", false);
  ASSERT_TRUE(ok(b6));
  EXPECT_EQ(b6->prefixes.size(), 7u);
}

TEST(ParseTextList, ConcatenatedFilesAreRefusedNotMerged) {
  // `cat ips-v4.txt ips-v6.txt`: the last v4 line runs into the first v6 line.
  const auto cat = read_file(test_data("ips-v4.txt")) + read_file(test_data("ips-v6.txt"));
  auto r = parse_text_list(cat);
  ASSERT_TRUE(refused(r)) << "produced " << r->prefixes.size() << " prefixes";
  EXPECT_THAT(r.error().message, HasSubstr("line 15"));
  EXPECT_THAT(r.error().message, HasSubstr("131.0.72.0/222400:cb00::/32"));
  EXPECT_TRUE(refused(parse_body(cat, "text/plain", false)));
  EXPECT_TRUE(refused(parse_body(cat, "", false)));  // file:// sources are sniffed

  // The classic v4 + v4 variant.
  const auto twice = read_file(test_data("ips-v4.txt")) + read_file(test_data("ips-v4.txt"));
  auto r2 = parse_text_list(twice);
  ASSERT_TRUE(refused(r2));
  EXPECT_THAT(r2.error().message, HasSubstr("131.0.72.0/22173.245.48.0/20"));

  // With the newline in between it is fine.
  auto joined = parse_text_list(read_file(test_data("ips-v4.txt")) + "\n" + read_file(test_data("ips-v6.txt")));
  ASSERT_TRUE(ok(joined));
  EXPECT_EQ(count(*joined, Family::v4), 15u);
  EXPECT_EQ(count(*joined, Family::v6), 7u);
}

struct TextCase {
  std::string_view name;
  std::string_view body;
  std::vector<std::string> want;  // empty + !ok = refused
  bool ok;
  std::string_view why = "";
};

TEST(ParseTextList, Table) {
  const TextCase cases[] = {
      {"LF", "192.0.2.0/24\n198.51.100.0/24\n", {"192.0.2.0/24", "198.51.100.0/24"}, true},
      {"CRLF", "192.0.2.0/24\r\n198.51.100.0/24\r\n", {"192.0.2.0/24", "198.51.100.0/24"}, true},
      {"CRLF, no final newline", "192.0.2.0/24\r\n198.51.100.0/24", {"192.0.2.0/24", "198.51.100.0/24"}, true},
      {"blank lines", "\n\n192.0.2.0/24\n\n\r\n2001:db8::/32\n\n", {"192.0.2.0/24", "2001:db8::/32"}, true},
      {"spaces and tabs around", "  192.0.2.0/24\t\n\t2001:db8::/32  \r\n", {"192.0.2.0/24", "2001:db8::/32"}, true},
      {"empty", "", {}, true},
      {"only blank lines", "\n\r\n \t\n", {}, true},
      {"duplicates kept (validator removes)", "192.0.2.0/24\n192.0.2.0/24", {"192.0.2.0/24", "192.0.2.0/24"}, true},
      {"two on one line", "192.0.2.0/24 198.51.100.0/24\n", {}, false, "line 1"},
      {"CR-only line ends", "192.0.2.0/24\r198.51.100.0/24\r", {}, false, "line 1"},
      {"comment line", "# Cloudflare\n192.0.2.0/24\n", {}, false, "line 1"},
      {"host bits on line 3", "192.0.2.0/24\n\n104.16.0.1/13\n", {}, false, "line 3"},
      {"truncated last line", "192.0.2.0/24\n198.51.10", {}, false, "line 2"},
      {"missing length", "192.0.2.0\n", {}, false, "missing /length"},
      {"JSON as text", "{\"result\":{}}", {}, false, "line 1"},
      {"NUL byte", std::string_view("192.0.2.0/24\n\0", 14), {}, false, "line 2"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.name));
    auto r = parse_text_list(c.body);
    if (!c.ok) {
      ASSERT_TRUE(refused(r));
      EXPECT_THAT(r.error().message, HasSubstr(std::string(c.why)));
      continue;
    }
    ASSERT_TRUE(ok(r));
    std::vector<std::string> got;
    for (const auto& p : r->prefixes) got.push_back(p.to_string());
    EXPECT_EQ(got, c.want);
    EXPECT_TRUE(r->etag.empty());
  }
}

// ---- body dispatcher --------------------------------------------------------------------

constexpr std::string_view kChallengePage =
    "<!DOCTYPE html>\n<html lang=\"en-US\"><head><title>Just a moment...</title></head>"
    "<body>Checking your browser</body></html>\n";

TEST(ParseBody, RefusesWhatIsNotARangeList) {
  const std::string json = read_file(test_data("cloudflare-ips-v4v6.json"));
  struct Case {
    std::string_view name;
    std::string body;
    std::string_view content_type;
    std::string_view why;
  };
  const Case cases[] = {
      {"empty body", "", "application/json", "empty body"},
      {"empty text body", "", "text/plain", "empty body"},
      {"whitespace body", " \r\n\t\n", "text/plain", "empty body"},
      {"empty file", "", "", "empty body"},
      {"HTML as text/html", std::string(kChallengePage), "text/html; charset=UTF-8", "HTML"},
      {"HTML as text/plain", std::string(kChallengePage), "text/plain", "HTML"},
      {"HTML as application/json", std::string(kChallengePage), "application/json", "HTML"},
      {"HTML from a file", std::string(kChallengePage), "", "HTML"},
      {"HTML after blank lines", "\r\n\n  " + std::string(kChallengePage), "text/plain", "HTML"},
      {"XML", "<?xml version=\"1.0\"?><Error/>", "application/xml", "HTML"},
      {"ranges labelled text/html", "192.0.2.0/24\n", "text/html", "unexpected Content-Type \"text/html\""},
      {"octet-stream", json, "application/octet-stream", "unexpected Content-Type"},
      {"json labelled text/plain", json, "text/plain", "line 1"},
      {"text labelled json", "192.0.2.0/24\n", "application/json", "not valid JSON"},
      {"JSON with empty lists", R"({"success":true,"errors":[],"result":{"ipv4_cidrs":[],"ipv6_cidrs":[]}})",
       "application/json", "lists no prefixes"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.name));
    auto r = parse_body(c.body, c.content_type, false);
    ASSERT_TRUE(refused(r));
    EXPECT_THAT(r.error().message, HasSubstr(std::string(c.why)));
  }
}

TEST(ParseBody, PicksTheParserFromContentTypeOrSniffs) {
  const std::string json = read_file(test_data("cloudflare-ips-v4v6.json"));
  for (std::string_view ct :
       {"application/json", "application/json; charset=utf-8", "Application/JSON", " application/json ;x=y", ""}) {
    SCOPED_TRACE(std::string(ct));
    auto r = parse_body(json, ct, false);
    ASSERT_TRUE(ok(r));
    EXPECT_EQ(count(*r, Family::v4), 15u);
    EXPECT_EQ(count(*r, Family::v6), 7u);
    EXPECT_EQ(r->etag, "placeholder-etag-snapshot-2026-07");
  }
  auto text = parse_body("\n192.0.2.0/24\n", "", false);
  ASSERT_TRUE(ok(text));
  EXPECT_EQ(text->prefixes.size(), 1u);
}

// ---- JSON API ---------------------------------------------------------------------------

TEST(ParseApiJson, SharedSnapshot) {
  auto r = parse_api_json(read_file(test_data("cloudflare-ips-v4v6.json")), false);
  ASSERT_TRUE(ok(r));
  EXPECT_EQ(count(*r, Family::v4), 15u);
  EXPECT_EQ(count(*r, Family::v6), 7u);
  EXPECT_EQ(r->prefixes.front().to_string(), "173.245.48.0/20");
  EXPECT_EQ(r->etag, "placeholder-etag-snapshot-2026-07");
}

TEST(ParseApiJson, EmbeddedCopyMatchesSharedSnapshot) {
  EXPECT_EQ(read_file(test::agent_data("cloudflare-ips-v4v6.json")), read_file(test_data("cloudflare-ips-v4v6.json")));
}

TEST(ParseApiJson, TestEdgeRanges) {
  auto r = parse_api_json(read_file(test_data("test-edge-ips.json")), false);
  ASSERT_TRUE(ok(r));
  std::vector<std::string> got;
  for (const auto& p : r->prefixes) got.push_back(p.to_string());
  EXPECT_EQ(got, (std::vector<std::string>{"198.51.100.0/24", "192.0.2.0/25", "2001:db8:cf::/48"}));
  EXPECT_EQ(r->etag, "test-etag-1");
}

struct JsonCase {
  std::string_view name;
  std::string_view body;
  std::string_view why;
};

TEST(ParseApiJson, RefusedAnswers) {
  const JsonCase cases[] = {
      {"success false with errors",
       R"({"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null})",
       "success:false (10000 Authentication error)"},
      {"success false, two errors", R"({"success":false,"errors":[{"code":1,"message":"a"},{"code":2,"message":"b"}]})",
       "1 a; 2 b"},
      {"success false, no errors", R"({"success":false,"errors":[]})", "success:false"},
      {"success true with errors",
       R"({"success":true,"errors":[{"code":9109,"message":"Rate limited"}],"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":["2001:db8::/32"]}})",
       "success:true with errors: 9109 Rate limited"},
      {"success missing", R"({"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[]}})", "boolean \"success\""},
      {"success as string", R"({"success":"true","result":{"ipv4_cidrs":[],"ipv6_cidrs":[]}})", "boolean \"success\""},
      {"missing result", R"({"success":true,"errors":[]})", "no \"result\" object"},
      {"null result", R"({"success":true,"errors":[],"result":null})", "no \"result\" object"},
      {"result is a list", R"({"success":true,"result":["192.0.2.0/24"]})", "no \"result\" object"},
      {"missing ipv6 list", R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"]}})", "result.ipv6_cidrs"},
      {"list is a string", R"({"success":true,"result":{"ipv4_cidrs":"192.0.2.0/24","ipv6_cidrs":[]}})",
       "result.ipv4_cidrs is not a list"},
      {"number in list", R"({"success":true,"result":{"ipv4_cidrs":[3232235520],"ipv6_cidrs":[]}})",
       "result.ipv4_cidrs[0] is not a string"},
      {"v6 in the v4 list",
       R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24","2400:cb00::/32"],"ipv6_cidrs":[]}})",
       "result.ipv4_cidrs[1]: 2400:cb00::/32 is not an IPv4 prefix"},
      {"v4 in the v6 list", R"({"success":true,"result":{"ipv4_cidrs":[],"ipv6_cidrs":["192.0.2.0/24"]}})",
       "result.ipv6_cidrs[0]: 192.0.2.0/24 is not an IPv6 prefix"},
      {"host bits", R"({"success":true,"result":{"ipv4_cidrs":["104.16.0.1/13"],"ipv6_cidrs":[]}})",
       "canonical form is 104.16.0.0/13"},
      {"concatenated inside JSON",
       R"({"success":true,"result":{"ipv4_cidrs":["1.2.3.4/22103.21.244.0/22"],"ipv6_cidrs":[]}})",
       "result.ipv4_cidrs[0]"},
      {"etag not a string", R"({"success":true,"result":{"ipv4_cidrs":[],"ipv6_cidrs":[],"etag":7}})",
       "result.etag is not a string"},
      {"not an object", R"(["192.0.2.0/24"])", "not a JSON object"},
      {"not JSON", "192.0.2.0/24", "not valid JSON"},
      {"empty", "", "not valid JSON"},
      {"trailing garbage", R"({"success":true,"result":{"ipv4_cidrs":[],"ipv6_cidrs":[]}} x)", "not valid JSON"},
      {"two documents", R"({"success":true}{"success":true})", "not valid JSON"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.name));
    auto r = parse_api_json(c.body, false);
    ASSERT_TRUE(refused(r));
    EXPECT_THAT(r.error().message, HasSubstr(std::string(c.why)));
  }
}

// The CIDR lists are read with a SAX handler, the rest of the answer into a document; the
// whole answer used to be one document. Both must agree on every answer, error text included:
// the same grammar, types, duplicate keys (the last one wins), nesting, numbers and order of
// checks.
TEST(ParseApiJson, AgreesWithTheDocumentParser) {
  const std::string_view bodies[] = {
      R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":["2001:db8::/32"],"etag":"e"}})",
      // duplicate keys, at each level
      R"({"success":true,"result":{"ipv4_cidrs":["x"],"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[]}})",
      R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv4_cidrs":["x"],"ipv6_cidrs":[]}})",
      R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv4_cidrs":7,"ipv6_cidrs":[]}})",
      R"({"success":true,"result":{"ipv4_cidrs":7,"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[]}})",
      R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[]},"result":{"ipv6_cidrs":[]}})",
      R"({"success":true,"result":{"ipv4_cidrs":["x"],"ipv6_cidrs":[]},"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[]}})",
      R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[]},"result":null})",
      R"({"success":false,"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[]}})",
      // entries that are not strings, nested ones included, before and after a bad prefix
      R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24",[["198.51.100.0/24"]],"x"],"ipv6_cidrs":[]}})",
      R"({"success":true,"result":{"ipv4_cidrs":["x",{"a":["192.0.2.0/24"]}],"ipv6_cidrs":[]}})",
      R"({"success":true,"result":{"ipv4_cidrs":[null,true,1,-1,1.5e999,18446744073709551616],"ipv6_cidrs":[]}})",
      R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[{}]}})",
      R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[[]]}})",
      // lists in the wrong place are not the answer's lists
      R"({"success":true,"result":{"x":{"ipv4_cidrs":["192.0.2.0/24"]},"ipv4_cidrs":[],"ipv6_cidrs":[]}})",
      R"({"success":true,"ipv4_cidrs":["192.0.2.0/24"],"result":{"ipv4_cidrs":[],"ipv6_cidrs":[]}})",
      R"({"success":true,"result":[{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[]}]})",
      R"([{"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[]}}])",
      // China: the third list is read only when asked for
      R"({"success":true,"result":{"ipv4_cidrs":[],"ipv6_cidrs":[],"jdcloud_cidrs":["2001:db8::/32","192.0.2.0/24"]}})",
      R"({"success":true,"result":{"ipv4_cidrs":[],"ipv6_cidrs":[],"jdcloud_cidrs":[1]}})",
      R"({"success":true,"result":{"ipv4_cidrs":[],"ipv6_cidrs":[],"jdcloud_cidrs":"x"}})",
      // errors, etags, and what is not JSON at all
      R"({"success":false,"errors":[{"code":1,"message":"a"},"b",[1]],"result":{"ipv4_cidrs":["x"]}})",
      R"({"success":true,"errors":[1],"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[]}})",
      R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[],"etag":7}})",
      R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[],"etag":"a","etag":"b"}})",
      R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[]}} x)",
      R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24","\u0031.0.0.0/8"],"ipv6_cidrs":[]}})",
      "{\"success\":true,\"result\":{\"ipv4_cidrs\":[\"\xff\"],\"ipv6_cidrs\":[]}}",
      "{\"success\":true,\"result\":{\"ipv4_cidrs\":[\"192.0.2.0/24\"]",
      "",
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
  };
  // Deep nesting, inside a list and outside it.
  std::string deep_in_list = R"({"success":true,"result":{"ipv4_cidrs":[)" + std::string(10000, '[') +
                             std::string(10000, ']') + R"(],"ipv6_cidrs":[]}})";
  std::string deep_outside = R"({"success":true,"x":)" + std::string(10000, '[') + std::string(10000, ']') +
                             R"(,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[]}})";
  std::vector<std::string> all(std::begin(bodies), std::end(bodies));
  all.push_back(deep_in_list);
  all.push_back(deep_outside);
  // Every cut of an accepted answer with each kind of entry.
  const std::string whole = std::string(bodies[0]);
  for (std::size_t n = 0; n < whole.size(); ++n) all.push_back(whole.substr(0, n));
  for (const auto& body : all) {
    for (bool china : {false, true}) {
      SCOPED_TRACE(body.substr(0, 200) + (china ? " (china)" : ""));
      auto got = parse_api_json(body, china);
      auto want = test::parse_api_json_dom(body, china);
      ASSERT_EQ(got.has_value(), want.has_value()) << (got ? want.error().message : got.error().message);
      if (want) {
        EXPECT_EQ(got->prefixes, want->prefixes);
        EXPECT_EQ(got->etag, want->etag);
      } else {
        EXPECT_EQ(got.error().message, want.error().message);
      }
    }
  }
}

TEST(ParseApiJson, ChinaNetworkRequiresJdcloudList) {
  const std::string without = read_file(test_data("test-edge-ips.json"));
  auto r = parse_api_json(without, true);
  ASSERT_TRUE(refused(r));
  EXPECT_THAT(r.error().message, HasSubstr("China network"));
  EXPECT_THAT(r.error().message, HasSubstr("jdcloud_cidrs"));
  EXPECT_TRUE(ok(parse_api_json(without, false)));

  constexpr std::string_view with = R"({"success":true,"errors":[],"result":{
      "ipv4_cidrs":["192.0.2.0/25"],"ipv6_cidrs":["2001:db8:cf::/48"],
      "jdcloud_cidrs":["198.51.100.0/24","2001:db8:cd::/48"],"etag":"e"}})";
  auto china = parse_api_json(with, true);
  ASSERT_TRUE(ok(china));
  EXPECT_EQ(count(*china, Family::v4), 2u);  // jdcloud holds both families
  EXPECT_EQ(count(*china, Family::v6), 2u);
  auto no_china = parse_api_json(with, false);  // the list is ignored when not asked for
  ASSERT_TRUE(ok(no_china));
  EXPECT_EQ(no_china->prefixes.size(), 2u);

  auto bad = parse_api_json(
      R"({"success":true,"result":{"ipv4_cidrs":[],"ipv6_cidrs":[],"jdcloud_cidrs":["1.2.3.4/8"]}})", true);
  ASSERT_TRUE(refused(bad));
  EXPECT_THAT(bad.error().message, HasSubstr("jdcloud_cidrs[0]"));
}

TEST(ParseApiJson, LongEtagIsCut) {
  std::string body = R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[],"etag":")" +
                     std::string(5000, 'e') + R"("}})";
  auto r = parse_api_json(body, false);
  ASSERT_TRUE(ok(r));
  EXPECT_EQ(r->etag.size(), 256u);
}

TEST(ParseApiJson, LongEtagIsCutOnACharacterBoundary) {
  // 255 ASCII bytes then a 2-byte character: a cut at 256 would split it.
  std::string body = R"({"success":true,"result":{"ipv4_cidrs":["192.0.2.0/24"],"ipv6_cidrs":[],"etag":")" +
                     std::string(255, 'e') + "\xc3\xa9" + R"("}})";
  auto r = parse_api_json(body, false);
  ASSERT_TRUE(ok(r));
  EXPECT_EQ(r->etag, std::string(255, 'e'));
  EXPECT_NO_THROW((void)nlohmann::json(r->etag).dump()) << "status JSON must be able to show it";
}

// Error messages quote untrusted input; they end up in logs and in status JSON, whose encoder
// throws on invalid UTF-8. Raw bytes are shown escaped.
TEST(ParseErrors, UntrustedBytesAreEscapedInMessages) {
  struct Case {
    std::string_view name;
    Result<ParsedRanges> r;
    std::string_view shows;
  };
  const std::string long_utf8 = "1.2.3.4/" + [] {
    std::string s;
    for (int i = 0; i < 60; ++i) s += "\xc3\xa9";
    return s;
  }();
  const Case cases[] = {
      {"byte 0xff in a text line", parse_text_list("192.0.2.0/24\n192.0.2.\xff/24\n"), "192.0.2.\\xff/24"},
      {"control byte", parse_text_list("192.0.2.0/2\x01"), "192.0.2.0/2\\x01"},
      {"cut inside a UTF-8 character", parse_text_list(long_utf8), "1.2.3.4/\\xc3\\xa9"},
      {"content type", parse_body("192.0.2.0/24", "text/\xc3", false), "text/\\xc3"},
      {"address part", parse_text_list("\xfe\xff::/32"), "\\xfe\\xff::/32"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.name));
    ASSERT_TRUE(refused(c.r));
    EXPECT_THAT(c.r.error().message, HasSubstr(std::string(c.shows)));
    EXPECT_NO_THROW((void)nlohmann::json(c.r.error().message).dump()) << c.r.error().message;
  }
}

// Every strict prefix of a valid answer is what a cut connection delivers: none may be taken
// as a (smaller) range list, unless all that was cut is trailing whitespace.
TEST(ParseApiJson, EveryTruncationIsRefused) {
  for (auto name : {"cloudflare-ips-v4v6.json", "test-edge-ips.json"}) {
    SCOPED_TRACE(name);
    const std::string doc = read_file(test_data(name));
    auto full = parse_api_json(doc, false);
    ASSERT_TRUE(ok(full));
    const auto end = doc.find_last_not_of(" \t\r\n") + 1;
    for (std::size_t cut = 0; cut < doc.size(); ++cut) {
      std::string_view part(doc.data(), cut);
      auto r = parse_api_json(part, false);
      auto b = parse_body(part, "application/json", false);
      if (cut >= end) {  // only whitespace missing: the same answer
        ASSERT_TRUE(ok(r)) << "cut at " << cut;
        EXPECT_EQ(r->prefixes, full->prefixes);
        continue;
      }
      ASSERT_TRUE(refused(r)) << "cut at " << cut << " of " << doc.size() << " accepted with " << r->prefixes.size()
                              << " prefixes";
      ASSERT_TRUE(refused(b)) << "cut at " << cut;
    }
  }
}

TEST(ParseTextList, TruncationNeverYieldsAWrongPrefix) {
  // A cut text list is not detectable as a whole (no terminator), but the last line must be
  // either a prefix that was in the list or refused: never something else.
  const std::string doc = read_file(test_data("ips-v4.txt")) + "\n" + read_file(test_data("ips-v6.txt"));
  auto full = parse_text_list(doc);
  ASSERT_TRUE(ok(full));
  for (std::size_t cut = 0; cut <= doc.size(); ++cut) {
    auto r = parse_text_list(std::string_view(doc.data(), cut));
    if (!r) continue;
    for (const auto& p : r->prefixes) {
      bool known = std::find(full->prefixes.begin(), full->prefixes.end(), p) != full->prefixes.end();
      if (known) continue;
      // A shorter length that still parses ("/22" cut to "/2") would be broader and have host
      // bits set for every real range, so it is refused, never returned.
      ADD_FAILURE() << "cut at " << cut << " produced " << p.to_string();
    }
  }
}

}  // namespace
}  // namespace og::ranges
