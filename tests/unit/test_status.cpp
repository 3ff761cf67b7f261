// `agentctl status --json` content and health, built from a snapshot of agent state.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "metrics.hpp"
#include "status.hpp"
#include "test_support.hpp"

namespace og {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::AnyOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

const ranges::WallTime kNow = ranges::WallTime(std::chrono::seconds(1'790'000'000));  // 2026-09-21T...

class StatusTest : public ::testing::Test {
 protected:
  StatusTest() {
    auto b = ranges::bootstrap_ranges();
    EXPECT_TRUE(test::ok(b));
    state_.current = *b;
    state_.current.source = "https://api.cloudflare.com/client/v4/ips";
    state_.current.etag = "abc";
    state_.current.fetched_at = kNow - 1h;
    state_.checked_at = kNow - 10min;
    snap_.config = &cfg_;
    snap_.refresh = &state_;
    snap_.now = kNow;
    snap_.started_at = kNow - 2h;
    snap_.next_refresh = 1800s;
  }
  std::vector<std::string> warning_texts() {
    std::vector<std::string> out;
    for (const auto& w : collect_warnings(snap_)) out.push_back(w.text);
    return out;
  }

  AgentConfig cfg_;
  RefreshState state_;
  AgentSnapshot snap_;
};

TEST_F(StatusTest, HealthyHasEveryRequiredField) {
  auto j = build_status(snap_);
  ASSERT_TRUE(j.contains("ranges"));
  const auto& r = j["ranges"];
  for (const char* key : {"ipv4", "ipv6", "source", "etag", "fetched_at", "age_s", "next_refresh_s", "last_error"})
    EXPECT_TRUE(r.contains(key)) << "ranges." << key;
  EXPECT_EQ(r["ipv4"], 15);
  EXPECT_EQ(r["ipv6"], 7);
  EXPECT_EQ(r["source"], "https://api.cloudflare.com/client/v4/ips");
  EXPECT_EQ(r["etag"], "abc");
  EXPECT_EQ(r["fetched_at"], rfc3339(kNow - 1h));
  EXPECT_EQ(r["age_s"], 3600);
  EXPECT_EQ(r["next_refresh_s"], 1800);
  EXPECT_TRUE(r["last_error"].is_null());
  EXPECT_EQ(r["ipv4_cidrs"].size(), 15u);
  EXPECT_EQ(r["ipv6_cidrs"].size(), 7u);
  ASSERT_TRUE(j["enforcers"].is_object());
  EXPECT_TRUE(j["enforcers"].empty());
  ASSERT_TRUE(j["warnings"].is_array());
  EXPECT_TRUE(j["warnings"].empty()) << j["warnings"].dump();
  EXPECT_EQ(j["health"], "healthy");
  EXPECT_EQ(j["version"], OG_VERSION);
  EXPECT_EQ(j["agent"]["uptime_s"], 7200);
  EXPECT_EQ(j["agent"]["mode"], "enforce");
  EXPECT_EQ(j["agent"]["config"], "(built-in defaults)");
}

// The agent hands status (and metrics) the edge set it merged once per change; they report
// that set instead of merging the ranges again.
TEST_F(StatusTest, ReportsTheEffectiveSetItIsGiven) {
  const RangeSet held = RangeSet::from({*parse_prefix("198.51.100.0/24"), *parse_prefix("2001:db8:cf::/48")});
  snap_.effective = &held;
  auto j = build_status(snap_);
  EXPECT_EQ(j["ranges"]["ipv4"], 1);
  EXPECT_EQ(j["ranges"]["ipv6"], 1);
  EXPECT_EQ(j["ranges"]["ipv4_cidrs"], nlohmann::json::array({"198.51.100.0/24"}));
  const auto m = build_metrics(snap_);
  EXPECT_NE(m.find("originguard_ranges_prefixes{family=\"ipv4\"} 1\n"), std::string::npos) << m;
}

TEST_F(StatusTest, Rfc3339) {
  EXPECT_EQ(rfc3339(ranges::WallTime{}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(rfc3339(ranges::WallTime(std::chrono::seconds(1'790'000'000))), "2026-09-21T14:13:20Z");
}

TEST_F(StatusTest, LastErrorMakesItDegraded) {
  state_.last_error = "https://api.cloudflare.com/client/v4/ips: HTTP 403 (HTML page: challenge or error page?)";
  state_.last_error_at = kNow - 5min;
  state_.consecutive_failures = 3;
  auto j = build_status(snap_);
  EXPECT_EQ(j["health"], "degraded");
  EXPECT_EQ(j["ranges"]["last_error"], *state_.last_error);
  EXPECT_EQ(j["ranges"]["consecutive_failures"], 3);
  EXPECT_EQ(j["ranges"]["ipv4"], 15) << "the last good ranges stay in force";
  ASSERT_EQ(j["warnings"].size(), 1u);
  EXPECT_THAT(j["warnings"][0].get<std::string>(), HasSubstr("3 in a row"));
  EXPECT_THAT(j["warnings"][0].get<std::string>(), HasSubstr("HTTP 403"));
  EXPECT_THAT(build_metrics(snap_), HasSubstr("originguard_healthy 0\n"));
}

TEST_F(StatusTest, StaleRangesMakeItDegraded) {
  struct Case {
    std::chrono::seconds age;
    bool stale;
  };
  for (auto [age, stale] :
       {Case{1h, false}, Case{3 * 86400s, false}, Case{3 * 86400s + 1s, true}, Case{30 * 86400s, true}}) {
    SCOPED_TRACE(age.count());
    state_.current.fetched_at = kNow - age;
    auto j = build_status(snap_);
    EXPECT_EQ(j["health"], stale ? "degraded" : "healthy");
    EXPECT_EQ(j["ranges"]["age_s"], age.count());
    if (stale) {
      ASSERT_EQ(j["warnings"].size(), 1u);
      EXPECT_THAT(j["warnings"][0].get<std::string>(), HasSubstr("stale"));
      EXPECT_THAT(j["warnings"][0].get<std::string>(), HasSubstr("stale_after 3d"));
    }
  }
}

// The wall clock jumps (an NTP step, `date -s`) while the agent runs: the ranges' age, their
// staleness and the uptime follow the steady clock, so a jump forward does not make fresh
// ranges stale and a jump back neither hides their age nor claims they come from the future.
TEST_F(StatusTest, WallClockJumpsChangeNeitherAgeNorStaleness) {
  const ranges::Clock::time_point t0{std::chrono::hours(1000)};
  state_.fetched_steady = t0 - 1h;  // fetched (wall kNow - 1h) an hour ago
  snap_.steady_now = t0;
  snap_.steady_started = t0 - 2h;
  for (auto jump : {std::chrono::seconds(0), std::chrono::seconds(10 * 86400), -std::chrono::seconds(2 * 86400)}) {
    SCOPED_TRACE(jump.count());
    snap_.now = kNow + jump;
    auto j = build_status(snap_);
    EXPECT_EQ(j["health"], "healthy");
    EXPECT_EQ(j["ranges"]["age_s"], 3600);
    EXPECT_EQ(j["agent"]["uptime_s"], 7200);
    EXPECT_TRUE(j["warnings"].empty()) << j["warnings"].dump();
  }
  // Stale by the steady clock stays stale whatever the wall clock says.
  state_.fetched_steady = t0 - 3 * 86400s - 1s;
  snap_.now = kNow - 4 * 86400s;
  auto j = build_status(snap_);
  EXPECT_EQ(j["health"], "degraded");
  EXPECT_EQ(j["ranges"]["age_s"], 3 * 86400 + 1);
  EXPECT_THAT(j["warnings"].dump(), HasSubstr("ranges are stale"));
}

TEST_F(StatusTest, BootstrapSnapshotIsAnInformationalWarning) {
  auto b = ranges::bootstrap_ranges();
  ASSERT_TRUE(test::ok(b));
  state_.current = *b;
  auto j = build_status(snap_);
  EXPECT_EQ(j["health"], "healthy");
  EXPECT_TRUE(j["ranges"]["fetched_at"].is_null());
  EXPECT_TRUE(j["ranges"]["age_s"].is_null());
  EXPECT_EQ(j["ranges"]["source"], "embedded bootstrap snapshot");
  EXPECT_THAT(j["warnings"], Contains(HasSubstr("embedded bootstrap snapshot")));
}

TEST_F(StatusTest, AuditModeAndNotesDoNotDegrade) {
  cfg_.protect.mode = ProtectMode::audit;
  state_.notes = {"2 duplicate or covered prefix(es) removed"};
  auto j = build_status(snap_);
  EXPECT_EQ(j["health"], "healthy");
  EXPECT_EQ(j["agent"]["mode"], "audit");
  EXPECT_THAT(warning_texts(), Contains(HasSubstr("AUDIT")));
  EXPECT_THAT(warning_texts(), Contains("2 duplicate or covered prefix(es) removed"));
}

TEST_F(StatusTest, AgentAndEnforcerWarnings) {
  snap_.warnings.push_back({"config.reload_refused", "config reload refused: agent.toml:3: [ranges] x: unknown key"});
  snap_.enforcers = json{{"nftables", {{"applied", true}, {"warnings", {"drift repaired", 7}}}}, {"xdp", "bogus"}};
  auto j = build_status(snap_);
  EXPECT_EQ(j["health"], "degraded");
  EXPECT_EQ(j["enforcers"]["nftables"]["applied"], true);
  EXPECT_THAT(warning_texts(), Contains(HasSubstr("config reload refused")));
  EXPECT_THAT(warning_texts(), Contains("nftables: drift repaired"));
  EXPECT_EQ(warning_texts().size(), 2u) << "non-string warnings and non-object enforcers are skipped";
}

// An enforcer's view of the kernel (table missing, modified, a port left open) is degraded,
// with its id qualified by the enforcer's name; ids sit next to the texts in the JSON.
TEST_F(StatusTest, EnforcerWarningsHaveIdsAndDegrade) {
  snap_.enforcers =
      json{{"nftables",
            {{"warnings", json::array({{{"id", "table_missing"}, {"text", "table inet originguard is missing"}}})}}}};
  auto j = build_status(snap_);
  EXPECT_EQ(j["health"], "degraded");
  EXPECT_EQ(j["warnings"], json::array({"nftables: table inet originguard is missing"}));
  ASSERT_EQ(j["warning_details"].size(), 1u);
  EXPECT_EQ(j["warning_details"][0]["id"], "nftables.table_missing");
  EXPECT_EQ(j["warning_details"][0]["text"], "nftables: table inet originguard is missing");
  EXPECT_EQ(j["warning_details"][0]["needs_action"], true);
  EXPECT_THAT(build_metrics(snap_), HasSubstr("originguard_healthy 0\n"));
}

TEST_F(StatusTest, EveryWarningHasAStableId) {
  state_.last_error = "HTTP 500";
  cfg_.protect.mode = ProtectMode::audit;
  state_.notes = {"1 duplicate"};
  auto j = build_status(snap_);
  std::vector<std::string> ids;
  for (const auto& d : j["warning_details"]) ids.push_back(d["id"]);
  EXPECT_THAT(ids, ::testing::ElementsAre("refresh.failed", "protect.audit", "refresh.note"));
}

// A fetch time in the future (clock set back, edited state file) must not hide staleness.
TEST_F(StatusTest, FetchTimeInTheFutureDegrades) {
  state_.current.fetched_at = kNow + 10min;
  auto j = build_status(snap_);
  EXPECT_EQ(j["health"], "degraded");
  EXPECT_THAT(warning_texts(), Contains(HasSubstr("in the future")));
  state_.current.fetched_at = kNow + 1min;  // clock skew within a fleet is fine
  EXPECT_EQ(build_status(snap_)["health"], "healthy");
}

TEST_F(StatusTest, EnforcerMetricsGoToMetricsNotToStatus) {
  snap_.enforcers =
      json{{"xdp", {{"attached", true}, {"metrics", "originguard_xdp_attached{interface=\"eth0\"} 1\n"}}}};
  auto j = build_status(snap_);
  EXPECT_FALSE(j["enforcers"]["xdp"].contains("metrics"));
  EXPECT_EQ(j["enforcers"]["xdp"]["attached"], true);
  EXPECT_THAT(build_metrics(snap_), HasSubstr("originguard_xdp_attached{interface=\"eth0\"} 1\n"));
}

TEST_F(StatusTest, InformationalAgentWarningStaysHealthy) {
  snap_.warnings.push_back({"store.load_failed", "state file unreadable, started from the bootstrap snapshot", false});
  EXPECT_EQ(build_status(snap_)["health"], "healthy");
}

TEST_F(StatusTest, ExtraAllowIsCountedInTheEffectiveSet) {
  cfg_.ranges.extra_allow = RangeSet::from({*parse_prefix("203.0.113.0/24"), *parse_prefix("104.16.1.0/24")});
  auto j = build_status(snap_);
  EXPECT_EQ(j["ranges"]["ipv4"], 16) << "104.16.1.0/24 is inside 104.16.0.0/13; 203.0.113.0/24 is new";
  EXPECT_EQ(j["ranges"]["extra_allow"], 2);
}

TEST_F(StatusTest, EmptyEtagIsNull) {
  state_.current.etag.clear();
  EXPECT_TRUE(build_status(snap_)["ranges"]["etag"].is_null());
}

TEST_F(StatusTest, Metrics) {
  state_.updated = 4;
  state_.failed = 2;
  auto m = build_metrics(snap_);
  EXPECT_THAT(m, HasSubstr("originguard_ranges_prefixes{family=\"ipv4\"} 15\n"));
  EXPECT_THAT(m, HasSubstr("originguard_ranges_prefixes{family=\"ipv6\"} 7\n"));
  EXPECT_THAT(m, HasSubstr("originguard_refresh_total{result=\"updated\"} 4\n"));
  EXPECT_THAT(m, HasSubstr("originguard_refresh_total{result=\"failed\"} 2\n"));
  EXPECT_THAT(m, HasSubstr("originguard_healthy 1\n"));
  EXPECT_THAT(m,
              HasSubstr("originguard_ranges_fetched_timestamp_seconds " + std::to_string(1'790'000'000 - 3600) + "\n"));
}

}  // namespace
}  // namespace og
