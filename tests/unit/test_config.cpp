// parse_agent_config: defaults, every key, and errors that name file, line, section and key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "originguard/config.hpp"
#include "test_support.hpp"

namespace og {
namespace {

using namespace std::chrono_literals;
using test::ok;
using test::refused;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

Result<AgentConfig> parse(std::string_view text) { return parse_agent_config(text, "agent.toml"); }

TEST(Config, EmptyFileGivesDefaults) {
  auto c = parse("");
  ASSERT_TRUE(ok(c));
  EXPECT_EQ(c->path, "agent.toml");
  const auto& r = c->ranges;
  ASSERT_EQ(r.sources.size(), 1u);
  EXPECT_THAT(r.sources[0], ElementsAre("https://api.cloudflare.com/client/v4/ips"));
  EXPECT_EQ(r.refresh_interval, 3600s);
  EXPECT_DOUBLE_EQ(r.jitter, 0.10);
  EXPECT_EQ(r.retry_min, 30s);
  EXPECT_EQ(r.retry_max, 3600s);
  EXPECT_EQ(r.stale_after, 3 * 86400s);
  EXPECT_TRUE(r.extra_allow.empty());
  EXPECT_EQ(r.state_dir, "/var/lib/originguard");
  EXPECT_FALSE(r.include_china_network);
  EXPECT_EQ(r.max_body_bytes, 1u << 20);
  EXPECT_EQ(r.connect_timeout, 10s);
  EXPECT_EQ(r.total_timeout, 30s);
  EXPECT_DOUBLE_EQ(r.max_shrink, 0.5);
  EXPECT_EQ(r.min_ipv4, 1u);
  EXPECT_EQ(r.min_ipv6, 1u);
  EXPECT_EQ(r.ca_file, "");
  EXPECT_EQ(r.export_file, "/run/originguard/edge-ranges.json");
  EXPECT_THAT(c->protect.ports, ElementsAre(80, 443));
  EXPECT_TRUE(c->protect.mgmt_allow.empty());
  EXPECT_EQ(c->protect.mode, ProtectMode::enforce);
  EXPECT_EQ(c->control.socket, "/run/originguard/agent.sock");
  EXPECT_EQ(c->control.group, "");
  EXPECT_EQ(c->control.admin_group, "");
  EXPECT_TRUE(c->nftables.enabled);
  EXPECT_TRUE(c->xdp.enabled);
  EXPECT_THAT(c->xdp.interfaces, ElementsAre("auto"));
  EXPECT_EQ(c->xdp.mode, XdpMode::auto_);
  EXPECT_EQ(c->xdp.pin_dir, "/sys/fs/bpf/originguard");
  EXPECT_STREQ(to_string(XdpMode::auto_), "auto");
  EXPECT_STREQ(to_string(XdpMode::native), "native");
  EXPECT_STREQ(to_string(XdpMode::generic), "generic");
  EXPECT_EQ(c->realip, RealIpConfig{}) << "no real-IP file, no command";
  EXPECT_FALSE(c->realip.any());
  EXPECT_EQ(c->realip.on_change_timeout, 30s);
  EXPECT_FALSE(c->metrics.listen) << "no metrics listener unless asked for";
  EXPECT_STREQ(to_string(ProtectMode::enforce), "enforce");
  EXPECT_STREQ(to_string(ProtectMode::audit), "audit");
}

TEST(Config, EveryKey) {
  constexpr std::string_view text = R"(
[ranges]
sources = [
  "https://api.cloudflare.com/client/v4/ips",
  ["https://www.cloudflare.com/ips-v4", "https://www.cloudflare.com/ips-v6"],
  "file:///etc/originguard/ranges.json",
]
refresh_interval = "2h"
jitter = 0.2
retry_min = "1m"
retry_max = 1800
stale_after = "2d"
extra_allow = ["192.0.2.7", "198.51.100.0/24", "2001:db8::/32"]
state_dir = "/srv/og"
include_china_network = true
max_body_bytes = 65536
connect_timeout = "5s"
total_timeout = "1m30s"
max_shrink = 0.25
min_ipv4 = 10
min_ipv6 = 0
ca_file = "/etc/ssl/test-ca.pem"
export_file = "/run/og/ranges.json"

[protect]
ports = [443, 8443, 443]
mgmt_allow = ["203.0.113.5", "2001:db8:bad::/48"]
mode = "audit"

[control]
socket = "/run/og.sock"
group = "adm"
admin_group = "og-admin"

[nftables]
enabled = false

[xdp]
enabled = false
interfaces = ["eth0", "bond0.100", "eth0", "auto"]
mode = "generic"
pin_dir = "/run/og-bpf/og"

[realip]
nginx = "/etc/nginx/conf.d/cloudflare-realip.conf"
haproxy = "/etc/haproxy/cloudflare.lst"
apache = "/etc/apache2/conf-available/cloudflare-realip.conf"
on_change = ["/usr/bin/systemctl", "try-reload-or-restart", "nginx", ""]
on_change_timeout = "1m"

[metrics]
listen = "[::1]:9463"
)";
  auto c = parse(text);
  ASSERT_TRUE(ok(c));
  const auto& r = c->ranges;
  ASSERT_EQ(r.sources.size(), 3u);
  EXPECT_THAT(r.sources[0], ElementsAre("https://api.cloudflare.com/client/v4/ips"));
  EXPECT_THAT(r.sources[1], ElementsAre("https://www.cloudflare.com/ips-v4", "https://www.cloudflare.com/ips-v6"));
  EXPECT_THAT(r.sources[2], ElementsAre("file:///etc/originguard/ranges.json"));
  EXPECT_EQ(r.refresh_interval, 2h);
  EXPECT_DOUBLE_EQ(r.jitter, 0.2);
  EXPECT_EQ(r.retry_min, 60s);
  EXPECT_EQ(r.retry_max, 1800s);
  EXPECT_EQ(r.stale_after, 48h);
  EXPECT_THAT(r.extra_allow.strings(Family::v4), ElementsAre("192.0.2.7/32", "198.51.100.0/24"));
  EXPECT_THAT(r.extra_allow.strings(Family::v6), ElementsAre("2001:db8::/32"));
  EXPECT_EQ(r.state_dir, "/srv/og");
  EXPECT_TRUE(r.include_china_network);
  EXPECT_EQ(r.max_body_bytes, 65536u);
  EXPECT_EQ(r.connect_timeout, 5s);
  EXPECT_EQ(r.total_timeout, 90s);
  EXPECT_DOUBLE_EQ(r.max_shrink, 0.25);
  EXPECT_EQ(r.min_ipv4, 10u);
  EXPECT_EQ(r.min_ipv6, 0u);
  EXPECT_EQ(r.ca_file, "/etc/ssl/test-ca.pem");
  EXPECT_EQ(r.export_file, "/run/og/ranges.json");
  EXPECT_THAT(c->protect.ports, ElementsAre(443, 8443)) << "duplicates dropped, order kept";
  EXPECT_THAT(c->protect.mgmt_allow.strings(Family::v4), ElementsAre("203.0.113.5/32"));
  EXPECT_THAT(c->protect.mgmt_allow.strings(Family::v6), ElementsAre("2001:db8:bad::/48"));
  EXPECT_EQ(c->protect.mode, ProtectMode::audit);
  EXPECT_EQ(c->control.socket, "/run/og.sock");
  EXPECT_EQ(c->control.group, "adm");
  EXPECT_EQ(c->control.admin_group, "og-admin");
  EXPECT_FALSE(c->nftables.enabled);
  EXPECT_FALSE(c->xdp.enabled);
  EXPECT_THAT(c->xdp.interfaces, ElementsAre("eth0", "bond0.100", "auto")) << "duplicates dropped, order kept";
  EXPECT_EQ(c->xdp.mode, XdpMode::generic);
  EXPECT_EQ(c->xdp.pin_dir, "/run/og-bpf/og");
  EXPECT_EQ(c->realip.nginx, "/etc/nginx/conf.d/cloudflare-realip.conf");
  EXPECT_EQ(c->realip.haproxy, "/etc/haproxy/cloudflare.lst");
  EXPECT_EQ(c->realip.apache, "/etc/apache2/conf-available/cloudflare-realip.conf");
  EXPECT_THAT(c->realip.on_change, ElementsAre("/usr/bin/systemctl", "try-reload-or-restart", "nginx", ""));
  EXPECT_EQ(c->realip.on_change_timeout, 60s);
  ASSERT_TRUE(c->metrics.listen);
  EXPECT_EQ(c->metrics.listen->to_string(), "[::1]:9463");
}

struct ErrorCase {
  std::string_view name;
  std::string_view text;
  std::string_view prefix;  // the message starts with this ("file:LINE: [section] key: ")
  std::string_view why;     // and contains this
};

TEST(Config, ErrorsNameFileLineSectionAndKey) {
  const ErrorCase cases[] = {
      {"unknown key", "[ranges]\nrefresh_interval = \"1h\"\nrefresh_intervall = \"2h\"\n",
       "agent.toml:3: [ranges] refresh_intervall: ", "unknown key"},
      {"unknown key in protect", "\n\n[protect]\nports = [443]\nallow = []\n",
       "agent.toml:5: [protect] allow: ", "unknown key (expected one of: ports, mgmt_allow, mode"},
      {"unknown key in control", "[control]\nsokcet = \"/x\"\n", "agent.toml:2: [control] sokcet: ", "unknown key"},
      {"unknown key in nftables", "[nftables]\nenable = true\n", "agent.toml:2: [nftables] enable: ", "unknown key"},
      {"unknown section", "[ranges]\n\n[protection]\nports = [80]\n", "agent.toml:3: protection: ", "unknown section"},
      {"unknown top-level key", "debug = true\n", "agent.toml:1: debug: ", "unknown section"},
      {"section not a table", "ranges = 5\n", "agent.toml:1: ranges: ", "must be a table"},
      {"syntax error", "[ranges]\nrefresh_interval = \n", "agent.toml:2: syntax: ", ""},
      {"unterminated string", "[control]\ngroup = \"adm\n", "agent.toml:2: syntax: ", ""},
      // types
      {"interval bool", "[ranges]\nrefresh_interval = true\n",
       "agent.toml:2: [ranges] refresh_interval: ", "expected a duration"},
      {"interval float", "[ranges]\nrefresh_interval = 1.5\n",
       "agent.toml:2: [ranges] refresh_interval: ", "expected a duration"},
      // never converted to an integer first (out of range: undefined behaviour)
      {"interval huge float", "[ranges]\nrefresh_interval = 2.2e19\n",
       "agent.toml:2: [ranges] refresh_interval: ", "expected a duration"},
      {"port huge float", "[protect]\nports = [1e20]\n", "agent.toml:2: [protect] ports: ", "1..65535"},
      {"port float", "[protect]\nports = [443.0]\n", "agent.toml:2: [protect] ports: ", "1..65535"},
      {"jitter string", "[ranges]\njitter = \"10%\"\n", "agent.toml:2: [ranges] jitter: ", "expected a number"},
      {"jitter range", "[ranges]\njitter = 0.6\n", "agent.toml:2: [ranges] jitter: ", "between 0 and 0.5"},
      {"max_shrink range", "[ranges]\nmax_shrink = 1.5\n", "agent.toml:2: [ranges] max_shrink: ", "between 0 and 1"},
      {"jitter nan", "[ranges]\njitter = nan\n", "agent.toml:2: [ranges] jitter: ", "between 0 and 0.5"},
      {"max_shrink nan", "[ranges]\nmax_shrink = -nan\n", "agent.toml:2: [ranges] max_shrink: ", "between 0 and 1"},
      {"max_shrink inf", "[ranges]\nmax_shrink = inf\n", "agent.toml:2: [ranges] max_shrink: ", "between 0 and 1"},
      {"china string", "[ranges]\ninclude_china_network = \"yes\"\n",
       "agent.toml:2: [ranges] include_china_network: ", "expected true or false"},
      {"state_dir relative", "[ranges]\nstate_dir = \"var/lib\"\n",
       "agent.toml:2: [ranges] state_dir: ", "absolute path"},
      {"state_dir number", "[ranges]\nstate_dir = 1\n", "agent.toml:2: [ranges] state_dir: ", "expected a string"},
      {"max_body_bytes small", "[ranges]\nmax_body_bytes = 100\n",
       "agent.toml:2: [ranges] max_body_bytes: ", "between 1024 and"},
      {"min_ipv4 negative", "[ranges]\nmin_ipv4 = -1\n", "agent.toml:2: [ranges] min_ipv4: ", "between 0 and"},
      {"min_ipv6 float", "[ranges]\nmin_ipv6 = 1.0\n", "agent.toml:2: [ranges] min_ipv6: ", "expected an integer"},
      {"extra_allow string", "[ranges]\nextra_allow = \"192.0.2.0/24\"\n",
       "agent.toml:2: [ranges] extra_allow: ", "expected a list of prefixes"},
      {"extra_allow host bits", "[ranges]\nextra_allow = [\n  \"192.0.2.0/24\",\n  \"198.51.100.1/24\",\n]\n",
       "agent.toml:4: [ranges] extra_allow: ", "canonical form is 198.51.100.0/24"},
      {"extra_allow number", "[ranges]\nextra_allow = [1]\n",
       "agent.toml:2: [ranges] extra_allow: ", "expected a string prefix"},
      {"mgmt_allow scoped", "[protect]\nmgmt_allow = [\"fe80::1%eth0\"]\n",
       "agent.toml:2: [protect] mgmt_allow: ", "scoped address"},
      {"retry_min above retry_max", "[ranges]\nretry_max = \"1m\"\nretry_min = \"2m\"\n",
       "agent.toml:3: [ranges] retry_min: ", "must not exceed retry_max (1m)"},
      // sources
      {"http source", "[ranges]\nsources = [\"http://api.cloudflare.com/client/v4/ips\"]\n",
       "agent.toml:2: [ranges] sources: ", "plain http is refused"},
      {"http in a union", "[ranges]\nsources = [[\"https://a.example/v4\", \"http://a.example/v6\"]]\n",
       "agent.toml:2: [ranges] sources: ", "\"http://a.example/v6\" is not an https://"},
      {"bare https scheme", "[ranges]\nsources = [\"https://\"]\n",
       "agent.toml:2: [ranges] sources: ", "not an https://"},
      {"relative file url", "[ranges]\nsources = [\"file://ranges.json\"]\n",
       "agent.toml:2: [ranges] sources: ", "not an https:// or file:///"},
      {"ftp", "[ranges]\nsources = [\"ftp://x/y\"]\n", "agent.toml:2: [ranges] sources: ", "not an https://"},
      {"sources string", "[ranges]\nsources = \"https://a.example/\"\n",
       "agent.toml:2: [ranges] sources: ", "non-empty list"},
      {"sources empty", "[ranges]\nsources = []\n", "agent.toml:2: [ranges] sources: ", "non-empty list"},
      {"empty union", "[ranges]\nsources = [[]]\n", "agent.toml:2: [ranges] sources: ", "non-empty list of URLs"},
      {"number in union", "[ranges]\nsources = [[\"https://a.example/\", 5]]\n",
       "agent.toml:2: [ranges] sources: ", "expected a URL string"},
      // protect
      {"port zero", "[protect]\nports = [0]\n", "agent.toml:2: [protect] ports: ", "1..65535"},
      {"port too big", "[protect]\nports = [443, 65536]\n", "agent.toml:2: [protect] ports: ", "1..65535"},
      {"port negative", "[protect]\nports = [-80]\n", "agent.toml:2: [protect] ports: ", "1..65535"},
      {"port string", "[protect]\nports = [\"443\"]\n", "agent.toml:2: [protect] ports: ", "1..65535"},
      {"ports not a list", "[protect]\nports = 443\n", "agent.toml:2: [protect] ports: ", "expected a list"},
      {"mode typo", "[protect]\nmode = \"enforcing\"\n", "agent.toml:2: [protect] mode: ", "\"enforce\" or \"audit\""},
      {"mode case", "[protect]\nmode = \"Audit\"\n", "agent.toml:2: [protect] mode: ", "\"enforce\" or \"audit\""},
      // control / nftables
      {"socket relative", "[control]\nsocket = \"agent.sock\"\n", "agent.toml:2: [control] socket: ", "absolute path"},
      {"group number", "[control]\ngroup = 4\n", "agent.toml:2: [control] group: ", "expected a string"},
      {"admin_group number", "[control]\nadmin_group = 0\n",
       "agent.toml:2: [control] admin_group: ", "expected a string"},
      // checked here, not when the agent binds it after applying the rules
      {"socket path too long",
       "[control]\nsocket = "
       "\"/run/originguard/"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\"\n",
       "agent.toml:2: [control] socket: ", "longer than a unix socket path may be (107 bytes)"},
      {"nftables enabled string", "[nftables]\nenabled = \"no\"\n",
       "agent.toml:2: [nftables] enabled: ", "expected true or false"},
      // xdp
      {"unknown key in xdp", "[xdp]\ninterface = [\"eth0\"]\n", "agent.toml:2: [xdp] interface: ", "unknown key"},
      {"xdp enabled string", "[xdp]\nenabled = \"yes\"\n", "agent.toml:2: [xdp] enabled: ", "expected true or false"},
      {"xdp interfaces empty", "[xdp]\ninterfaces = []\n", "agent.toml:2: [xdp] interfaces: ", "non-empty list"},
      {"xdp interfaces not a list", "[xdp]\ninterfaces = \"eth0\"\n",
       "agent.toml:2: [xdp] interfaces: ", "non-empty list"},
      {"xdp interface too long", "[xdp]\ninterfaces = [\"abcdefghijklmnop\"]\n",
       "agent.toml:2: [xdp] interfaces: ", "1-15 characters"},
      {"xdp interface with a slash", "[xdp]\ninterfaces = [\"eth0/1\"]\n",
       "agent.toml:2: [xdp] interfaces: ", "no '/'"},
      {"xdp interface with a space", "[xdp]\ninterfaces = [\"eth 0\"]\n",
       "agent.toml:2: [xdp] interfaces: ", "interface name"},
      {"xdp interface dot-dot", "[xdp]\ninterfaces = [\"..\"]\n", "agent.toml:2: [xdp] interfaces: ", "interface name"},
      {"xdp interface number", "[xdp]\ninterfaces = [2]\n", "agent.toml:2: [xdp] interfaces: ", "interface name"},
      {"xdp on loopback", "[xdp]\ninterfaces = [\"eth0\", \"lo\"]\n",
       "agent.toml:2: [xdp] interfaces: ", "nftables accepts loopback"},
      {"xdp mode", "[xdp]\nmode = \"driver\"\n", "agent.toml:2: [xdp] mode: ", "\"auto\", \"native\" or \"generic\""},
      {"xdp pin_dir relative", "[xdp]\npin_dir = \"bpf/og\"\n", "agent.toml:2: [xdp] pin_dir: ", "absolute path"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.name));
    auto r = parse(c.text);
    ASSERT_TRUE(refused(r));
    EXPECT_THAT(r.error().message, StartsWith(std::string(c.prefix)));
    EXPECT_THAT(r.error().message, HasSubstr(std::string(c.why)));
  }
}

