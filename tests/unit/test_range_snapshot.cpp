// The range snapshot codec (export file and state file): round trips, the exact bytes both
// files had before there was one codec, and every refusal.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "originguard/range_snapshot.hpp"
#include "ranges/store.hpp"
#include "test_support.hpp"

namespace og {
namespace {

using test::ok;
using test::refused;
using ::testing::HasSubstr;

// A state file exactly as RangeStore::serialise wrote it before the codec existed.
constexpr std::string_view kStateFileBeforeTheCodec =
    "{\n"
    "  \"etag\": \"test-etag-1\",\n"
    "  \"etags\": {\n    \"https://api.cloudflare.com/client/v4/ips\": \"W/\\\"abc\\\"\"\n  },\n"
    "  \"fetched_at\": 1790000000,\n"
    "  \"ipv4\": [\n    \"192.0.2.0/25\",\n    \"198.51.100.0/24\"\n  ],\n"
    "  \"ipv6\": [\n    \"2001:db8:cf::/48\"\n  ],\n"
    "  \"source\": \"https://api.cloudflare.com/client/v4/ips\",\n"
    "  \"version\": 1\n"
    "}\n";

RangeSet sample_set() {
  return RangeSet::from(
      {*parse_prefix("198.51.100.0/24"), *parse_prefix("192.0.2.0/25"), *parse_prefix("2001:db8:cf::/48")});
}

RangeSnapshot export_snapshot() {
  RangeSnapshot s;
  s.ranges = sample_set();
  s.source = "https://api.cloudflare.com/client/v4/ips";
  s.generated_at = "2026-11-30T01:00:00Z";
  return s;
}

RangeSnapshot state_snapshot() {
  RangeSnapshot s;
  s.ranges = sample_set();
  s.source = "https://api.cloudflare.com/client/v4/ips";
  s.fetch = RangeSnapshot::Fetch{"test-etag-1",
                                 {{"https://api.cloudflare.com/client/v4/ips", "W/\"abc\""}},
                                 std::chrono::system_clock::time_point(std::chrono::seconds(1'790'000'000))};
  return s;
}

TEST(RangeSnapshot, RoundTrips) {
  for (const auto& s : {export_snapshot(), state_snapshot()}) {
    auto back = decode_range_snapshot(encode_range_snapshot(s));
    ASSERT_TRUE(ok(back));
    EXPECT_EQ(*back, s);
  }
  auto never = state_snapshot();
  never.fetch->fetched_at.reset();
  never.fetch->etags.clear();
  auto back = decode_range_snapshot(encode_range_snapshot(never));
  ASSERT_TRUE(ok(back));
  EXPECT_EQ(*back, never);
}

// The bytes the agent wrote before the codec existed (export_ranges, RangeStore::serialise):
// files already on disk, and every reader of them, see no change.
TEST(RangeSnapshot, ExportFileBytesAreUnchanged) {
  EXPECT_EQ(encode_range_snapshot(export_snapshot()),
            "{\n"
            "  \"generated_at\": \"2026-11-30T01:00:00Z\",\n"
            "  \"ipv4\": [\n    \"192.0.2.0/25\",\n    \"198.51.100.0/24\"\n  ],\n"
            "  \"ipv6\": [\n    \"2001:db8:cf::/48\"\n  ],\n"
            "  \"source\": \"https://api.cloudflare.com/client/v4/ips\",\n"
            "  \"version\": 1\n"
            "}\n");
}

TEST(RangeSnapshot, StateFileBytesAreUnchanged) {
  EXPECT_EQ(encode_range_snapshot(state_snapshot()), kStateFileBeforeTheCodec);
}

// The encoder streams; the document it replaced (nlohmann, dump(2), keys sorted) is the
// reference for the bytes. A set large enough to take many pieces, odd strings included, and
// write_range_snapshot puts exactly those bytes in the file.
TEST(RangeSnapshot, StreamedBytesEqualTheDocumentDump) {
  std::vector<Prefix> ps;
  for (std::uint32_t i = 0; i < 30000; ++i) {
    Prefix v4;
    v4.addr.bytes = {static_cast<std::uint8_t>(11 + i / 65536), static_cast<std::uint8_t>(i / 256),
                     static_cast<std::uint8_t>(i % 256), 0};
    v4.len = 24;
    ps.push_back(v4);
    Prefix v6;
    v6.addr.family = Family::v6;
    v6.addr.bytes = {0x20, 0x01, 0x0d, 0xb8, static_cast<std::uint8_t>(i / 256), static_cast<std::uint8_t>(i % 256)};
    v6.len = 48;
    if (i % 3 == 0) ps.push_back(v6);
  }
  for (const bool state : {false, true}) {
    RangeSnapshot s = state ? state_snapshot() : export_snapshot();
    s.ranges = RangeSet::from(ps);
    s.source = "https://x/\"quoted\"\n\xff";
    if (state) s.fetch->etags["https://y/\x01"] = "\xfe";
    nlohmann::json j;
    j["version"] = 1;
    j["ipv4"] = s.ranges.strings(Family::v4);
    j["ipv6"] = s.ranges.strings(Family::v6);
    j["source"] = s.source;
    if (s.generated_at) j["generated_at"] = *s.generated_at;
    if (s.fetch) {
      j["etag"] = s.fetch->etag;
      j["etags"] = s.fetch->etags;
      j["fetched_at"] =
          s.fetch->fetched_at
              ? nlohmann::json(
                    std::chrono::duration_cast<std::chrono::seconds>(s.fetch->fetched_at->time_since_epoch()).count())
              : nlohmann::json(nullptr);
    }
    const std::string want = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    EXPECT_EQ(encode_range_snapshot(s), want);
    std::size_t pieces = 0, biggest = 0;
    encode_range_snapshot(s, [&](std::string_view p) {
      ++pieces;
      biggest = std::max(biggest, p.size());
    });
    EXPECT_GT(pieces, 5U);
    EXPECT_LE(biggest, 65U * 1024);
    test::TempDir dir;
    ASSERT_TRUE(ok(write_range_snapshot(dir.path() / "snap.json", s)));
    EXPECT_EQ(test::read_file(dir.path() / "snap.json"), want);
  }
}

TEST(RangeSnapshot, NonUtf8DoesNotThrow) {
  auto s = state_snapshot();
  s.fetch->etag = "\xff\xfe";
  std::string text;
  EXPECT_NO_THROW(text = encode_range_snapshot(s));
  EXPECT_TRUE(ok(decode_range_snapshot(text)));
}

TEST(RangeSnapshot, EveryRefusal) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"", "not a JSON object"},
      {"<html>", "not a JSON object"},
      {"[1]", "not a JSON object"},
      {R"({"version":1,"ipv4":["192.0.2.0/24"])", "not a JSON object"},
      {R"({"ipv4":[],"ipv6":[]})", "unknown version"},
      {R"({"version":2,"ipv4":[],"ipv6":[]})", "unknown version"},
      {R"({"version":"1","ipv4":[],"ipv6":[]})", "unknown version"},
      {R"({"version":1.0,"ipv4":[],"ipv6":[]})", "unknown version"},
      {R"({"version":1,"ipv6":[]})", "missing list ipv4"},
      {R"({"version":1,"ipv4":[]})", "missing list ipv6"},
      {R"({"version":1,"ipv4":"192.0.2.0/24","ipv6":[]})", "missing list ipv4"},
      {R"({"version":1,"ipv4":[7],"ipv6":[]})", "non-string in ipv4"},
      {R"({"version":1,"ipv4":[],"ipv6":[null]})", "non-string in ipv6"},
      {R"({"version":1,"ipv4":["192.0.2.1/24"],"ipv6":[]})", "host bits set"},
      {R"({"version":1,"ipv4":["2001:db8::/32"],"ipv6":[]})", "of the other family"},
      {R"({"version":1,"ipv4":[],"ipv6":["192.0.2.0/24"]})", "of the other family"},
      {R"({"version":1,"ipv4":[],"ipv6":[],"fetched_at":-1})", "fetched_at out of range"},
      {R"({"version":1,"ipv4":[],"ipv6":[],"fetched_at":4294967297})", "fetched_at out of range"},
      {R"({"version":1,"ipv4":[],"ipv6":[],"fetched_at":18446744073709551615})", "fetched_at out of range"},
  };
  for (const auto& [text, why] : cases) {
    SCOPED_TRACE(std::string(text));
    auto r = decode_range_snapshot(text);
    ASSERT_TRUE(refused(r));
    EXPECT_THAT(r.error().message, HasSubstr(std::string(why)));
  }
}

TEST(RangeSnapshot, ListsMayBeMissingWhenAsked) {
  auto r = decode_range_snapshot(R"({"version":1,"ipv4":["192.0.2.0/24"]})", {.both_lists = false});
  ASSERT_TRUE(ok(r));
  EXPECT_EQ(r->ranges.size(), 1u);
  // Present but wrong stays wrong.
  EXPECT_TRUE(refused(decode_range_snapshot(R"({"version":1,"ipv6":{}})", {.both_lists = false})));
}

TEST(RangeSnapshot, OddOptionalFieldsAreIgnored) {
  auto r = decode_range_snapshot(
      R"({"version":1,"ipv4":["192.0.2.0/24"],"ipv6":[],"source":5,"generated_at":7,"etag":null,"etags":{"a":"x","b":3},"fetched_at":"yesterday"})");
  ASSERT_TRUE(ok(r));
  EXPECT_EQ(r->source, "");
  EXPECT_FALSE(r->generated_at);
  ASSERT_TRUE(r->fetch);
  EXPECT_EQ(r->fetch->etag, "");
  EXPECT_EQ(r->fetch->etags, (std::map<std::string, std::string>{{"a", "x"}}));
  EXPECT_FALSE(r->fetch->fetched_at);
}

}  // namespace
}  // namespace og

namespace og::ranges {
namespace {

// A state file exactly as the agent wrote it before the codec: it must still load.
TEST(RangeSnapshot, StateFileFromBeforeTheCodecStillLoads) {
  test::TempDir dir;
  test::write_file(dir / "ranges.json", kStateFileBeforeTheCodec);
  auto r = RangeStore(dir.path()).load();
  ASSERT_TRUE(test::ok(r));
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->ranges, sample_set());
  EXPECT_EQ((*r)->etag, "test-etag-1");
  EXPECT_EQ((*r)->etags, (EtagMap{{"https://api.cloudflare.com/client/v4/ips", "W/\"abc\""}}));
  EXPECT_EQ((*r)->fetched_at, WallTime(std::chrono::seconds(1'790'000'000)));
  // Saved back byte for byte.
  const auto before = test::read_file(dir / "ranges.json");
  ASSERT_TRUE(test::ok(RangeStore(dir.path()).save(**r)));
  EXPECT_EQ(test::read_file(dir / "ranges.json"), before);
}

}  // namespace
}  // namespace og::ranges
