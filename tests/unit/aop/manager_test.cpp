// aop::Manager, the agent's side of the lifecycle, on a real asio loop against
// tests/tools/fake_cf_api.py over HTTPS: the CA bundle exported before anything is issued, a
// zone waits for `issue`, then issue and rotate through the control commands with the old
// certificate deleted only after the new one is active; a restart mid-rotation resumes without
// a second upload; a bad token is reported (never echoed) and retried; the commands' refusals;
// the dry run; metrics that promtool accepts. Polls the state; no sleeps decide anything.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "aop/manager.hpp"
#include "aop/verify_client.hpp"
#include "doubles/fake_api_server.hpp"
#include "promtool.hpp"
#include "test_support.hpp"

namespace og::aop::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using og::test::ok;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kZone = "fedcba9876543210fedcba9876543210";
constexpr const char* kToken = "manager-test-token-6c1f0e";

class ManagerTest : public ::testing::Test {
 protected:
  explicit ManagerTest(const char* deploy_delay = "0") : server(tmp / "api", kZone, kToken, deploy_delay) {}

  og::test::TempDir tmp;
  FakeApiServer server;
  boost::asio::io_context io;
  // run_for() waits its whole slice even while the loop is idle (the worker posts back later).
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{io.get_executor()};
  AopConfig cfg;
  ManagerOptions mo;

  void SetUp() override {
    ASSERT_TRUE(server.wait_ready()) << "fake_cf_api.py did not start (python3 and openssl needed)";
    write_token(kToken);
    AopZoneConfig z;
    z.zone_id = kZone;
    z.api_token_file = tmp / "token";
    z.ca_dir = tmp / "aop" / kZone;
    z.api_base = server.base();
    z.api_ca_file = (tmp / "api" / "ca.pem").string();
    cfg.export_dir = tmp / "export";
    cfg.zones = {z};
    cfg.poll_interval = 1s;
    mo.retry_min = 1s;
    mo.retry_max = 2s;
    mo.start_jitter = 0ms;
    mo.fetch_helper = OG_FETCH_HELPER;
  }

  void write_token(const std::string& t) {
    og::test::write_file(tmp / "token", t + "\n");
    ::chmod((tmp / "token").c_str(), 0600);
  }

  // Runs the loop until `pred` holds (or 30 s pass: then the test fails).
  template <class Pred>
  bool run_until(Manager& m, Pred pred) {
    for (int i = 0; i < 600; ++i) {
      io.restart();
      io.run_for(50ms);
      if (pred(zone(m))) return true;
    }
    return false;
  }

  json zone(const Manager& m) const {
    auto all = m.status(std::chrono::system_clock::now());
    return all.empty() ? json() : all[0];
  }

  json command(Manager& m, const std::string& cmd, json params = json::object()) {
    std::optional<json> answer;
    Manager::Reply reply = [&](json j) { answer = std::move(j); };
    EXPECT_TRUE(m.handle(cmd, params, reply));
    for (int i = 0; i < 600 && !answer; ++i) {
      io.restart();
      io.run_for(50ms);
    }
    return answer ? *answer : json{{"ok", false}, {"error", "no answer"}};
  }

  int uploads() {
    int n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(tmp / "api" / "uploads", ec))
      n += e.path().extension() == ".pem" ? 1 : 0;
    return n;
  }
};