TEST(Config, Durations) {
  struct Case {
    std::string_view value;  // TOML value text
    std::optional<std::chrono::seconds> want;
    std::string_view why = "";
  };
  const Case cases[] = {
      {"\"1h\"", 3600s},
      {"\"90s\"", 90s},
      {"\"1h30m\"", 5400s},
      {"\"2d\"", 172800s},
      {"\"1d12h\"", 129600s},
      {"600", 600s},
      {"\"1\"", std::nullopt, "missing unit"},
      {"\"1x\"", std::nullopt, "unknown unit \"x\""},
      {"\"1H\"", std::nullopt, "unknown unit \"H\""},
      {"\"1h3\xd0\x8b\"", std::nullopt, "unknown unit \"\\xd0\""},  // half a UTF-8 character, escaped
      {"\"1.5h\"", std::nullopt, "unknown unit \".\""},
      {"\"h\"", std::nullopt, "expected a number"},
      {"\"\"", std::nullopt, "empty duration"},
      {"\"-1h\"", std::nullopt, "expected a number"},
      {"\"1h 30m\"", std::nullopt, "expected a number"},
      {"\"0s\"", std::nullopt, "must be at least 1s"},
      {"0", std::nullopt, "must be at least 1s"},
      {"-5", std::nullopt, "must be at least 1s"},
      {"\"99999999999d\"", std::nullopt, "too large"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.value));
    auto r = parse("[ranges]\nstale_after = " + std::string(c.value) + "\n");
    if (c.want) {
      ASSERT_TRUE(ok(r));
      EXPECT_EQ(r->ranges.stale_after, *c.want);
    } else {
      ASSERT_TRUE(refused(r));
      EXPECT_THAT(r.error().message, StartsWith("agent.toml:2: [ranges] stale_after: "));
      EXPECT_THAT(r.error().message, HasSubstr(std::string(c.why)));
    }
  }
}

