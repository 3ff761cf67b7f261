// [[aop.zone]] parsing (errors with file:line) and the API token file's checks.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aop/config.hpp"
#include "test_support.hpp"

namespace og::aop::test {
namespace {

using namespace std::chrono_literals;
using og::test::ok;
using og::test::refused;

constexpr const char* kZ = "0123456789abcdef0123456789abcdef";

TEST(AopConfig, FullZoneAndDefaults) {
  auto c = parse_aop_config(R"(
[[aop.zone]]
zone_id = "0123456789abcdef0123456789abcdef"
api_token_file = "/etc/originguard/cf-token"
hostnames = ["www.example.com", "*.example.org"]
ca_dir = "/var/lib/originguard/aop/main"
cert_lifetime = "60d"
renew_before = "20d"
api_base = "https://127.0.0.1:8443/client/v4/"
key_type = "rsa-2048"
migrate_from_global = false

[[aop.zone]]
zone_id = "fedcba9876543210fedcba9876543210"
api_token_file = "/etc/originguard/cf-token"
)",
                            "agent.toml");
  ASSERT_TRUE(ok(c));
  ASSERT_EQ(c->zones.size(), 2u);
  const auto& z = c->zones[0];
  EXPECT_EQ(z.zone_id, kZ);
  EXPECT_EQ(z.api_token_file, "/etc/originguard/cf-token");
  EXPECT_EQ(z.hostnames, (std::vector<std::string>{"www.example.com", "*.example.org"}));
  EXPECT_EQ(z.ca_dir, "/var/lib/originguard/aop/main");
  EXPECT_EQ(z.cert_lifetime, Seconds(86400 * 60));
  EXPECT_EQ(z.renew_before, Seconds(86400 * 20));
  EXPECT_EQ(z.api_base, "https://127.0.0.1:8443/client/v4");
  EXPECT_EQ(z.key_type, KeyType::rsa_2048);
  EXPECT_FALSE(z.migrate_from_global);
  const auto& d = c->zones[1];
  EXPECT_TRUE(d.migrate_from_global);  // the default: no request refused during the migration
  EXPECT_TRUE(d.hostnames.empty());    // zone level
  EXPECT_EQ(d.ca_dir, "/var/lib/originguard/aop/fedcba9876543210fedcba9876543210");
  EXPECT_EQ(d.cert_lifetime, Seconds(86400 * 90));
  EXPECT_EQ(d.renew_before, Seconds(86400 * 30));
  EXPECT_EQ(d.api_base, "https://api.cloudflare.com/client/v4");
  EXPECT_EQ(d.key_type, KeyType::ecdsa_p256);
  EXPECT_TRUE(parse_aop_config("", "agent.toml")->zones.empty());
}

struct Bad {
  const char* name;
  const char* body;  // the [[aop.zone]] table's lines after the header
  const char* want;  // in the message, which also starts with "agent.toml:<line>:"
};

const Bad kBad[] = {
    {"no_zone", R"(api_token_file = "/t")", "zone_id: required"},
    {"short_zone", "zone_id = \"0123\"\napi_token_file = \"/t\"", "32 lower-case hex"},
    {"upper_zone", "zone_id = \"0123456789ABCDEF0123456789ABCDEF\"\napi_token_file = \"/t\"", "32 lower-case hex"},
    {"no_token", "zone_id = \"0123456789abcdef0123456789abcdef\"", "api_token_file: required"},
    {"relative_token", "zone_id = \"0123456789abcdef0123456789abcdef\"\napi_token_file = \"t\"", "absolute"},
    {"bad_host", "zone_id = \"0123456789abcdef0123456789abcdef\"\napi_token_file = \"/t\"\nhostnames = [\"Www.x.com\"]",
     "host name"},
    {"host_injection",
     "zone_id = \"0123456789abcdef0123456789abcdef\"\napi_token_file = \"/t\"\nhostnames = [\"a.com\\\"}\"]",
     "host name"},
    {"dup_host",
     "zone_id = \"0123456789abcdef0123456789abcdef\"\napi_token_file = \"/t\"\nhostnames = [\"a.com\", \"a.com\"]",
     "twice"},
    {"http_base", "zone_id = \"0123456789abcdef0123456789abcdef\"\napi_token_file = \"/t\"\napi_base = \"http://x\"",
     "https://"},
    {"renew_ge_life",
     "zone_id = \"0123456789abcdef0123456789abcdef\"\napi_token_file = \"/t\"\ncert_lifetime = \"30d\"\nrenew_before = "
     "\"30d\"",
     "shorter than cert_lifetime"},
    {"short_life", "zone_id = \"0123456789abcdef0123456789abcdef\"\napi_token_file = \"/t\"\ncert_lifetime = \"10m\"",
     "at least"},
    {"unknown_key", "zone_id = \"0123456789abcdef0123456789abcdef\"\napi_token_file = \"/t\"\napi_token = \"x\"",
     "unknown key"},
    {"key_type", "zone_id = \"0123456789abcdef0123456789abcdef\"\napi_token_file = \"/t\"\nkey_type = \"dsa\"",
     "expected one of"},
    {"ca_overlap_zero", "zone_id = \"0123456789abcdef0123456789abcdef\"\napi_token_file = \"/t\"\nca_overlap = \"0s\"",
     "at least 1s"},
    {"migrate_not_bool",
     "zone_id = \"0123456789abcdef0123456789abcdef\"\napi_token_file = \"/t\"\nmigrate_from_global = \"yes\"",
     "migrate_from_global"},
};

class AopConfigBad : public ::testing::TestWithParam<Bad> {};

TEST_P(AopConfigBad, RefusedWithFileLineAndKey) {
  std::string text = std::string("# comment\n[[aop.zone]]\n") + GetParam().body + "\n";
  auto c = parse_aop_config(text, "agent.toml");
  ASSERT_TRUE(refused(c));
  const std::string& m = c.error().message;
  EXPECT_TRUE(m.starts_with("agent.toml:")) << m;
  EXPECT_NE(m.find("[aop.zone]"), std::string::npos) << m;
  EXPECT_NE(m.find(GetParam().want), std::string::npos) << m;
}

INSTANTIATE_TEST_SUITE_P(Table, AopConfigBad, ::testing::ValuesIn(kBad),
                         [](const auto& tp) { return std::string(tp.param.name); });

TEST(AopConfig, OriginPullCa) {
  auto c = parse_aop_config("[aop]\n", "agent.toml");
  ASSERT_TRUE(ok(c));
  EXPECT_TRUE(c->origin_pull_ca.empty());  // the built-in one
  c = parse_aop_config("[aop]\norigin_pull_ca = \"/srv/test-global-ca.pem\"\n", "agent.toml");
  ASSERT_TRUE(ok(c));
  EXPECT_EQ(c->origin_pull_ca, "/srv/test-global-ca.pem");
}

TEST(AopConfig, PollInterval) {
  auto c = parse_aop_config("[aop]\npoll_interval = \"2s\"\n", "agent.toml");
  ASSERT_TRUE(ok(c));
  EXPECT_EQ(c->poll_interval, og::Seconds(2));
  auto bad = parse_aop_config("[aop]\npoll_interval = \"0s\"\n", "agent.toml");
  ASSERT_TRUE(refused(bad));
  EXPECT_NE(bad.error().message.find("agent.toml:2: [aop] poll_interval: must be at least 1s"), std::string::npos)
      << bad.error().message;
}

TEST(AopConfig, DuplicateZonesAndSharedCaDirsAreRefused) {
  const char* zone = "[[aop.zone]]\nzone_id = \"0123456789abcdef0123456789abcdef\"\napi_token_file = \"/t\"\n";
  auto c = parse_aop_config(std::string(zone) + zone, "agent.toml");
  ASSERT_TRUE(refused(c));
  EXPECT_NE(c.error().message.find("agent.toml:5:"), std::string::npos) << c.error().message;
  auto d = parse_aop_config(
      "[[aop.zone]]\nzone_id = \"0123456789abcdef0123456789abcdef\"\napi_token_file = \"/t\"\nca_dir = \"/x\"\n"
      "[[aop.zone]]\nzone_id = \"fedcba9876543210fedcba9876543210\"\napi_token_file = \"/t\"\nca_dir = \"/x/\"\n",
      "agent.toml");
  ASSERT_TRUE(refused(d));
  EXPECT_NE(d.error().message.find("shared"), std::string::npos) << d.error().message;
  EXPECT_TRUE(refused(parse_aop_config("[aop]\nzone = 1\n", "agent.toml")));
  EXPECT_TRUE(refused(parse_aop_config("[aop]\nzones = []\n", "agent.toml")));
}

TEST(AopConfig, HostnameRules) {
  for (const char* h : {"example.com", "a-b.example.com", "*.example.com", "x1.y2.z3"})
    EXPECT_TRUE(valid_hostname(h)) << h;
  for (const char* h :
       {"", "com", "-a.com", "a-.com", "a..com", "a.com.", "*.", "a.*.com", "A.com", "a_b.com", "a com"})
    EXPECT_FALSE(valid_hostname(h)) << h;
}

TEST(ApiToken, ReadTrimmedOnlyFromAPrivateFile) {
  og::test::TempDir tmp;
  auto f = tmp / "token";
  og::test::write_file(f, "  abcDEF_123-xyz\n");
  ASSERT_EQ(::chmod(f.c_str(), 0600), 0);
  auto t = load_api_token(f);
  ASSERT_TRUE(ok(t));
  EXPECT_EQ(*t, "abcDEF_123-xyz");
  ASSERT_EQ(::chmod(f.c_str(), 0640), 0);
  auto loose = load_api_token(f);
  ASSERT_TRUE(refused(loose));
  EXPECT_NE(loose.error().message.find("0640"), std::string::npos) << loose.error().message;
  EXPECT_EQ(loose.error().message.find("abcDEF"), std::string::npos);
  ASSERT_EQ(::chmod(f.c_str(), 0600), 0);
  // A token that would break the header, or none at all; the value is never echoed.
  og::test::write_file(f, "abc\r\nX-Evil: 1");
  auto evil = load_api_token(f);
  ASSERT_TRUE(refused(evil));
  EXPECT_EQ(evil.error().message.find("abc"), std::string::npos);
  og::test::write_file(f, " \n");
  EXPECT_TRUE(refused(load_api_token(f)));
  std::filesystem::create_symlink(f, tmp / "link");
  EXPECT_TRUE(refused(load_api_token(tmp / "link")));
  if (::geteuid() == 0) {
    og::test::write_file(f, "tok");
    ASSERT_EQ(::chown(f.c_str(), 4242, 4242), 0);
    auto foreign = load_api_token(f);
    ASSERT_TRUE(refused(foreign));
    EXPECT_NE(foreign.error().message.find("owned by uid 4242"), std::string::npos);
  }
}

}  // namespace
}  // namespace og::aop::test