TEST_F(ManagerTest, ExportsTheCaThenIssuesAndRotatesOnCommand) {
  Manager m(io, mo);
  m.configure(&cfg);
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "unissued"; })) << zone(m).dump();
  // The CA exists and is exported before anything is issued: the gatekeeper can trust it first.
  const auto bundle = tmp / "export" / (std::string(kZone) + ".pem");
  struct stat st {};
  ASSERT_EQ(::stat(bundle.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  const std::string ca_pem = og::test::read_file(bundle);
  EXPECT_THAT(ca_pem, HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_THAT(ca_pem, Not(HasSubstr("PRIVATE")));
  EXPECT_EQ(uploads(), 0) << "nothing is uploaded before agentctl aop issue";
  // Until the first activation it trusts Cloudflare's global origin-pull CA too (the one built
  // in by default: the gatekeeper's file, embedded in the agent as well).
  EXPECT_THAT(ca_pem, HasSubstr(std::string(embedded::kOriginPullCaPem).substr(0, 200)));
  auto w = m.warnings(std::chrono::system_clock::now());
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].id, "aop.global_ca_trusted");
  EXPECT_EQ(w[1].id, "aop.unissued");
  EXPECT_FALSE(w[0].needs_action);
  EXPECT_FALSE(w[1].needs_action);

  EXPECT_EQ(command(m, "aop-rotate")["error"], "zone has no certificate yet: agentctl aop issue makes the first one");
  auto r = command(m, "aop-issue");
  ASSERT_EQ(r["ok"], true) << r.dump();
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "idle" && z["current_cert_id"].is_string(); }))
      << zone(m).dump();
  const std::string first = zone(m)["current_cert_id"];
  EXPECT_EQ(uploads(), 1);
  EXPECT_EQ(server.state()["enabled"], true);
  EXPECT_TRUE(zone(m)["expires_on"].is_string());
  EXPECT_TRUE(zone(m)["next_action_at"].is_string());
  EXPECT_EQ(og::test::read_file(bundle), ca_pem) << "the CA did not change";

  auto again = command(m, "aop-issue");
  EXPECT_EQ(again["ok"], false);
  EXPECT_THAT(again["error"].get<std::string>(), HasSubstr("already has certificate " + first));

  r = command(m, "aop-rotate", {{"zone", kZone}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  ASSERT_TRUE(run_until(m, [&](const json& z) { return z["state"] == "idle" && z["current_cert_id"] != first; }))
      << zone(m).dump();
  const json z = zone(m);
  EXPECT_EQ(z["previous_cert_id"], first);
  EXPECT_EQ(uploads(), 2);
  // The old one is deleted at the API, the new one the only one active.
  auto st2 = server.state();
  int active = 0;
  for (const auto& c : st2["zone"]) {
    if (c["id"] == first) {
      EXPECT_NE(c["status"], "active") << st2.dump();
    }
    if (c["status"] == "active") {
      ++active;
      EXPECT_EQ(c["id"], z["current_cert_id"]);
    }
  }
  EXPECT_EQ(active, 1) << st2.dump();
  // The DELETE of the old certificate came after the new one was seen active.
  const std::string log = server.requests();
  const auto del = log.find("DELETE /client/v4/zones/" + std::string(kZone) + "/origin_tls_client_auth/" + first);
  ASSERT_NE(del, std::string::npos) << log;

  const std::string metrics = m.metrics();
  EXPECT_THAT(metrics,
              HasSubstr("originguard_aop_rotations_total{zone=\"" + std::string(kZone) + "\",result=\"completed\"} 2"));
  EXPECT_THAT(metrics, HasSubstr("originguard_aop_certificate_expiry_timestamp_seconds{zone=\"" + std::string(kZone)));
  EXPECT_EQ(og::test::promtool_check_metrics(metrics), "");
  const std::string everything = m.status(std::chrono::system_clock::now()).dump() + metrics;
  EXPECT_THAT(everything, Not(HasSubstr(kToken)));
}

// agentctl aop rotate --ca through the manager and the fake API over HTTPS: the exported
// bundle gets the new CA before the certificate moves, then loses the old one.
TEST_F(ManagerTest, RotateWithCaRollsTheCaOverThroughTheExportedBundle) {
  cfg.zones[0].ca_overlap = 1s;
  cfg.zones[0].migrate_from_global = false;  // the bundle's certificates are the zone's CAs only
  Manager m(io, mo);
  m.configure(&cfg);
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "unissued"; })) << zone(m).dump();
  const auto bundle = tmp / "export" / (std::string(kZone) + ".pem");
  const std::string old_ca = og::test::read_file(bundle);
  EXPECT_EQ(command(m, "aop-issue", {{"ca", true}})["ok"], false) << "--ca is for rotate only";
  EXPECT_EQ(command(m, "aop-rotate", {{"ca", "yes"}})["ok"], false);
  ASSERT_EQ(command(m, "aop-issue")["ok"], true);
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "idle" && z["current_cert_id"].is_string(); }));
  const std::string first = zone(m)["current_cert_id"];
  auto r = command(m, "aop-rotate", {{"ca", true}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  auto busy = command(m, "aop-rotate", {{"ca", true}});
  EXPECT_EQ(busy["ok"], false) << busy.dump();
  // The bundle's certificates (its CRLs change too, when the old certificate is revoked).
  std::vector<std::string> bundles{certs_only(old_ca)};
  std::vector<std::size_t> crls{crl_serials(old_ca).size()};
  ASSERT_TRUE(run_until(m, [&](const json& z) {
    const std::string b = og::test::read_file(bundle);
    if (certs_only(b) != bundles.back()) {
      bundles.push_back(certs_only(b));
      crls.push_back(crl_serials(b).size());
    }
    return z["state"] == "idle" && z["ca_rollover"] == "none" && z["previous_cert_id"] == first;
  })) << zone(m).dump();
  // old CA -> old + new -> new alone, each with its CRL.
  ASSERT_EQ(bundles.size(), 3u);
  EXPECT_TRUE(bundles[1].starts_with(bundles[0]));
  EXPECT_NE(bundles[2], bundles[0]);
  EXPECT_TRUE(bundles[1].ends_with(bundles[2]));
  EXPECT_EQ(crls, (std::vector<std::size_t>{1, 2, 1}));
  EXPECT_EQ(uploads(), 2);
  // ca_overlap (1 s) after its deletion the first certificate is in the exported CRL.
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["revoked_in_crl"] == 1; })) << zone(m).dump();
  const std::string b = og::test::read_file(bundle);
  const std::string first_pem = og::test::read_file(tmp / "api" / "uploads" / (first + ".pem"));
  const std::string second_pem =
      og::test::read_file(tmp / "api" / "uploads" / (zone(m)["current_cert_id"].get<std::string>() + ".pem"));
  const auto now = std::chrono::system_clock::now();
  EXPECT_EQ(crl_verify_result(second_pem, b, now), X509_V_OK);
  EXPECT_NE(crl_verify_result(first_pem, b, now), X509_V_OK);  // its CA is gone, and it is revoked
  EXPECT_EQ(crl_serials(b).at(0).second.size(), 1u);
  EXPECT_TRUE(zone(m)["crl_next_update"].is_string());
}