TEST(Config, RetryMaxIsCappedAtTheInterval) {
  auto c = parse("[ranges]\nrefresh_interval = \"10m\"\nretry_min = \"20m\"\nretry_max = \"2h\"\n");
  ASSERT_TRUE(ok(c));
  EXPECT_EQ(c->ranges.retry_max, 600s);
  EXPECT_EQ(c->ranges.retry_min, 600s);
}

TEST(Config, EmptyExportFileDisablesIt) {
  auto c = parse("[ranges]\nexport_file = \"\"\n");
  ASSERT_TRUE(ok(c));
  EXPECT_TRUE(c->ranges.export_file.empty());
  auto rel = parse("[ranges]\nexport_file = \"x.json\"\n");
  ASSERT_TRUE(refused(rel));
  EXPECT_THAT(rel.error().message, StartsWith("agent.toml:2: [ranges] export_file: "));
}

TEST(Config, PortBoundaries) {
  auto c = parse("[protect]\nports = [1, 65535]\n");
  ASSERT_TRUE(ok(c));
  EXPECT_THAT(c->protect.ports, ElementsAre(1, 65535));
  // An empty list protects nothing: refused, not taken literally.
  auto empty = parse("[protect]\nports = []\n");
  ASSERT_TRUE(refused(empty));
  EXPECT_THAT(empty.error().message, StartsWith("agent.toml:2: [protect] ports: "));
  EXPECT_THAT(empty.error().message, HasSubstr("at least one port"));
}

