// The real Agent on its own loop, with doubles at every seam (HTTP, clock, enforcers): refresh
// outcomes, reload, explain, warnings and the control commands, through the real control
// socket in a private directory. No root, no network.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>

#include "agent.hpp"
#include "client.hpp"
#include "doubles/fake_clock.hpp"
#include "doubles/mock_enforcer.hpp"
#include "doubles/mock_http_client.hpp"
#include "originguard/config.hpp"
#include "test_support.hpp"

namespace og {
namespace {

using ranges::test::response;
using ::testing::_;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::NiceMock;
using ::testing::Not;
using ::testing::Return;

const std::string kApi(kCloudflareApiUrl);

// The agent owns (and destroys) its client after each attempt; the test keeps the mock.
class ForwardingHttpClient final : public ranges::HttpClient {
 public:
  explicit ForwardingHttpClient(ranges::HttpClient& to) : to_(to) {}
  Result<ranges::HttpResponse> get(const std::string& url, const std::string& if_none_match) override {
    return to_.get(url, if_none_match);
  }

 private:
  ranges::HttpClient& to_;
};

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Far beyond the steady clock's real reading: the agent's refresh timer, armed on the
    // fake clock's time points, never fires by itself; refreshes come from the tests.
    clock_.advance(std::chrono::hours(24 * 365 * 50));
    write_config("");
  }
  void TearDown() override {
    if (agent_) {
      agent_->io().stop();
      agent_.reset();
    }
  }

  [[nodiscard]] std::filesystem::path config_file() const { return dir_ / "agent.toml"; }
  [[nodiscard]] std::filesystem::path socket() const { return dir_ / "run" / "agent.sock"; }
  [[nodiscard]] std::filesystem::path export_file() const { return dir_ / "export" / "edge-ranges.json"; }
  [[nodiscard]] std::filesystem::path state_file() const { return dir_ / "state" / "ranges.json"; }

  // Every path under the test's directory; `extra` goes into [ranges].
  void write_config(const std::string& extra, const std::string& state_dir = "") {
    test::write_file(config_file(),
                     "[ranges]\nstate_dir = \"" + (state_dir.empty() ? (dir_ / "state").string() : state_dir) +
                         "\"\nexport_file = \"" + export_file().string() + "\"\n" + extra + "[control]\nsocket = \"" +
                         socket().string() + "\"\n[xdp]\npin_dir = \"" + (dir_ / "bpf").string() + "\"\n");
  }

  void start() {
    auto cfg = load_agent_config(config_file(), false, std::nullopt, nullptr);
    ASSERT_TRUE(test::ok(cfg));
    AgentDeps deps{
        [this](const ranges::HttpOptions&) { return std::make_unique<ForwardingHttpClient>(http_); }, clock_,
        [this](const AgentConfig&, bool) {
          std::vector<std::unique_ptr<Enforcer>> out;
          auto e = std::make_unique<NiceMock<test::MockEnforcer>>("mock");
          ON_CALL(*e, explain(_, _)).WillByDefault(Return(Explanation{"drop", "none", "", "the mock kernel drops it"}));
          ON_CALL(*e, status()).WillByDefault(Return(nlohmann::json::object()));
          ON_CALL(*e, verify()).WillByDefault(Return(Result<bool>(false)));
          ON_CALL(*e, uninstall()).WillByDefault(Return(Result<bool>(false)));
          ON_CALL(*e, prepare(_)).WillByDefault(Return(Status{}));
          ON_CALL(*e, apply(_)).WillByDefault([this](const DesiredState& d) -> Status {
            applied_.push_back(d);
            return {};
          });
          out.push_back(std::move(e));
          ++enforcers_made_;
          return out;
        }};
    agent_ =
        std::make_unique<Agent>(AgentOptions{config_file(), false, std::nullopt}, std::move(*cfg), std::move(deps));
    ASSERT_TRUE(test::ok(agent_->start()));
  }

