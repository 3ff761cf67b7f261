#include <gtest/gtest.h>

#include "config.hpp"

using namespace og::gk;

namespace {
const char* kMinimal = R"(
[gatekeeper]
listen = ["127.0.0.1:8443", "[::1]:8443"]
[[host]]
names = ["App.Example.com", "*.example.net"]
cert = "/etc/c.pem"
key = "/etc/k.pem"
upstream = "127.0.0.1:8080"
)";
}

TEST(GkConfig, MinimalDefaults) {
  auto c = parse_gatekeeper_config(kMinimal, "gk.toml");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->listen.size(), 2u);
  EXPECT_EQ(c->listen[1].host, "::1");
  ASSERT_EQ(c->hosts.size(), 1u);
  const auto& h = c->hosts[0];
  EXPECT_EQ(h.names[0], "app.example.com");
  EXPECT_EQ(h.names[1], "*.example.net");
  EXPECT_EQ(h.mtls, Mtls::required);
  EXPECT_TRUE(h.client_ca.empty());  // embedded origin-pull CA
  EXPECT_EQ(h.mode, Mode::http);
  EXPECT_EQ(h.on_failure, OnFailure::alert);
  EXPECT_EQ(h.proxy_protocol, ProxyProtocol::off);
  EXPECT_TRUE(c->default_host.empty());
  EXPECT_EQ(c->max_response_header_bytes, 65536u);
  EXPECT_EQ(c->max_connection_lifetime, std::chrono::hours(1));
  EXPECT_EQ(c->max_client_chain_bytes, 16384u);
  EXPECT_EQ(c->max_connections_per_source, 256u);
  EXPECT_EQ(c->client_hello_timeout, std::chrono::seconds(5));
}

TEST(GkConfig, FullHost) {
  auto c = parse_gatekeeper_config(R"(
[gatekeeper]
listen = "0.0.0.0:443"
default_host = "a.test"
header_timeout = "5s"
max_header_bytes = 8192
max_response_header_bytes = 131072
max_connection_lifetime = "10m"
metrics_listen = "127.0.0.1:9464"
[[host]]
names = ["a.test"]
cert = ["/c/ec.pem", "/c/rsa.pem"]
key = ["/c/ec.key", "/c/rsa.key"]
mtls = "optional"
client_ca = "/c/zone.pem"
crl = ["/c/zone.crl"]
pin_spki_sha256 = ["4u+f6FrDn1Itx3NQXzmYdap1rBDEl2bKiZ+PmbB9o0w="]
client_cn = ["origin-pull.cloudflare.net"]
require_edge_ip = true
upstream = "unix:/run/app.sock"
mode = "tcp"
proxy_protocol = "v2"
on_failure = "close"
)",
                                   "gk.toml");
  ASSERT_TRUE(c) << c.error().message;
  const auto& h = c->hosts[0];
  EXPECT_EQ(c->default_host, "a.test");
  ASSERT_TRUE(c->metrics_listen);
  EXPECT_EQ(c->metrics_listen->port, 9464);
  EXPECT_EQ(c->header_timeout.count(), 5);
  EXPECT_EQ(c->max_response_header_bytes, 131072u);
  EXPECT_EQ(c->max_connection_lifetime, std::chrono::minutes(10));
  EXPECT_EQ(h.certs.size(), 2u);
  EXPECT_EQ(h.mtls, Mtls::optional);
  EXPECT_EQ(h.upstream.unix_path, "/run/app.sock");
  EXPECT_EQ(h.mode, Mode::tcp);
  EXPECT_EQ(h.proxy_protocol, ProxyProtocol::v2);
  EXPECT_EQ(h.on_failure, OnFailure::close);
  EXPECT_TRUE(h.require_edge_ip);
}

struct BadCase {
  const char* name;
  const char* toml;
  const char* want;  // substring of the error
};

class GkConfigBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(GkConfigBad, NamesTheProblem) {
  auto c = parse_gatekeeper_config(GetParam().toml, "gk.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find(GetParam().want), std::string::npos) << c.error().message;
}

#define HOST "[[host]]\nnames=[\"a.test\"]\ncert=\"/c\"\nkey=\"/k\"\nupstream=\"127.0.0.1:1\"\n"
#define LISTEN "[gatekeeper]\nlisten=\"127.0.0.1:443\"\n"

INSTANTIATE_TEST_SUITE_P(
    Cases, GkConfigBad,
    ::testing::Values(
        BadCase{"unknown_key", LISTEN "bogus = 1\n" HOST, "gk.toml:3: [gatekeeper] bogus: unknown key"},
        BadCase{"unknown_host_key", LISTEN HOST "verify = 1\n", "[host] verify: unknown key"},
        BadCase{"no_listen", HOST, "[gatekeeper] listen: at least one"},
        BadCase{"no_host", LISTEN, "at least one [[host]]"},
        BadCase{"bad_listen", "[gatekeeper]\nlisten=\"example.com:443\"\n" HOST, "not a numeric IP"},
        BadCase{"bad_mtls", LISTEN HOST "mtls = \"yes\"\n", "[host] mtls: expected one of \"required\""},
        BadCase{"relative_cert",
                LISTEN "[[host]]\nnames=[\"a.test\"]\ncert=\"c.pem\"\nkey=\"/k\"\nupstream=\"127.0.0.1:1\"\n",
                "must be an absolute path"},
        BadCase{"key_count",
                LISTEN "[[host]]\nnames=[\"a.test\"]\ncert=[\"/c\",\"/d\"]\nkey=\"/k\"\nupstream=\"127.0.0.1:1\"\n",
                "one key per cert"},
        BadCase{"bad_pin", LISTEN HOST "pin_spki_sha256 = [\"abc\"]\n", "not a base64 SHA-256"},
        BadCase{"dup_name", LISTEN HOST HOST, "listed by two [[host]] tables"},
        BadCase{"bad_default", "[gatekeeper]\nlisten=\"127.0.0.1:443\"\ndefault_host=\"x.test\"\n" HOST,
                "default_host: \"x.test\" is not a name"},
        BadCase{"page_in_tcp", LISTEN HOST "mode=\"tcp\"\non_failure=\"403\"\n", "needs mode = \"http\""},
        BadCase{"pins_without_mtls",
                LISTEN HOST "mtls=\"off\"\npin_cert_sha256=[\"4u+f6FrDn1Itx3NQXzmYdap1rBDEl2bKiZ+PmbB9o0w=\"]\n",
                "need mtls"},
        BadCase{"bad_wildcard",
                LISTEN "[[host]]\nnames=[\"*.com\"]\ncert=\"/c\"\nkey=\"/k\"\nupstream=\"127.0.0.1:1\"\n",
                "wildcard needs at least two labels"},
        BadCase{"bad_upstream",
                LISTEN "[[host]]\nnames=[\"a.test\"]\ncert=\"/c\"\nkey=\"/k\"\nupstream=\"localhost\"\n",
                "[host] upstream"},
        BadCase{"upstream_ca_without_tls", LISTEN HOST "upstream_ca = \"/ca.pem\"\n", "needs upstream_tls = true"},
        BadCase{"tls_to_unix",
                LISTEN
                "[[host]]\nnames=[\"a.test\"]\ncert=\"/c\"\nkey=\"/k\"\nupstream=\"unix:/s\"\nupstream_tls=true\n",
                "not supported"},
        BadCase{"relative_control_socket", LISTEN "control_socket = \"gk.sock\"\n" HOST,
                "gk.toml:3: [gatekeeper] control_socket: must be an absolute path"},
        BadCase{"long_control_socket",
                LISTEN "control_socket = "
                       "\"/"
                       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                       "xxxxxxxxxxxxxxxxxxxxxxxxx\"\n" HOST,
                "control_socket: longer than a unix socket path"},
        BadCase{"group_without_socket", LISTEN "control_socket = \"\"\ncontrol_group = \"adm\"\n" HOST,
                "control_group: needs a control_socket"},
        BadCase{"response_header_limit_small", LISTEN "max_response_header_bytes = 512\n" HOST,
                "[gatekeeper] max_response_header_bytes"},
        BadCase{"response_header_limit_large", LISTEN "max_response_header_bytes = 2000000\n" HOST,
                "[gatekeeper] max_response_header_bytes"},
        BadCase{"lifetime_zero", LISTEN "max_connection_lifetime = 0\n" HOST,
                "[gatekeeper] max_connection_lifetime: must be at least"},
        BadCase{"lifetime_huge", LISTEN "max_connection_lifetime = \"31d\"\n" HOST,
                "[gatekeeper] max_connection_lifetime: must be at most"},
        BadCase{"idle_timeout_huge", LISTEN "idle_timeout = 172800\n" HOST,
                "[gatekeeper] idle_timeout: must be at most"},
        BadCase{"chain_bytes_too_small", LISTEN "max_client_chain_bytes = 512\n" HOST,
                "[gatekeeper] max_client_chain_bytes"},
        BadCase{"chain_bytes_too_large", LISTEN "max_client_chain_bytes = 2000000\n" HOST,
                "[gatekeeper] max_client_chain_bytes"},
        BadCase{"hello_timeout_zero", LISTEN "client_hello_timeout = 0\n" HOST,
                "[gatekeeper] client_hello_timeout: must be at least"},
        BadCase{"per_source_negative", LISTEN "max_connections_per_source = -1\n" HOST,
                "[gatekeeper] max_connections_per_source"},
        BadCase{"syntax", "[gatekeeper\n", "gk.toml:1: syntax"}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(GkConfig, UpstreamForms) {
  EXPECT_EQ(parse_upstream("[::1]:80")->host, "::1");
  EXPECT_EQ(parse_upstream("127.0.0.1:8080")->port, 8080);
  EXPECT_FALSE(parse_upstream("127.0.0.1:0"));
  EXPECT_FALSE(parse_upstream("unix:relative"));
  EXPECT_EQ(parse_upstream("unix:/x")->to_string(), "unix:/x");
}

TEST(GkConfig, ControlSocket) {
  auto c = parse_gatekeeper_config(kMinimal, "gk.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->control.socket, "/run/originguard/gatekeeper.sock");
  EXPECT_TRUE(c->control.group.empty());
  c = parse_gatekeeper_config(LISTEN "control_socket = \"/tmp/gk.sock\"\ncontrol_group = \"adm\"\n" HOST, "gk.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->control.socket, "/tmp/gk.sock");
  EXPECT_EQ(c->control.group, "adm");
  c = parse_gatekeeper_config(LISTEN "control_socket = \"\"\n" HOST, "gk.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->control.socket.empty());  // disabled
}

TEST(GkConfig, TlsLimits) {
  auto c = parse_gatekeeper_config(
      LISTEN "max_client_chain_bytes = 32768\nmax_connections_per_source = 0\nclient_hello_timeout = \"2s\"\n" HOST,
      "gk.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->max_client_chain_bytes, 32768u);
  EXPECT_EQ(c->max_connections_per_source, 0u);  // no cap
  EXPECT_EQ(c->client_hello_timeout, std::chrono::seconds(2));
}

TEST(GkConfig, EmptyListenMeansSocketActivation) {
  auto c = parse_gatekeeper_config("[gatekeeper]\nlisten = []\n" HOST, "gk.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->listen.empty());
}

// client_ca = "aop:<zone_id>": the bundle the agent exports for that [[aop.zone]], under
// [gatekeeper] aop_dir (the agent's [aop] export_dir), whichever of the two comes first.
TEST(GkConfig, ClientCaFromTheAgentsAopZone) {
  const std::string host = R"(
[[host]]
names = ["a.test"]
cert = "/c.pem"
key = "/k.pem"
upstream = "127.0.0.1:8080"
client_ca = "aop:0123456789abcdef0123456789abcdef"
)";
  auto c = parse_gatekeeper_config("[gatekeeper]\nlisten = [\"127.0.0.1:8443\"]\n" + host, "gk.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->hosts[0].client_ca, "/run/originguard/aop/0123456789abcdef0123456789abcdef.pem");
  EXPECT_EQ(c->hosts[0].client_ca_aop_zone, "0123456789abcdef0123456789abcdef");
  c = parse_gatekeeper_config(host + "[gatekeeper]\nlisten = [\"127.0.0.1:8443\"]\naop_dir = \"/srv/aop\"\n",
                              "gk.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->hosts[0].client_ca, "/srv/aop/0123456789abcdef0123456789abcdef.pem");
  EXPECT_TRUE(c->origin_pull_ca.empty());  // the built-in global origin-pull CA
  c = parse_gatekeeper_config(host + "[gatekeeper]\nlisten = [\"127.0.0.1:8443\"]\norigin_pull_ca = \"/t/ca.pem\"\n",
                              "gk.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->origin_pull_ca, "/t/ca.pem");

  for (const char* bad : {"aop:", "aop:0123456789ABCDEF0123456789abcdef", "aop:../../etc/passwd",
                          "aop:0123456789abcdef0123456789abcdef/x"}) {
    std::string text = "[gatekeeper]\nlisten = [\"127.0.0.1:8443\"]\n" + host;
    text.replace(text.find("aop:0123456789abcdef0123456789abcdef"), 36, bad);
    auto b = parse_gatekeeper_config(text, "gk.toml");
    ASSERT_FALSE(b) << bad;
    EXPECT_NE(b.error().message.find("gk.toml:9: [host] client_ca: \"aop:\" must be followed by the zone id"),
              std::string::npos)
        << b.error().message;
  }
}