// Integer seconds and duration strings share one upper bound: 2^63-1 seconds once overflowed
// the verify timer into a busy loop and the refresh schedule into a fetch flood.
TEST(Config, EveryDurationIsBoundedWhateverItsForm) {
  const std::pair<std::string_view, std::string_view> keys[] = {
      {"ranges", "refresh_interval"}, {"ranges", "retry_min"},         {"ranges", "retry_max"},
      {"ranges", "stale_after"},      {"ranges", "connect_timeout"},   {"ranges", "total_timeout"},
      {"protect", "verify_interval"}, {"realip", "on_change_timeout"},
  };
  for (const auto& [sec, key] : keys) {
    for (std::string_view value : {"9223372036854775807", "100000001", "\"1158d\"", "\"100000001s\""}) {
      SCOPED_TRACE(std::string(key) + " = " + std::string(value));
      auto r = parse("[" + std::string(sec) + "]\n" + std::string(key) + " = " + std::string(value) + "\n");
      ASSERT_TRUE(refused(r));
      EXPECT_THAT(r.error().message, StartsWith("agent.toml:2: [" + std::string(sec) + "] " + std::string(key) + ": "));
      EXPECT_THAT(r.error().message, HasSubstr("too large"));
    }
  }
  for (std::string_view value : {"100000000", "\"100000000s\""}) {
    SCOPED_TRACE(value);
    auto r = parse("[protect]\nverify_interval = " + std::string(value) + "\n");
    ASSERT_TRUE(ok(r));
    EXPECT_EQ(r->protect.verify_interval, kMaxDuration);
  }
}