  // One control command through the real socket; this thread runs the agent's loop until the
  // reply is in (the client blocks on its own thread, bounded by its deadline).
  nlohmann::json call(const std::string& cmd, const nlohmann::json& params = nlohmann::json::object(),
                      bool force = false) {
    ControlRequest req = ctl::request(cmd);
    req.params = params.dump();
    req.force = force;
    auto reply =
        std::async(std::launch::async, [&] { return ctl::call(socket().string(), req, std::chrono::seconds(20)); });
    while (reply.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
      agent_->io().run_one_for(std::chrono::milliseconds(20));
    auto r = reply.get();
    EXPECT_TRUE(test::ok(r));
    return r ? *r : nlohmann::json();
  }

  static std::vector<std::string> warning_ids(const nlohmann::json& status) {
    std::vector<std::string> ids;
    for (const auto& w : status.at("warning_details")) ids.push_back(w.at("id").get<std::string>());
    return ids;
  }

  static nlohmann::json read_json(const std::filesystem::path& p) { return nlohmann::json::parse(test::read_file(p)); }

  test::TempDir dir_;
  ranges::test::FakeClock clock_;
  NiceMock<ranges::test::MockHttpClient> http_;
  std::vector<DesiredState> applied_;  // by the loop, which this thread runs
  int enforcers_made_ = 0;
  std::unique_ptr<Agent> agent_;
};

const RangeSet kTestEdge = RangeSet::from(
    {*parse_prefix("198.51.100.0/24"), *parse_prefix("192.0.2.0/25"), *parse_prefix("2001:db8:cf::/48")});

TEST_F(AgentTest, StartsOnTheBootstrapSnapshotAndAppliesIt) {
  start();
  ASSERT_EQ(applied_.size(), 1u);
  EXPECT_FALSE(applied_[0].edge.empty());
  EXPECT_EQ(read_json(export_file())["source"], "embedded bootstrap snapshot");
  auto st = call("status");
  EXPECT_EQ(st["ok"], true);
  EXPECT_THAT(warning_ids(st), Contains("ranges.bootstrap"));
}

TEST_F(AgentTest, GoodRefreshAppliesPersistsAndExports) {
  start();
  EXPECT_CALL(http_, get(kApi, _))
      .WillOnce(Return(response(200, "application/json", test::read_file(test::test_data("test-edge-ips.json")))));
  auto r = call("refresh");
  EXPECT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(r["result"], "updated");
  EXPECT_EQ(r["changed"], true);
  ASSERT_EQ(applied_.size(), 2u);
  EXPECT_EQ(applied_.back().edge, kTestEdge);

  auto stored = ranges::RangeStore(dir_ / "state").load();
  ASSERT_TRUE(test::ok(stored));
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->ranges, kTestEdge);
  EXPECT_EQ((*stored)->source, kApi);
  const auto exported = read_json(export_file());
  EXPECT_EQ(exported["ipv4"], nlohmann::json({"192.0.2.0/25", "198.51.100.0/24"}));
  EXPECT_EQ(exported["ipv6"], nlohmann::json({"2001:db8:cf::/48"}));
  EXPECT_THAT(warning_ids(call("status")), Not(Contains("ranges.bootstrap")));
}

TEST_F(AgentTest, BadBodiesKeepTheLastGoodSetAndWarn) {
  start();
  EXPECT_CALL(http_, get(kApi, _))
      .WillOnce(Return(response(200, "application/json", test::read_file(test::test_data("test-edge-ips.json")))));
  ASSERT_EQ(call("refresh")["result"], "updated");
  const std::string state_before = test::read_file(state_file());
  const std::string export_before = test::read_file(export_file());
  const auto applies_before = applied_.size();

  struct Case {
    const char* name;
    ranges::HttpResponse answer;
  };
  const Case cases[] = {
      {"html", response(200, "text/html", "<html><body>Just a moment...</body></html>")},
      {"empty", response(200, "application/json", "")},
      {"garbage json", response(200, "application/json", "{\"result\": {\"ipv4_cidrs\": [\"300.1.2.3/8\"]")},
      {"server error", response(503, "text/plain", "busy")},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_CALL(http_, get(kApi, _)).WillOnce(Return(c.answer));
    auto r = call("refresh", nlohmann::json::object(), true);
    EXPECT_EQ(r["ok"], false);
    EXPECT_EQ(r["result"], "failed");
    EXPECT_EQ(applied_.size(), applies_before);  // nothing applied
    EXPECT_EQ(test::read_file(state_file()), state_before);
    EXPECT_EQ(test::read_file(export_file()), export_before);
    auto st = call("status");
    EXPECT_THAT(warning_ids(st), Contains("refresh.failed"));
    EXPECT_EQ(st["ranges"]["ipv4"], 2) << st["ranges"].dump();
  }
  // The cause goes: the warning goes with it.
  EXPECT_CALL(http_, get(kApi, _))
      .WillOnce(Return(response(200, "application/json", test::read_file(test::test_data("test-edge-ips.json")))));
  EXPECT_EQ(call("refresh", nlohmann::json::object(), true)["ok"], true);
  EXPECT_THAT(warning_ids(call("status")), Not(Contains("refresh.failed")));
}

