// status JSON, warnings and metrics built from a real policy generation: certificates made
// with OpenSSL at test time (one expiring in 5 days), the embedded global CA vs a zone CA
// with a pin, and per-host counters kept across a reload through HostStatsRegistry; and
// agentctl's rendering and health verdict of that same JSON (one schema, tested end to end).
#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/pem.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "gatekeeper.hpp"  // agentctl's view of this JSON
#include "promtool.hpp"
#include "render.hpp"
#include "status.hpp"
#include "tls_harness.hpp"

using namespace og::gk;
namespace fs = std::filesystem;
using std::chrono::system_clock;

namespace {

// A self-signed EC certificate valid from one day ago for `days` days; cert and key as PEM.
void make_cert(const fs::path& cert, const fs::path& key, const std::string& cn, long days) {
  namespace t = og::gk::test;
  t::CertOptions o;
  o.not_before = std::time(nullptr) - 86400;
  o.not_after = std::time(nullptr) + days * 86400;
  auto k = t::keygen("EC");
  auto x = t::certify(k.get(), cn, nullptr, nullptr, o);
  t::write_certs(cert, {x.get()});
  t::write_key(key, k.get());
}

std::string pin_of(const fs::path& cert) {
  auto certs = load_certs_file(cert);
  auto pin = spki_sha256((*certs)[0].get());
  return base64(*pin);
}

class GkStatus : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("og-gk-status-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    make_cert(dir / "a.pem", dir / "a.key", "a.test", 365);
    make_cert(dir / "b.pem", dir / "b.key", "b.test", 5);  // expires in < 14 days
    make_cert(dir / "zone-ca.pem", dir / "zone-ca.key", "Zone AOP CA", 365);
  }
  void TearDown() override { fs::remove_all(dir); }

  std::string config(bool with_b = true) const {
    std::string t = "[gatekeeper]\nlisten = \"127.0.0.1:8443\"\n";
    // a.test: the embedded global origin-pull CA, no pins.
    t += "[[host]]\nnames = [\"a.test\", \"www.a.test\"]\ncert = \"" + (dir / "a.pem").string() + "\"\nkey = \"" +
         (dir / "a.key").string() + "\"\nupstream = \"127.0.0.1:8080\"\n";
    // b.test: a zone CA with a pin; its own certificate expires soon.
    if (with_b)
      t += "[[host]]\nnames = [\"b.test\"]\ncert = \"" + (dir / "b.pem").string() + "\"\nkey = \"" +
           (dir / "b.key").string() + "\"\nclient_ca = \"" + (dir / "zone-ca.pem").string() +
           "\"\npin_spki_sha256 = [\"" + pin_of(dir / "zone-ca.pem") +
           "\"]\nmode = \"tcp\"\nupstream = \"unix:/run/b.sock\"\n";
    // n.test: no client certificates at all.
    t += "[[host]]\nnames = [\"n.test\"]\ncert = \"" + (dir / "a.pem").string() + "\"\nkey = \"" +
         (dir / "a.key").string() + "\"\nmtls = \"off\"\nupstream = \"127.0.0.1:8081\"\n";
    return t;
  }

  std::shared_ptr<const PolicySet> build(HostStatsRegistry& reg, bool with_b = true) const {
    auto cfg = parse_gatekeeper_config(config(with_b), (dir / "gk.toml").string());
    EXPECT_TRUE(cfg) << cfg.error().message;
    auto set = PolicySet::build(*cfg, reg);
    EXPECT_TRUE(set) << set.error().message;
    return *set;
  }