// extra_allow and mgmt_allow reach edge_v4/mgmt_v4 and the exported snapshot the gatekeeper
// trusts: they get the same width rule as the fetched ranges.
TEST(Config, AllowListsAreAsNarrowAsFetchedRanges) {
  const ErrorCase cases[] = {
      {"extra_allow everything", "[ranges]\nextra_allow = [\"0.0.0.0/0\", \"::/0\"]\n",
       "agent.toml:2: [ranges] extra_allow: ", "prefix 0.0.0.0/0 is broader than /8"},
      {"extra_allow v6 /0", "[ranges]\nextra_allow = [\n  \"192.0.2.0/24\",\n  \"::/0\",\n]\n",
       "agent.toml:4: [ranges] extra_allow: ", "prefix ::/0 is broader than /12"},
      {"mgmt_allow everything", "[protect]\nmgmt_allow = [\"0.0.0.0/0\"]\n",
       "agent.toml:2: [protect] mgmt_allow: ", "prefix 0.0.0.0/0 is broader than /8"},
      {"mgmt_allow /7", "[protect]\nmgmt_allow = [\"8.0.0.0/7\"]\n",
       "agent.toml:2: [protect] mgmt_allow: ", "broader than /8"},
      {"mgmt_allow 2000::/3", "[protect]\nmgmt_allow = [\"2000::/3\"]\n",
       "agent.toml:2: [protect] mgmt_allow: ", "broader than /12"},
      {"extra_allow many /8s",
       "[ranges]\nextra_allow = [\"1.0.0.0/8\", \"2.0.0.0/8\", \"3.0.0.0/8\", \"4.0.0.0/8\", \"5.0.0.0/8\"]\n",
       "agent.toml:2: [ranges] extra_allow: ", "IPv4 prefixes cover 83886080 addresses"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.name));
    auto r = parse(c.text);
    ASSERT_TRUE(refused(r));
    EXPECT_THAT(r.error().message, StartsWith(std::string(c.prefix)));
    EXPECT_THAT(r.error().message, HasSubstr(std::string(c.why)));
  }
  auto widest =
      parse("[ranges]\nextra_allow = [\"10.0.0.0/8\", \"2400::/12\"]\n[protect]\nmgmt_allow = [\"11.0.0.0/8\"]\n");
  ASSERT_TRUE(ok(widest));
  EXPECT_EQ(widest->ranges.extra_allow.size(), 2u);
}