// The migration from the global certificate (issue 12's "Done when"): the bundle trusts the
// global origin-pull CA (here a test CA in its place, [aop] origin_pull_ca) until ca_overlap
// after the first activation, then never again: not after a restart, not after a revoke.
TEST_F(ManagerTest, MigrationTrustsTheGlobalCaUntilCaOverlapAfterTheFirstActivation) {
  {
    auto global = LocalCa::open_or_create(tmp / "global", {}, std::chrono::system_clock::now());
    ASSERT_TRUE(ok(global));
    og::test::write_file(tmp / "global.pem", global->cert_pem());
  }
  const std::string global_pem = og::test::read_file(tmp / "global.pem");
  cfg.origin_pull_ca = tmp / "global.pem";
  cfg.zones[0].ca_overlap = 2s;
  const auto bundle = tmp / "export" / (std::string(kZone) + ".pem");
  auto has_global = [&] { return og::test::read_file(bundle).find(global_pem) != std::string::npos; };
  {
    Manager m(io, mo);
    m.configure(&cfg);
    ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "unissued"; })) << zone(m).dump();
    EXPECT_TRUE(has_global());
    EXPECT_EQ(certs_only(og::test::read_file(bundle)),
              certs_only(og::test::read_file(tmp / "aop" / kZone / "ca.pem")) + global_pem);
    EXPECT_EQ(zone(m)["trusts_global_ca"], true);
    ASSERT_EQ(command(m, "aop-issue")["ok"], true);
    ASSERT_TRUE(run_until(m, [](const json& z) { return z["trusts_global_ca"] == false; })) << zone(m).dump();
    EXPECT_EQ(zone(m)["state"], "idle");
    EXPECT_FALSE(has_global());
    EXPECT_EQ(crl_serials(og::test::read_file(bundle)).size(), 1u);
    for (const auto& w : m.warnings(std::chrono::system_clock::now())) EXPECT_NE(w.id, "aop.global_ca_trusted");
  }
  {
    Manager m(io, mo);  // a restart: the state file says the migration is over
    m.configure(&cfg);
    ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "idle"; })) << zone(m).dump();
    ASSERT_EQ(command(m, "aop-revoke")["ok"], true);
    ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "unissued"; })) << zone(m).dump();
    EXPECT_EQ(zone(m)["trusts_global_ca"], false);
    EXPECT_FALSE(has_global());
  }
}