namespace og::aop::test {
namespace {

// The agent's whole config with the [aop] reader the agent passes: --check-config and reload
// refuse a bad [[aop.zone]] or an unusable token file with file, line and reason.
class AgentAopConfig : public ::testing::Test {
 protected:
  og::test::TempDir tmp;
  std::filesystem::path token = tmp / "token";
  void SetUp() override {
    og::test::write_file(token, "secret-token-77\n");
    ::chmod(token.c_str(), 0600);
  }
  std::string doc() const {
    return "[protect]\nmode = \"audit\"\n\n[aop]\nexport_dir = \"/run/og-test/aop\"\n\n[[aop.zone]]\nzone_id = \"" +
           std::string(kZ) + "\"\napi_token_file = \"" + token.string() + "\"\n";
  }
};

TEST_F(AgentAopConfig, ReadWithTheAgentsReader) {
  auto c = parse_agent_config(doc(), "agent.toml", &read_agent_aop);
  ASSERT_TRUE(ok(c));
  ASSERT_TRUE(c->aop);
  ASSERT_EQ(c->aop->zones.size(), 1u);
  EXPECT_EQ(c->aop->export_dir, "/run/og-test/aop");
  EXPECT_EQ(c->aop->poll_interval, og::Seconds(15));
  EXPECT_EQ(c->aop->zones[0].zone_id, kZ);
  EXPECT_TRUE(ok(parse_agent_config("[protect]\nmode = \"audit\"\n", "agent.toml", &read_agent_aop)));
  EXPECT_FALSE(parse_agent_config("[protect]\nmode = \"audit\"\n", "agent.toml", &read_agent_aop)->aop);
}

TEST_F(AgentAopConfig, WithoutTheReaderAopIsAnUnknownSection) {
  auto c = parse_agent_config(doc(), "agent.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("agent.toml:4: aop: unknown section"), std::string::npos) << c.error().message;
}

TEST_F(AgentAopConfig, TokenFileRefusedWithFileLineAndReasonNeverTheToken) {
  ::chmod(token.c_str(), 0640);
  auto c = parse_agent_config(doc(), "agent.toml", &read_agent_aop);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, "agent.toml:9: [aop.zone] api_token_file: " + token.string() +
                                   ": mode 0640 lets others read it; expected 0600 or stricter");
  std::filesystem::remove(token);
  c = parse_agent_config(doc(), "agent.toml", &read_agent_aop);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("agent.toml:9: [aop.zone] api_token_file: "), std::string::npos)
      << c.error().message;
  og::test::write_file(token, "two words\n");
  ::chmod(token.c_str(), 0600);
  c = parse_agent_config(doc(), "agent.toml", &read_agent_aop);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("agent.toml:9: [aop.zone] api_token_file: "), std::string::npos);
  EXPECT_EQ(c.error().message.find("two words"), std::string::npos) << "the token is never echoed";
}

TEST_F(AgentAopConfig, BadZoneRefusedWithLine) {
  auto c = parse_agent_config(doc() + "renew_before = \"100d\"\n", "agent.toml", &read_agent_aop);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("agent.toml:10: [aop.zone] renew_before: must be shorter"), std::string::npos)
      << c.error().message;
  c = parse_agent_config(doc() + "api_ca_file = \"relative.pem\"\n", "agent.toml", &read_agent_aop);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("agent.toml:10: [aop.zone] api_ca_file: must be an absolute path"),
            std::string::npos)
      << c.error().message;
  c = parse_agent_config(doc() + "\n[aop.bogus]\n", "agent.toml", &read_agent_aop);
  ASSERT_FALSE(c);
}

}  // namespace
}  // namespace og::aop::test