TEST_F(AgentTest, PersistFailureWarnsUntilTheStateDirWorks) {
  test::write_file(dir_ / "not-a-dir", "x");
  write_config("", (dir_ / "not-a-dir" / "state").string());
  start();
  EXPECT_CALL(http_, get(kApi, _))
      .WillRepeatedly(
          Return(response(200, "application/json", test::read_file(test::test_data("test-edge-ips.json")))));
  EXPECT_EQ(call("refresh")["ok"], true);
  auto st = call("status");
  ASSERT_THAT(warning_ids(st), Contains("store.save_failed"));
  for (const auto& w : st["warning_details"]) {
    if (w["id"] == "store.save_failed") {
      EXPECT_THAT(w["text"].get<std::string>(), HasSubstr("could not persist"));
    }
  }

  write_config("");
  EXPECT_EQ(call("reload")["ok"], true);
  EXPECT_EQ(call("refresh", nlohmann::json::object(), true)["ok"], true);
  EXPECT_THAT(warning_ids(call("status")), Not(Contains("store.save_failed")));
  EXPECT_TRUE(std::filesystem::exists(state_file()));
}

TEST_F(AgentTest, BadReloadIsRefusedWithFileAndLineAndTheRunningConfigStays) {
  start();
  const auto applies_before = applied_.size();
  // Line 3 of the file: an unknown key.
  test::write_file(config_file(), "[ranges]\nstate_dir = \"" + (dir_ / "state").string() + "\"\nbogus = 1\n");
  auto r = call("reload");
  EXPECT_EQ(r["ok"], false);
  EXPECT_THAT(r["error"].get<std::string>(), HasSubstr(config_file().string() + ":3"));
  EXPECT_EQ(applied_.size(), applies_before);
  auto st = call("status");
  EXPECT_THAT(warning_ids(st), Contains("config.reload_refused"));
  EXPECT_EQ(st["agent"]["mode"], "enforce");

  // A good one is applied, and the refusal is forgotten.
  write_config("");
  test::write_file(config_file(), test::read_file(config_file()) + "[protect]\nmode = \"audit\"\n");
  r = call("reload");
  EXPECT_EQ(r["ok"], true) << r.dump();
  ASSERT_GT(applied_.size(), applies_before);
  EXPECT_EQ(applied_.back().mode, ProtectMode::audit);
  st = call("status");
  EXPECT_THAT(warning_ids(st), Not(Contains("config.reload_refused")));
  EXPECT_THAT(warning_ids(st), Contains("protect.audit"));
}

TEST_F(AgentTest, ExplainComparesTheConfigWithWhatTheEnforcersHold) {
  start();
  auto edge = call("explain", {{"ip", "173.245.48.1"}, {"port", 443}});
  EXPECT_EQ(edge["ok"], true) << edge.dump();
  EXPECT_EQ(edge["configured"]["verdict"], "accept");
  EXPECT_EQ(edge["configured"]["list"], "edge");
  EXPECT_EQ(edge["verdict"], "drop");  // what the (mock) kernel says decides
  EXPECT_THAT(edge["detail"].get<std::string>(), HasSubstr("not what the kernel holds"));

  auto attacker = call("explain", {{"ip", "203.0.113.7"}});
  EXPECT_EQ(attacker["configured"]["verdict"], "drop");
  EXPECT_EQ(attacker["verdict"], "drop");
  EXPECT_FALSE(attacker.contains("detail"));

  auto unprotected = call("explain", {{"ip", "203.0.113.7"}, {"port", 22}});
  EXPECT_EQ(unprotected["configured"]["verdict"], "accept");

  EXPECT_EQ(call("explain", nlohmann::json::object())["error"], "explain needs an \"ip\"");
  EXPECT_EQ(call("explain", {{"ip", "203.0.113.7"}, {"port", 4294967739ULL}})["ok"], false);
  EXPECT_EQ(call("explain", {{"ip", "not-an-ip"}})["ok"], false);
}

TEST_F(AgentTest, ControlCommands) {
  start();
  auto st = call("status");
  EXPECT_EQ(st["ok"], true);
  EXPECT_TRUE(st.contains("enforcers"));
  EXPECT_EQ(call("version")["version"], OG_VERSION);
  EXPECT_THAT(call("metrics")["text"].get<std::string>(), HasSubstr("originguard_"));
  auto unknown = call("frobnicate");
  EXPECT_EQ(unknown["ok"], false);
  EXPECT_EQ(unknown["error"], "unknown command \"frobnicate\"");
  // A reload that changes the enforcer layout builds a new set through the factory.
  write_config("");
  test::write_file(config_file(), test::read_file(config_file()) + "[nftables]\nenabled = false\n");
  EXPECT_EQ(call("reload")["ok"], true);
  EXPECT_EQ(enforcers_made_, 2);
}

}  // namespace
}  // namespace og