// The SSH lock-out guard is a config rule: --check-config, start and reload refuse it (the
// running config stays), instead of an apply that fails and leaves every port open.
TEST(Config, ProtectingSshNeedsAManagementAllowList) {
  auto r = parse("[protect]\nports = [443, 22]\n");
  ASSERT_TRUE(refused(r));
  EXPECT_THAT(r.error().message, StartsWith("agent.toml:2: [protect] ports: "));
  EXPECT_THAT(r.error().message, HasSubstr("refusing to protect port 22"));
  EXPECT_THAT(r.error().message, HasSubstr("mgmt_allow"));
  EXPECT_TRUE(ok(parse("[protect]\nports = [443, 22]\nmgmt_allow = [\"192.0.2.0/24\"]\n")));

  // The server port of the SSH session the agent was started from (SSH_CONNECTION).
  test::TempDir dir;
  test::write_file(dir / "a.toml", "[protect]\nports = [443, 2222]\n");
  auto s = load_agent_config(dir / "a.toml", false, 2222);
  ASSERT_TRUE(refused(s));
  EXPECT_THAT(s.error().message, StartsWith((dir / "a.toml").string() + ": [protect] ports: "));
  EXPECT_THAT(s.error().message, HasSubstr("port 2222"));
  EXPECT_TRUE(ok(load_agent_config(dir / "a.toml", false, 2200)));
  EXPECT_TRUE(ok(load_agent_config(dir / "a.toml", false, std::nullopt)));

  EXPECT_EQ(ssh_port_from_connection("203.0.113.9 51234 192.0.2.1 2222"), 2222);
  EXPECT_EQ(ssh_port_from_connection("2001:db8::9 51234 2001:db8::1 22"), 22);
  EXPECT_EQ(ssh_port_from_connection("203.0.113.9 51234 192.0.2.1"), std::nullopt);
  EXPECT_EQ(ssh_port_from_connection("a b c 99999"), std::nullopt);
  EXPECT_EQ(ssh_port_from_connection(""), std::nullopt);
}