TEST_F(ManagerTest, MigrationOptedOutNeverTrustsTheGlobalCa) {
  cfg.zones[0].migrate_from_global = false;
  Manager m(io, mo);
  m.configure(&cfg);
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "unissued"; })) << zone(m).dump();
  const auto bundle = tmp / "export" / (std::string(kZone) + ".pem");
  EXPECT_EQ(certs_only(og::test::read_file(bundle)), og::test::read_file(tmp / "aop" / kZone / "ca.pem"));
  EXPECT_EQ(zone(m)["trusts_global_ca"], false);
  auto w = m.warnings(std::chrono::system_clock::now());
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].id, "aop.unissued");
}

// agentctl aop revoke: the working certificate is deleted, and ca_overlap later the exported
// CRL lists it, so the gatekeeper refuses it although it has not expired.
TEST_F(ManagerTest, RevokedCertificateEntersTheExportedCrl) {
  cfg.zones[0].ca_overlap = 1s;
  Manager m(io, mo);
  m.configure(&cfg);
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "unissued"; })) << zone(m).dump();
  const auto bundle = tmp / "export" / (std::string(kZone) + ".pem");
  EXPECT_EQ(crl_serials(og::test::read_file(bundle)).size(), 1u) << "the CRL is exported from the start";
  ASSERT_EQ(command(m, "aop-issue")["ok"], true);
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "idle" && z["current_cert_id"].is_string(); }));
  const std::string first = zone(m)["current_cert_id"];
  const std::string pem = og::test::read_file(tmp / "api" / "uploads" / (first + ".pem"));
  EXPECT_EQ(crl_verify_result(pem, og::test::read_file(bundle), std::chrono::system_clock::now()), X509_V_OK);
  auto r = command(m, "aop-revoke");
  ASSERT_EQ(r["ok"], true) << r.dump();
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["revoked_in_crl"] == 1; })) << zone(m).dump();
  EXPECT_EQ(crl_verify_result(pem, og::test::read_file(bundle), std::chrono::system_clock::now()),
            X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(zone(m)["state"], "unissued");
}