  ProcessFacts facts() const {
    ProcessFacts p;
    p.pid = 4242;
    p.config_file = (dir / "gk.toml").string();
    p.started_at = system_clock::from_time_t(1'700'000'000);
    p.loaded_at = system_clock::from_time_t(1'700'000'060);
    p.last_reload = ReloadOutcome{system_clock::from_time_t(1'700'000'060), "control", false,
                                  "gk.toml:7: [host] mtls: expected one of \"required\", \"optional\", \"off\""};
    p.workers = 2;
    p.listeners = {{"127.0.0.1:8443", "systemd"}};
    p.connections_active = 3;
    p.refused_sni = 4;
    p.refused_overload = 1;
    p.refused_not_edge = 5;
    p.refused_source_limit = 6;
    p.handshake_errors = 2;
    return p;
  }

  fs::path dir;
};

}  // namespace

TEST_F(GkStatus, JsonShape) {
  HostStatsRegistry reg;
  auto set = build(reg);
  const HostPolicy& a = *set->hosts()[0];
  a.stats.handshakes_ok += 7;
  a.stats.refused_no_cert += 2;
  a.stats.refused_verify += 1;
  a.stats.active += 3;
  const auto now = system_clock::now();
  auto p = facts();
  p.started_at = now - std::chrono::seconds(90);
  auto j = status_json(*set, p, now);

  EXPECT_EQ(j["version"], OG_VERSION);
  EXPECT_EQ(j["pid"], 4242);
  EXPECT_EQ(j["uptime_s"], 90);
  EXPECT_EQ(j["loaded_at"], "2023-11-14T22:14:20Z");
  EXPECT_EQ(j["config_file"], (dir / "gk.toml").string());
  EXPECT_EQ(j["last_reload"]["ok"], false);
  EXPECT_EQ(j["last_reload"]["trigger"], "control");
  EXPECT_EQ(j["last_reload"]["time"], "2023-11-14T22:14:20Z");
  EXPECT_NE(j["last_reload"]["error"].get<std::string>().find("gk.toml:7:"), std::string::npos);
  EXPECT_EQ(j["workers"], 2);
  EXPECT_EQ(j["listeners"][0]["source"], "systemd");
  EXPECT_EQ(j["connections_active"], 3);
  EXPECT_EQ(j["refused_sni"], 4);
  EXPECT_EQ(j["refused_overload"], 1);
  EXPECT_EQ(j["refused_not_edge"], 5);
  EXPECT_EQ(j["refused_source_limit"], 6);
  EXPECT_EQ(j["handshake_errors"], 2);
  ASSERT_EQ(j["hosts"].size(), 3u);

  const auto& ja = j["hosts"][0];
  EXPECT_EQ(ja["names"], nlohmann::json({"a.test", "www.a.test"}));
  EXPECT_EQ(ja["mtls"], "required");
  EXPECT_EQ(ja["mode"], "http");
  EXPECT_EQ(ja["upstream"], "127.0.0.1:8080");
  EXPECT_EQ(ja["client_ca"], "origin-pull (global)");
  EXPECT_EQ(ja["pinned"], false);
  EXPECT_EQ(ja["handshakes_ok"], 7);
  EXPECT_EQ(ja["refusals"],
            nlohmann::json({{"no_cert", 2}, {"verify", 1}, {"pin", 0}, {"subject", 0}, {"edge_ip", 0}}));
  EXPECT_EQ(ja["active_connections"], 3);
  ASSERT_EQ(ja["certs"].size(), 1u);
  EXPECT_EQ(ja["certs"][0]["file"], (dir / "a.pem").string());
  EXPECT_EQ(ja["certs"][0]["warning"], false);
  EXPECT_GE(ja["certs"][0]["days_left"].get<int>(), 363);
  ASSERT_EQ(ja["warnings"].size(), 1u);
  EXPECT_NE(ja["warnings"][0].get<std::string>().find("global origin-pull CA without pins"), std::string::npos);

  const auto& jb = j["hosts"][1];
  EXPECT_EQ(jb["client_ca"], (dir / "zone-ca.pem").string());
  EXPECT_EQ(jb["pinned"], true);
  EXPECT_EQ(jb["mode"], "tcp");
  EXPECT_EQ(jb["upstream"], "unix:/run/b.sock");
  EXPECT_EQ(jb["certs"][0]["warning"], true);
  const int b_days = jb["certs"][0]["days_left"].get<int>();
  EXPECT_TRUE(b_days == 4 || b_days == 5) << b_days;
  EXPECT_EQ(jb["certs"][0]["not_after"].get<std::string>().size(), 20u);  // 2026-01-31T12:00:00Z
  ASSERT_EQ(jb["warnings"].size(), 1u);
  EXPECT_NE(jb["warnings"][0].get<std::string>().find("b.pem expires in"), std::string::npos);

  const auto& jn = j["hosts"][2];
  EXPECT_TRUE(jn["client_ca"].is_null());  // mtls off: no CA, no global-CA warning
  EXPECT_TRUE(jn["warnings"].empty());

  // Top level: every host's warnings, named by host.
  ASSERT_EQ(j["warnings"].size(), 2u);
  EXPECT_EQ(j["warnings"][0].get<std::string>().rfind("host a.test: client_ca is the global", 0), 0u);
  EXPECT_EQ(j["warnings"][1].get<std::string>().rfind("host b.test: certificate ", 0), 0u);
}

TEST_F(GkStatus, ExpiredCertificateAndSuccessfulReload) {
  HostStatsRegistry reg;
  auto set = build(reg);
  // A year and a day later, a.test's certificate has expired.
  const auto later = system_clock::now() + std::chrono::days(367);
  auto w = host_warnings(*set->hosts()[0], later);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NE(w[1].find("has expired"), std::string::npos);
  auto p = facts();
  p.last_reload->ok = true;
  auto j = status_json(*set, p, later);
  EXPECT_TRUE(j["last_reload"]["error"].is_null());
  EXPECT_LT(j["hosts"][0]["certs"][0]["days_left"].get<int>(), 0);
  EXPECT_EQ(j["hosts"][0]["certs"][0]["warning"], true);
  p.last_reload.reset();
  EXPECT_TRUE(status_json(*set, p, later)["last_reload"].is_null());
}

TEST_F(GkStatus, CountersSurviveReload) {
  HostStatsRegistry reg;
  auto gen1 = build(reg);
  gen1->hosts()[0]->stats.handshakes_ok += 5;
  gen1->hosts()[1]->stats.refused_pin += 1;
  auto gen2 = build(reg);  // same hosts: same counters
  EXPECT_EQ(&gen1->hosts()[0]->stats, &gen2->hosts()[0]->stats);
  gen2->hosts()[0]->stats.handshakes_ok += 1;
  EXPECT_EQ(status_json(*gen2, facts(), system_clock::now())["hosts"][0]["handshakes_ok"], 6);

  // b.test removed: forgotten by the registry once the new generation is in force, while the
  // old generation's policy still holds its counters.
  auto gen3 = build(reg, /*with_b=*/false);
  reg.retain_only(*gen3);
  EXPECT_EQ(reg.size(), 2u);
  EXPECT_EQ(gen1->hosts()[1]->stats.refused_pin.load(), 1u);
  auto gen4 = build(reg);  // b.test back: fresh counters
  EXPECT_EQ(gen4->hosts()[1]->stats.refused_pin.load(), 0u);
  EXPECT_EQ(gen4->hosts()[0]->stats.handshakes_ok.load(), 6u);

  // Without a registry (--check-config, fuzzers) every build has its own counters.
  auto cfg = parse_gatekeeper_config(config(), "gk.toml");
  auto lone = PolicySet::build(*cfg);
  ASSERT_TRUE(lone);
  EXPECT_EQ((*lone)->hosts()[0]->stats.handshakes_ok.load(), 0u);
}

TEST_F(GkStatus, MetricsText) {
  HostStatsRegistry reg;
  auto set = build(reg);
  set->hosts()[0]->stats.refused_verify += 2;
  set->hosts()[0]->stats.active += 1;
  auto m = metrics_text(*set, facts());
  EXPECT_NE(m.find("og_gk_connections_active 3\n"), std::string::npos);
  EXPECT_NE(m.find("og_gk_handshake_errors_total 2\n"), std::string::npos);
  EXPECT_NE(m.find("og_gk_refused_not_edge_total 5\n"), std::string::npos);
  EXPECT_NE(m.find("og_gk_refused_source_limit_total 6\n"), std::string::npos);
  EXPECT_NE(m.find("og_gk_refusals_total{host=\"a.test\",reason=\"verify\"} 2\n"), std::string::npos);
  EXPECT_NE(m.find("og_gk_host_connections_active{host=\"a.test\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("og_gk_global_ca_without_pins{host=\"a.test\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("og_gk_global_ca_without_pins{host=\"b.test\"} 0\n"), std::string::npos);
  EXPECT_NE(m.find("og_gk_global_ca_without_pins{host=\"n.test\"} 0\n"), std::string::npos);
}

// Every family once, HELP and TYPE before its samples, those together although they come from
// several hosts: what `promtool check metrics` (and an OpenMetrics parser) demands.
TEST_F(GkStatus, MetricsTextPassesPromtool) {
  HostStatsRegistry reg;
  auto set = build(reg);
  set->hosts()[1]->stats.handshakes_ok += 3;
  const auto m = metrics_text(*set, facts());
  EXPECT_EQ(og::test::promtool_check_metrics(m), "") << m;
  for (const char* family : {"og_gk_handshakes_total", "og_gk_refusals_total", "og_gk_cert_not_after_seconds"}) {
    const auto help = m.find(std::string("# HELP ") + family + " ");
    ASSERT_NE(help, std::string::npos) << family;
    EXPECT_EQ(m.find(std::string("# HELP ") + family + " ", help + 1), std::string::npos) << family;
    // its last sample comes before any other family's HELP line after its own
    const auto next_help = m.find("# HELP ", help + 1);
    EXPECT_LT(m.rfind(std::string("\n") + family + "{"), next_help) << family;
  }
}

TEST_F(GkStatus, BuildErrorNamesFileAndLine) {
  auto text = config();
  fs::remove(dir / "b.key");
  auto cfg = parse_gatekeeper_config(text, (dir / "gk.toml").string());
  ASSERT_TRUE(cfg);
  auto set = PolicySet::build(*cfg);
  ASSERT_FALSE(set);
  // The [[host]] b.test table starts on line 8 of the generated file.
  EXPECT_EQ(set.error().message.rfind((dir / "gk.toml").string() + ":8: [[host]] b.test: key ", 0), 0u)
      << set.error().message;
}

// agentctl reads exactly what status_json writes: its degraded verdict and its rendering of
// the real JSON, not of a hand-built copy of it.
TEST_F(GkStatus, AgentctlViewOfTheRealStatus) {
  HostStatsRegistry reg;
  auto set = build(reg);
  const HostPolicy& a = *set->hosts()[0];
  a.stats.handshakes_ok += 7;
  a.stats.refused_no_cert += 2;
  a.stats.refused_verify += 1;
  a.stats.active += 3;
  auto p = facts();  // its last reload was refused
  const auto view = og::ctl::gatekeeper_view(status_json(*set, p, system_clock::now()), "/run/gk.sock");

  // Degraded: the refused reload and b.test's certificate; the global CA on a.test is shown only.
  auto problems = og::ctl::gatekeeper_problems(view);
  ASSERT_EQ(problems.size(), 2u) << view.dump(2);
  EXPECT_EQ(
      problems[0].rfind("gatekeeper reload refused (the previous config keeps serving): gk.toml:7: [host] mtls", 0), 0u)
      << problems[0];
  EXPECT_EQ(problems[1].rfind("gatekeeper host b.test: certificate " + (dir / "b.pem").string() + " expires in ", 0),
            0u)
      << problems[1];

  const std::string out = og::ctl::render_gatekeeper(view, false);
  EXPECT_NE(out.find(std::string("Gatekeeper ") + OG_VERSION), std::string::npos) << out;
  EXPECT_NE(out.find("7 ok; refused: 2 no cert, 1 verify, 0 pin, 0 subject, 0 edge IP"), std::string::npos) << out;
  EXPECT_NE(out.find("3 connection(s)"), std::string::npos) << out;
  EXPECT_NE(out.find((dir / "b.pem").string() + "  expires "), std::string::npos) << out;
  EXPECT_NE(out.find("WARNING: expires in under 14 days"), std::string::npos) << out;
  // The global-CA warning is shown once, for a.test only.
  const auto first = out.find("WARNING: relies on the global origin-pull CA without pins");
  ASSERT_NE(first, std::string::npos) << out;
  EXPECT_LT(first, out.find("b.test"));
  EXPECT_EQ(out.find("WARNING: relies on the global", first + 1), std::string::npos) << out;

  // A successful reload clears that problem; a year later a.test's certificate has expired.
  p.last_reload->ok = true;
  problems = og::ctl::gatekeeper_problems(
      og::ctl::gatekeeper_view(status_json(*set, p, system_clock::now() + std::chrono::days(367)), "/s"));
  ASSERT_EQ(problems.size(), 3u);  // a.test, b.test, and n.test (which serves a.pem too)
  EXPECT_NE(problems[0].find("gatekeeper host a.test: certificate " + (dir / "a.pem").string() + " has expired"),
            std::string::npos)
      << problems[0];
}

// A CRL past its nextUpdate refuses every client of its host: status says so, and the metric
// lets monitoring see it coming.
TEST_F(GkStatus, CrlPastItsNextUpdateIsAWarning) {
  auto key = og::gk::test::keygen("EC");
  auto ca = og::gk::test::certify(key.get(), "zone CA", nullptr, nullptr, og::gk::test::ca_options());
  const std::time_t next = std::time(nullptr) + 3600;
  og::gk::test::write_crl(dir / "zone.crl", og::gk::test::make_crl(ca.get(), key.get(), {}, next - 7200, next).get());
  std::string text = config();
  text.replace(text.find("mode = \"tcp\""), 0, "crl = \"" + (dir / "zone.crl").string() + "\"\n");
  auto cfg = parse_gatekeeper_config(text, (dir / "gk.toml").string());
  ASSERT_TRUE(cfg) << cfg.error().message;
  auto set = PolicySet::build(*cfg);
  ASSERT_TRUE(set) << set.error().message;
  const HostPolicy& b = *(*set)->hosts()[1];
  EXPECT_EQ(host_warnings(b, system_clock::from_time_t(next - 1)).size(), 1u);  // the expiring certificate
  auto w = host_warnings(b, system_clock::from_time_t(next));
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].rfind("crl " + (dir / "zone.crl").string() + " is past its nextUpdate (", 0), 0u) << w[0];
  EXPECT_NE(metrics_text(**set, facts())
                .find("og_gk_crl_next_update_seconds{host=\"b.test\",crl=\"" + (dir / "zone.crl").string() + "\"} " +
                      std::to_string(next) + "\n"),
            std::string::npos);
}

// A file with several CRLs (an aop bundle during a CA rollover has one per CA) is one series, at
// the earliest nextUpdate: a scrape with two samples of one series is an error.
TEST_F(GkStatus, CrlFileWithTwoCrlsIsOneSeriesAtTheEarliest) {
  auto key1 = og::gk::test::keygen("EC");
  auto ca1 = og::gk::test::certify(key1.get(), "zone CA 1", nullptr, nullptr, og::gk::test::ca_options());
  auto key2 = og::gk::test::keygen("EC");
  auto ca2 = og::gk::test::certify(key2.get(), "zone CA 2", nullptr, nullptr, og::gk::test::ca_options());
  const std::time_t now = std::time(nullptr);
  og::gk::test::write_crl(dir / "one.crl",
                          og::gk::test::make_crl(ca1.get(), key1.get(), {}, now - 60, now + 7200).get());
  og::gk::test::write_crl(dir / "two.crl",
                          og::gk::test::make_crl(ca2.get(), key2.get(), {}, now - 60, now + 3600).get());
  {
    std::ofstream both(dir / "both.crl");
    both << std::ifstream(dir / "one.crl").rdbuf() << std::ifstream(dir / "two.crl").rdbuf();
  }
  std::string text = config();
  text.replace(text.find("mode = \"tcp\""), 0, "crl = \"" + (dir / "both.crl").string() + "\"\n");
  auto cfg = parse_gatekeeper_config(text, (dir / "gk.toml").string());
  ASSERT_TRUE(cfg) << cfg.error().message;
  auto set = PolicySet::build(*cfg);
  ASSERT_TRUE(set) << set.error().message;
  const std::string m = metrics_text(**set, facts());
  const std::string series =
      "og_gk_crl_next_update_seconds{host=\"b.test\",crl=\"" + (dir / "both.crl").string() + "\"} ";
  const auto first = m.find(series);
  ASSERT_NE(first, std::string::npos) << m;
  EXPECT_EQ(m.substr(first + series.size(), m.find('\n', first) - first - series.size()), std::to_string(now + 3600));
  EXPECT_EQ(m.find(series, first + 1), std::string::npos) << m;
}