TEST(Config, LoadFromFile) {
  test::TempDir dir;
  auto missing_ok = load_agent_config(dir / "none.toml", true, std::nullopt);
  ASSERT_TRUE(ok(missing_ok));
  EXPECT_EQ(missing_ok->ranges.refresh_interval, 3600s);
  EXPECT_TRUE(missing_ok->path.empty()) << "built-in defaults have no path";

  auto missing = load_agent_config(dir / "none.toml", false, std::nullopt);
  ASSERT_TRUE(refused(missing));
  EXPECT_THAT(missing.error().message, HasSubstr((dir / "none.toml").string()));
  EXPECT_EQ(missing.error().sys_errno, ENOENT);

  test::write_file(dir / "a.toml", "[protect]\nmode = \"audit\"\n");
  auto a = load_agent_config(dir / "a.toml", false, std::nullopt);
  ASSERT_TRUE(ok(a));
  EXPECT_EQ(a->protect.mode, ProtectMode::audit);
  EXPECT_EQ(a->path, dir / "a.toml");

  test::write_file(dir / "b.toml", "[protect]\n\nmode = \"block\"\n");
  auto b = load_agent_config(dir / "b.toml", true, std::nullopt);
  ASSERT_TRUE(refused(b));
  EXPECT_THAT(b.error().message, StartsWith((dir / "b.toml").string() + ":3: [protect] mode: "));
}

TEST(Config, ShippedExampleIsValidAndShowsTheDefaults) {
  // packaging/agent.toml says "the values shown are the defaults": hold it to that.
  auto shipped = parse(test::read_file(std::filesystem::path(OG_SOURCE_DIR) / "packaging" / "agent.toml"));
  ASSERT_TRUE(ok(shipped));
  auto defaults = parse("");
  ASSERT_TRUE(ok(defaults));
  const auto& s = shipped->ranges;
  const auto& d = defaults->ranges;
  EXPECT_EQ(s.sources, d.sources);
  EXPECT_EQ(s.refresh_interval, d.refresh_interval);
  EXPECT_DOUBLE_EQ(s.jitter, d.jitter);
  EXPECT_EQ(s.retry_min, d.retry_min);
  EXPECT_EQ(s.retry_max, d.retry_max);
  EXPECT_EQ(s.stale_after, d.stale_after);
  EXPECT_EQ(s.extra_allow, d.extra_allow);
  EXPECT_EQ(s.state_dir, d.state_dir);
  EXPECT_EQ(s.include_china_network, d.include_china_network);
  EXPECT_EQ(s.max_body_bytes, d.max_body_bytes);
  EXPECT_EQ(s.connect_timeout, d.connect_timeout);
  EXPECT_EQ(s.total_timeout, d.total_timeout);
  EXPECT_DOUBLE_EQ(s.max_shrink, d.max_shrink);
  EXPECT_EQ(s.min_ipv4, d.min_ipv4);
  EXPECT_EQ(s.min_ipv6, d.min_ipv6);
  EXPECT_EQ(s.ca_file, d.ca_file);
  EXPECT_EQ(s.export_file, d.export_file);
  EXPECT_EQ(shipped->protect.ports, defaults->protect.ports);
  EXPECT_EQ(shipped->protect.mgmt_allow, defaults->protect.mgmt_allow);
  EXPECT_EQ(shipped->protect.mode, defaults->protect.mode);
  EXPECT_EQ(shipped->control.socket, defaults->control.socket);
  EXPECT_EQ(shipped->control.group, defaults->control.group);
  EXPECT_EQ(shipped->control.admin_group, defaults->control.admin_group);
  EXPECT_EQ(shipped->nftables.enabled, defaults->nftables.enabled);
  EXPECT_EQ(shipped->xdp.enabled, defaults->xdp.enabled);
  EXPECT_EQ(shipped->xdp.interfaces, defaults->xdp.interfaces);
  EXPECT_EQ(shipped->xdp.mode, defaults->xdp.mode);
  EXPECT_EQ(shipped->xdp.pin_dir, defaults->xdp.pin_dir);
  EXPECT_EQ(shipped->realip, defaults->realip);
  EXPECT_EQ(shipped->metrics, defaults->metrics);
}

TEST(Config, RealIpFileOffWithEmptyString) {
  auto c = parse("[realip]\nnginx = \"\"\nhaproxy = \"/etc/haproxy/cf.lst\"\n");
  ASSERT_TRUE(ok(c));
  EXPECT_TRUE(c->realip.nginx.empty());
  EXPECT_EQ(c->realip.haproxy, "/etc/haproxy/cf.lst");
}