TEST_F(ManagerTest, DryRunListsCallsAndChangesNothing) {
  Manager m(io, mo);
  m.configure(&cfg);
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "unissued"; }));
  auto r = command(m, "aop-issue", {{"dry_run", true}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  ASSERT_GE(r["plan"].size(), 4u);
  EXPECT_EQ(r["plan"][0]["method"], "POST");
  EXPECT_THAT(r["plan"][0]["body"].get<std::string>(), HasSubstr("<redacted>"));
  EXPECT_EQ(uploads(), 0);
  if (std::filesystem::exists(tmp / "api" / "requests.log")) {
    EXPECT_THAT(server.requests(), Not(HasSubstr("POST")));
  }
  EXPECT_EQ(zone(m)["state"], "unissued");
}

TEST_F(ManagerTest, CommandsRefuseWhatTheyCannotDo) {
  Manager m(io, mo);
  m.configure(&cfg);
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "unissued"; }));
  EXPECT_EQ(command(m, "aop-issue", {{"zone", "00000000000000000000000000000000"}})["error"],
            "no [[aop.zone]] with zone_id 00000000000000000000000000000000");
  EXPECT_EQ(command(m, "aop-issue", {{"zone", "../etc"}})["ok"], false);
  EXPECT_EQ(command(m, "aop-issue", {{"dry_run", "yes"}})["ok"], false);
  Manager::Reply unused = [](json) {};
  EXPECT_FALSE(m.handle("refresh", json::object(), unused));
  EXPECT_TRUE(unused) << "a command it does not own leaves the reply to the caller";
  auto rv = command(m, "aop-revoke");
  ASSERT_EQ(rv["ok"], true) << rv.dump();
  EXPECT_TRUE(rv["deleted"].empty());

  Manager none(io, mo);
  none.configure(nullptr);
  EXPECT_EQ(command(none, "aop-issue")["error"], "no [[aop.zone]] is configured in the agent's config");
  EXPECT_EQ(none.metrics(), "");
}

TEST_F(ManagerTest, BadTokenIsReportedRetriedAndNeverEchoed) {
  write_token("wrong-token-5a5a5a");
  Manager m(io, mo);
  m.configure(&cfg);
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "unissued"; }));
  ASSERT_EQ(command(m, "aop-issue")["ok"], true);
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["failures"].get<unsigned>() >= 2; })) << zone(m).dump();
  const json z = zone(m);
  EXPECT_EQ(z["last_error_kind"], "auth");
  EXPECT_EQ(z["state"], "uploading");
  EXPECT_EQ(uploads(), 0);
  bool failing = false;
  for (const auto& w : m.warnings(std::chrono::system_clock::now())) failing |= w.id == "aop.failing" && w.needs_action;
  EXPECT_TRUE(failing);
  const std::string everything = m.status(std::chrono::system_clock::now()).dump() + m.metrics();
  EXPECT_THAT(everything, Not(HasSubstr("wrong-token-5a5a5a")));
  EXPECT_THAT(m.metrics(), HasSubstr("result=\"failed\"} "));
}

TEST_F(ManagerTest, UnusableTokenFileIsASetupFailure) {
  ::chmod((tmp / "token").c_str(), 0644);
  Manager m(io, mo);
  m.configure(&cfg);
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "setup_failed"; })) << zone(m).dump();
  EXPECT_THAT(zone(m)["last_error"].get<std::string>(), HasSubstr("lets others read it"));
  EXPECT_THAT(zone(m)["last_error"].get<std::string>(), Not(HasSubstr(kToken)));
  ::chmod((tmp / "token").c_str(), 0600);
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "unissued"; })) << zone(m).dump();
}

class ManagerSlowDeploy : public ManagerTest {
 protected:
  ManagerSlowDeploy() : ManagerTest("3") {}
};

TEST_F(ManagerSlowDeploy, RestartMidRotationResumesWithoutASecondUpload) {
  std::string first;
  {
    Manager m(io, mo);
    m.configure(&cfg);
    ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "unissued"; }));
    ASSERT_EQ(command(m, "aop-issue")["ok"], true);
    ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "deploying"; })) << zone(m).dump();
    first = zone(m)["next_cert_id"];
    // The agent stops here: the certificate is uploaded, not active yet.
  }
  Manager m(io, mo);
  m.configure(&cfg);
  ASSERT_TRUE(run_until(m, [](const json& z) { return z["state"] == "idle" && z["current_cert_id"].is_string(); }))
      << zone(m).dump();
  EXPECT_EQ(zone(m)["current_cert_id"], first);
  EXPECT_EQ(uploads(), 1);
  EXPECT_EQ(server.state()["enabled"], true);
}

}  // namespace
}  // namespace og::aop::test
