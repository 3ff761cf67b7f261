// The agent's Prometheus text: every family once, HELP and TYPE before its samples, the
// families the alerts and the dashboard use (packaging/monitoring), label values escaped, and
// `promtool check metrics` content with it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "aop/manager.hpp"
#include "promtool.hpp"
#include "status.hpp"
#include "test_support.hpp"

namespace og {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

const ranges::WallTime kNow = ranges::WallTime(std::chrono::seconds(1'790'000'000));

class MetricsTest : public ::testing::Test {
 protected:
  MetricsTest() {
    auto b = ranges::bootstrap_ranges();
    EXPECT_TRUE(test::ok(b));
    state_.current = *b;
    state_.current.source = "https://api.cloudflare.com/client/v4/ips";
    state_.current.fetched_at = kNow - 1h;
    state_.updated = 4;
    state_.failed = 1;
    snap_.config = &cfg_;
    snap_.refresh = &state_;
    snap_.now = kNow;
    snap_.started_at = kNow - 2h;
    snap_.counters.reloads_ok = 2;
    snap_.counters.reloads_refused = 1;
    snap_.counters.enforcers = {{"nftables", 5, 1, 3, 0.0125}};
    snap_.enforcers = json{{"nftables",
                            {{"state", "enforcing"},
                             {"traffic",
                              {{{"verdict", "drop"}, {"packets", 10}, {"bytes", 600}},
                               {{"verdict", "audit"}, {"packets", 0}, {"bytes", 0}}}}}}};
  }
  AgentConfig cfg_;
  RefreshState state_;
  AgentSnapshot snap_;
};

// Each sample line belongs to the family of the last TYPE line, and no family comes twice.
void expect_grouped(const std::string& text) {
  std::istringstream in(text);
  std::string line, family;
  std::map<std::string, int> types, helps;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      ++helps[line.substr(7, line.find(' ', 7) - 7)];
    } else if (line.rfind("# TYPE ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(++types[family], 1) << family << " twice";
      EXPECT_EQ(helps[family], 1) << family << ": HELP before TYPE";
    } else {
      const auto name = line.substr(0, line.find_first_of("{ "));
      EXPECT_EQ(name, family) << "sample outside its family: " << line;
    }
  }
}

TEST_F(MetricsTest, EveryFamilyTheMonitoringPackUses) {
  const auto m = build_metrics(snap_);
  for (const char* line : {
           "originguard_ranges_prefixes{family=\"ipv4\"} 15\n",
           "originguard_ranges_fetched_timestamp_seconds 1789996400\n",
           "originguard_ranges_source_info{source=\"https://api.cloudflare.com/client/v4/ips\"} 1\n",
           "originguard_refresh_total{result=\"updated\"} 4\n",
           "originguard_refresh_total{result=\"failed\"} 1\n",
           "originguard_config_reloads_total{result=\"ok\"} 2\n",
           "originguard_config_reloads_total{result=\"refused\"} 1\n",
           "originguard_healthy 1\n",
           "originguard_enforcer_applies_total{enforcer=\"nftables\",result=\"ok\"} 5\n",
           "originguard_enforcer_applies_total{enforcer=\"nftables\",result=\"failed\"} 1\n",
           "originguard_enforcer_last_apply_duration_seconds{enforcer=\"nftables\"} 0.0125\n",
           "originguard_enforcer_drift_repairs_total{enforcer=\"nftables\"} 3\n",
           "originguard_enforcer_packets_total{enforcer=\"nftables\",verdict=\"drop\"} 10\n",
           "originguard_enforcer_packets_total{enforcer=\"nftables\",verdict=\"audit\"} 0\n",
           "originguard_enforcer_bytes_total{enforcer=\"nftables\",verdict=\"drop\"} 600\n",
       })
    EXPECT_THAT(m, HasSubstr(line));
  expect_grouped(m);
  EXPECT_EQ(test::promtool_check_metrics(m), "") << m;
}

// [[aop.zone]] families from a real aop::Manager (configured, not yet run: every zone's
// counters at 0), once each among the agent's, and the whole text still valid.
TEST_F(MetricsTest, AopFamiliesWithTheRest) {
  boost::asio::io_context io;
  aop::Manager aop(io, {});
  aop::AopConfig cfg;
  for (const char* id : {"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"}) {
    aop::AopZoneConfig z;
    z.zone_id = id;
    z.api_token_file = "/nonexistent/token";
    z.ca_dir = std::string("/nonexistent/") + id;
    cfg.zones.push_back(z);
  }
  aop.configure(&cfg);
  snap_.aop_metrics = aop.metrics();
  snap_.aop = aop.status(kNow);
  const auto m = build_metrics(snap_);
  for (const char* line : {
           "# TYPE originguard_aop_certificate_expiry_timestamp_seconds gauge\n",
           "originguard_aop_rotations_total{zone=\"0123456789abcdef0123456789abcdef\",result=\"completed\"} 0\n",
           "originguard_aop_rotations_total{zone=\"fedcba9876543210fedcba9876543210\",result=\"failed\"} 0\n",
           "originguard_aop_rotation_in_progress{zone=\"0123456789abcdef0123456789abcdef\"} 0\n",
       })
    EXPECT_THAT(m, HasSubstr(line));
  expect_grouped(m);
  EXPECT_EQ(test::promtool_check_metrics(m), "") << m;
  const auto st = build_status(snap_);
  ASSERT_EQ(st["aop"].size(), 2u);
  EXPECT_EQ(st["aop"][0]["state"], "starting");
  for (const char* key :
       {"zone_id", "state", "current_cert_id", "previous_cert_id", "expires_on", "next_action_at", "last_error"})
    EXPECT_TRUE(st["aop"][0].contains(key)) << key;
}

TEST_F(MetricsTest, NoEnforcerStillValid) {
  snap_.counters.enforcers.clear();
  snap_.enforcers = json::object();
  const auto m = build_metrics(snap_);
  EXPECT_THAT(m, Not(HasSubstr("originguard_enforcer_applies_total{")));
  expect_grouped(m);
  EXPECT_EQ(test::promtool_check_metrics(m), "") << m;
}

// A source is operator-written (or read back from the state file): it cannot break the text.
TEST_F(MetricsTest, LabelValuesAreEscaped) {
  state_.current.source = "file:///etc/a\"b\\c\nd";
  const auto m = build_metrics(snap_);
  EXPECT_THAT(m, HasSubstr("originguard_ranges_source_info{source=\"file:///etc/a\\\"b\\\\c\\nd\"} 1\n"));
  expect_grouped(m);
  EXPECT_EQ(test::promtool_check_metrics(m), "") << m;
}

// The endpoint may be reachable from the network: a source's credentials and query (a token)
// stay on the host.
TEST_F(MetricsTest, SourceLosesCredentialsAndQuery) {
  state_.current.source = "https://user:s3cret@ranges.example/v4?token=abc + https://ranges.example/v6#x";
  const auto m = build_metrics(snap_);
  EXPECT_THAT(m, HasSubstr("originguard_ranges_source_info{source=\"https://ranges.example/v4 + "
                           "https://ranges.example/v6\"} 1\n"));
  EXPECT_THAT(m, Not(HasSubstr("s3cret")));
  EXPECT_THAT(m, Not(HasSubstr("token")));
  state_.current.source = "embedded bootstrap snapshot";
  EXPECT_THAT(build_metrics(snap_), HasSubstr("{source=\"embedded bootstrap snapshot\"} 1\n"));
}

TEST_F(MetricsTest, MalformedTrafficEntriesAreSkipped) {
  snap_.enforcers["nftables"]["traffic"] = json::array(
      {5, json{{"packets", 1}}, json{{"verdict", 7}}, json{{"verdict", "drop"}, {"packets", -3}, {"bytes", "x"}}});
  const auto m = build_metrics(snap_);
  EXPECT_THAT(m, HasSubstr("originguard_enforcer_packets_total{enforcer=\"nftables\",verdict=\"drop\"} 0\n"));
  EXPECT_THAT(m, HasSubstr("originguard_enforcer_bytes_total{enforcer=\"nftables\",verdict=\"drop\"} 0\n"));
  expect_grouped(m);
}

TEST_F(MetricsTest, DegradedIsUnhealthy) {
  snap_.warnings.push_back({"realip.on_change_failed", "x"});
  EXPECT_THAT(build_metrics(snap_), HasSubstr("originguard_healthy 0\n"));
}

}  // namespace
}  // namespace og