TEST(Config, RealIpErrors) {
  const ErrorCase cases[] = {
      {"unknown key", "[realip]\ncaddy = \"/etc/caddy/x\"\n", "agent.toml:2: [realip] caddy: ",
       "unknown key (expected one of: nginx, haproxy, apache, on_change, on_change_timeout)"},
      {"relative file", "[realip]\nnginx = \"conf.d/x.conf\"\n", "agent.toml:2: [realip] nginx: ", "absolute path"},
      {"a directory", "[realip]\nhaproxy = \"/etc/haproxy/\"\n",
       "agent.toml:2: [realip] haproxy: ", "must name a file"},
      {"dot dot", "[realip]\napache = \"/etc/apache2/..\"\n", "agent.toml:2: [realip] apache: ", "must name a file"},
      {"number", "[realip]\nnginx = 1\n", "agent.toml:2: [realip] nginx: ", "expected a string"},
      {"two formats, one file", "[realip]\nnginx = \"/etc/x.conf\"\napache = \"/etc/x.conf\"\n",
       "agent.toml:3: [realip] apache: ", "the same file as nginx"},
      {"the export file", "[ranges]\nexport_file = \"/run/og/e.json\"\n[realip]\nnginx = \"/run/og/e.json\"\n",
       "agent.toml:4: [realip] nginx: ", "a file the agent writes already"},
      {"the state file", "[realip]\nhaproxy = \"/var/lib/originguard/ranges.json\"\n",
       "agent.toml:2: [realip] haproxy: ", "a file the agent writes already"},
      {"shell line", "[realip]\nnginx = \"/x/y\"\non_change = \"systemctl reload nginx\"\n",
       "agent.toml:3: [realip] on_change: ", "no shell"},
      {"empty command", "[realip]\nnginx = \"/x/y\"\non_change = []\n",
       "agent.toml:3: [realip] on_change: ", "list of arguments"},
      {"relative program", "[realip]\nnginx = \"/x/y\"\non_change = [\"systemctl\", \"reload\", \"nginx\"]\n",
       "agent.toml:3: [realip] on_change: ", "must be an absolute path, like /usr/bin/systemctl"},
      {"number argument", "[realip]\nnginx = \"/x/y\"\non_change = [\"/bin/kill\", 1]\n",
       "agent.toml:3: [realip] on_change: ", "each argument must be a string"},
      {"on_change without a file", "[realip]\non_change = [\"/usr/bin/systemctl\", \"reload\", \"nginx\"]\n",
       "agent.toml:2: [realip] on_change: ", "without a file"},
      {"timeout zero", "[realip]\non_change_timeout = 0\n",
       "agent.toml:2: [realip] on_change_timeout: ", "at least 1s"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.name));
    auto r = parse(c.text);
    ASSERT_TRUE(refused(r));
    EXPECT_THAT(r.error().message, StartsWith(std::string(c.prefix)));
    EXPECT_THAT(r.error().message, HasSubstr(std::string(c.why)));
  }
}

TEST(Config, MetricsListen) {
  auto c = parse("[metrics]\nlisten = \"127.0.0.1:9463\"\n");
  ASSERT_TRUE(ok(c));
  ASSERT_TRUE(c->metrics.listen);
  EXPECT_EQ(c->metrics.listen->to_string(), "127.0.0.1:9463");
  c = parse("[metrics]\nlisten = \"\"\n");
  ASSERT_TRUE(ok(c));
  EXPECT_FALSE(c->metrics.listen);
  const ErrorCase cases[] = {
      {"host name", "[metrics]\nlisten = \"localhost:9463\"\n",
       "agent.toml:2: [metrics] listen: ", "\"localhost\" is not a numeric IP address"},
      {"no port", "[metrics]\nlisten = \"127.0.0.1\"\n", "agent.toml:2: [metrics] listen: ", "IPv4:port"},
      {"port 0", "[metrics]\nlisten = \"127.0.0.1:0\"\n", "agent.toml:2: [metrics] listen: ", "port 1..65535"},
      {"port too big", "[metrics]\nlisten = \"127.0.0.1:65536\"\n",
       "agent.toml:2: [metrics] listen: ", "port 1..65535"},
      {"port sign", "[metrics]\nlisten = \"127.0.0.1:+80\"\n", "agent.toml:2: [metrics] listen: ", "port 1..65535"},
      {"v6 without brackets", "[metrics]\nlisten = \"::1:9463\"\n",
       "agent.toml:2: [metrics] listen: ", "IPv4:port or [IPv6]:port"},
      {"v4 in brackets", "[metrics]\nlisten = \"[127.0.0.1]:9463\"\n",
       "agent.toml:2: [metrics] listen: ", "an IPv6 address goes in brackets"},
      {"zone id", "[metrics]\nlisten = \"[fe80::1%eth0]:9463\"\n", "agent.toml:2: [metrics] listen: ", "zone"},
      {"url", "[metrics]\nlisten = \"http://127.0.0.1:9463/metrics\"\n",
       "agent.toml:2: [metrics] listen: ", "IPv4:port"},
      {"number", "[metrics]\nlisten = 9463\n", "agent.toml:2: [metrics] listen: ", "expected a string"},
      {"unknown key", "[metrics]\nport = 9463\n", "agent.toml:2: [metrics] port: ", "unknown key"},
  };
  for (const auto& e : cases) {
    SCOPED_TRACE(std::string(e.name));
    auto r = parse(e.text);
    ASSERT_TRUE(refused(r));
    EXPECT_THAT(r.error().message, StartsWith(std::string(e.prefix)));
    EXPECT_THAT(r.error().message, HasSubstr(std::string(e.why)));
  }
}

}  // namespace
}  // namespace og
