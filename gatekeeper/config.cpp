#include "config.hpp"

#include <sys/un.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "host_match.hpp"
#include "originguard/cidr.hpp"
#include "originguard/duration.hpp"
#include "originguard/toml_reader.hpp"

namespace og::gk {

const char* to_string(Mtls m) {
  switch (m) {
    case Mtls::required:
      return "required";
    case Mtls::optional:
      return "optional";
    case Mtls::off:
      return "off";
  }
  return "?";
}
const char* to_string(Mode m) { return m == Mode::http ? "http" : "tcp"; }
const char* to_string(ProxyProtocol p) {
  switch (p) {
    case ProxyProtocol::off:
      return "off";
    case ProxyProtocol::v1:
      return "v1";
    case ProxyProtocol::v2:
      return "v2";
  }
  return "?";
}
const char* to_string(OnFailure f) {
  switch (f) {
    case OnFailure::alert:
      return "alert";
    case OnFailure::http_403:
      return "403";
    case OnFailure::http_496:
      return "496";
    case OnFailure::close:
      return "close";
  }
  return "?";
}

std::string Upstream::to_string() const {
  if (!unix_path.empty()) return "unix:" + unix_path.string();
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

namespace {

Result<std::uint16_t> parse_port(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v == 0 || v > 65535 || s.empty())
    return fail("invalid port \"" + std::string(s) + "\" (expected 1..65535)");
  return static_cast<std::uint16_t>(v);
}

// "host:port" / "[v6]:port" with a numeric address.
Result<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view text) {
  std::string_view host, port;
  if (text.starts_with("[")) {
    auto close = text.find("]:");
    if (close == std::string_view::npos) return fail("expected [ipv6]:port");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) return fail("expected host:port or [ipv6]:port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto a = parse_address(host);
  if (!a) return fail("\"" + std::string(host) + "\" is not a numeric IP address");
  auto p = parse_port(port);
  if (!p) return fail(p.error());
  return std::pair{std::string(host), *p};
}

}  // namespace

Result<Upstream> parse_upstream(std::string_view text) {
  Upstream u;
  if (text.starts_with("unix:")) {
    auto path = text.substr(5);
    if (path.empty() || path[0] != '/') return fail("unix socket path must be absolute");
    u.unix_path = std::string(path);
    return u;
  }
  auto hp = split_host_port(text);
  if (!hp) return fail(hp.error());
  u.host = hp->first;
  u.port = hp->second;
  return u;
}

Result<ListenAddress> parse_listen(std::string_view text) {
  auto hp = split_host_port(text);
  if (!hp) return fail(hp.error());
  return ListenAddress{hp->first, hp->second};
}

namespace {

using Reader = og::TomlReader;
bool valid_pin(std::string_view b64) {
  // SHA-256 in standard base64: 43 chars + '='.
  if (b64.size() != 44 || b64[43] != '=') return false;
  return std::all_of(b64.begin(), b64.end() - 1,
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/'; });
}

Status read_global(const Reader& r, const toml::table& t, GatekeeperConfig& c) {
  constexpr std::string_view s = "gatekeeper";
  if (auto st = r.only_keys(t, s,
                            {"listen",
                             "workers",
                             "default_host",
                             "edge_ranges_file",
                             "handshake_timeout",
                             "client_hello_timeout",
                             "header_timeout",
                             "idle_timeout",
                             "upstream_connect_timeout",
                             "upstream_keepalive",
                             "upstream_keepalive_timeout",
                             "max_connections",
                             "max_connections_per_source",
                             "max_header_bytes",
                             "max_response_header_bytes",
                             "max_client_chain_bytes",
                             "max_connection_lifetime",
                             "verdict_cache_entries",
                             "ciphers",
                             "ciphersuites",
                             "metrics_listen",
                             "control_socket",
                             "control_group",
                             "aop_dir",
                             "origin_pull_ca"});
      !st)
    return st;
  std::vector<std::string> listen;
  if (auto st = r.strings(t, s, "listen", listen); !st) return st;
  for (auto& l : listen) {
    auto a = parse_listen(l);
    if (!a) return r.error_at(t.get("listen"), t, s, "listen", "\"" + l + "\": " + a.error().message);
    c.listen.push_back(*a);
  }
  std::string metrics;
  if (auto st = r.string(t, s, "metrics_listen", metrics); !st) return st;
  if (t.get("metrics_listen")) {
    auto a = parse_listen(metrics);
    if (!a)
      return r.error_at(t.get("metrics_listen"), t, s, "metrics_listen", "\"" + metrics + "\": " + a.error().message);
    c.metrics_listen = *a;
  }
  std::size_t workers = 0;
  Status st;
  if (!(st = r.count(t, s, "workers", workers, 0, 256))) return st;
  c.workers = static_cast<unsigned>(workers);
  if (!(st = r.string(t, s, "default_host", c.default_host))) return st;
  if (!(st = r.path(t, s, "edge_ranges_file", c.edge_ranges_file))) return st;
  if (!(st = r.path(t, s, "aop_dir", c.aop_dir))) return st;
  if (!(st = r.path(t, s, "origin_pull_ca", c.origin_pull_ca))) return st;
  // Durations are added to the steady clock: bounded well below its range.
  auto duration = [&](std::string_view key, std::chrono::seconds& out, std::chrono::seconds max) -> Status {
    if (auto read = r.duration(t, s, key, out); !read) return read;
    if (out > max) return r.error_at(t.get(key), t, s, key, "must be at most " + format_duration(max));
    return {};
  };
  constexpr std::chrono::seconds kDay{86400};
  if (!(st = duration("handshake_timeout", c.handshake_timeout, kDay))) return st;
  if (!(st = duration("client_hello_timeout", c.client_hello_timeout, kDay))) return st;
  if (!(st = duration("header_timeout", c.header_timeout, kDay))) return st;
  if (!(st = duration("idle_timeout", c.idle_timeout, kDay))) return st;
  if (!(st = duration("upstream_connect_timeout", c.upstream_connect_timeout, kDay))) return st;
  if (!(st = duration("upstream_keepalive_timeout", c.upstream_keepalive_timeout, kDay))) return st;
  if (!(st = r.count(t, s, "upstream_keepalive", c.upstream_keepalive, 0, 100'000))) return st;
  if (!(st = duration("max_connection_lifetime", c.max_connection_lifetime, 30 * kDay))) return st;
  if (!(st = r.count(t, s, "max_connections", c.max_connections, 1, 10'000'000))) return st;
  if (!(st = r.count(t, s, "max_connections_per_source", c.max_connections_per_source, 0, 10'000'000))) return st;
  if (!(st = r.count(t, s, "max_header_bytes", c.max_header_bytes, 1024, 1 << 20))) return st;
  if (!(st = r.count(t, s, "max_response_header_bytes", c.max_response_header_bytes, 1024, 1 << 20))) return st;
  if (!(st = r.count(t, s, "max_client_chain_bytes", c.max_client_chain_bytes, 1024, 1 << 20))) return st;
  if (!(st = r.count(t, s, "verdict_cache_entries", c.verdict_cache_entries, 0, 1 << 20))) return st;
  if (!(st = r.string(t, s, "ciphers", c.ciphers))) return st;
  if (!(st = r.string(t, s, "ciphersuites", c.ciphersuites))) return st;
  std::string sock = c.control.socket.string();
  if (!(st = r.string(t, s, "control_socket", sock))) return st;
  if (!sock.empty() && sock[0] != '/')
    return r.error_at(t.get("control_socket"), t, s, "control_socket", "must be an absolute path (or \"\" to disable)");
  if (sock.size() >= sizeof(sockaddr_un::sun_path))
    return r.error_at(
        t.get("control_socket"), t, s, "control_socket",
        "longer than a unix socket path may be (" + std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes)");
  c.control.socket = sock;
  if (!(st = r.string(t, s, "control_group", c.control.group))) return st;
  if (sock.empty() && !c.control.group.empty())
    return r.error_at(t.get("control_group"), t, s, "control_group", "needs a control_socket");
  return {};
}

Status read_host(const Reader& r, const toml::table& t, HostConfig& h) {
  constexpr std::string_view s = "host";
  h.line = static_cast<int>(t.source().begin.line);
  if (auto st = r.only_keys(t, s,
                            {"names",
                             "cert",
                             "key",
                             "mtls",
                             "client_ca",
                             "crl",
                             "pin_spki_sha256",
                             "pin_cert_sha256",
                             "client_cn",
                             "client_san",
                             "require_edge_ip",
                             "upstream",
                             "upstream_tls",
                             "upstream_ca",
                             "upstream_server_name",
                             "mode",
                             "proxy_protocol",
                             "on_failure",
                             "session_tickets",
                             "session_timeout"});
      !st)
    return st;
  Status st;
  if (!(st = r.strings(t, s, "names", h.names))) return st;
  if (h.names.empty()) return r.error_at(t.get("names"), t, s, "names", "at least one host name is required");
  for (auto& n : h.names) {
    auto norm = normalize_host_pattern(n);
    if (!norm) return r.error_at(t.get("names"), t, s, "names", "\"" + n + "\": " + norm.error().message);
    n = *norm;
  }
  if (!(st = r.paths(t, s, "cert", h.certs))) return st;
  if (!(st = r.paths(t, s, "key", h.keys))) return st;
  if (h.certs.empty()) return r.error_at(t.get("cert"), t, s, "cert", "at least one certificate is required");
  if (h.certs.size() != h.keys.size())
    return r.error_at(t.get("key"), t, s, "key",
                      "need exactly one key per cert (" + std::to_string(h.certs.size()) + " certs, " +
                          std::to_string(h.keys.size()) + " keys)");
  if (!(st = r.choice(t, s, "mtls", h.mtls,
                      {{"required", Mtls::required}, {"optional", Mtls::optional}, {"off", Mtls::off}})))
    return st;
  // "aop:<zone_id>": the CA bundle the agent exports for that [[aop.zone]] (resolved against
  // [gatekeeper] aop_dir once the whole file is read).
  std::string ca;
  if (!(st = r.string(t, s, "client_ca", ca))) return st;
  if (ca.starts_with("aop:")) {
    const std::string zone = ca.substr(4);
    const bool hex32 = zone.size() == 32 && std::all_of(zone.begin(), zone.end(), [](char c) {
                         return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                       });
    if (!hex32)
      return r.error_at(t.get("client_ca"), t, s, "client_ca",
                        "\"aop:\" must be followed by the zone id (32 lower-case hex digits), as in the agent's "
                        "[[aop.zone]] zone_id");
    h.client_ca_aop_zone = zone;
  } else if (!(st = r.path(t, s, "client_ca", h.client_ca))) {
    return st;
  }
  if (!(st = r.paths(t, s, "crl", h.crls))) return st;
  for (auto key : {"pin_spki_sha256", "pin_cert_sha256"}) {
    auto& out = std::string_view(key) == "pin_spki_sha256" ? h.pin_spki_sha256 : h.pin_cert_sha256;
    if (!(st = r.strings(t, s, key, out))) return st;
    for (auto& p : out)
      if (!valid_pin(p))
        return r.error_at(t.get(key), t, s, key, "\"" + p + "\" is not a base64 SHA-256 (44 characters ending in '=')");
  }
  if (!(st = r.strings(t, s, "client_cn", h.client_cn))) return st;
  if (!(st = r.strings(t, s, "client_san", h.client_san))) return st;
  if (!(st = r.boolean(t, s, "require_edge_ip", h.require_edge_ip))) return st;
  std::string up;
  if (!(st = r.string(t, s, "upstream", up))) return st;
  if (up.empty()) return r.error_at(t.get("upstream"), t, s, "upstream", "required (host:port or unix:/path)");
  auto u = parse_upstream(up);
  if (!u) return r.error_at(t.get("upstream"), t, s, "upstream", "\"" + up + "\": " + u.error().message);
  h.upstream = *u;
  if (!(st = r.boolean(t, s, "upstream_tls", h.upstream_tls))) return st;
  if (!(st = r.path(t, s, "upstream_ca", h.upstream_ca))) return st;
  if (!(st = r.string(t, s, "upstream_server_name", h.upstream_server_name))) return st;
  if (h.upstream_tls && !h.upstream.unix_path.empty())
    return r.error_at(t.get("upstream_tls"), t, s, "upstream_tls", "TLS to a unix socket upstream is not supported");
  if (!h.upstream_tls && (!h.upstream_ca.empty() || !h.upstream_server_name.empty()))
    return r.error_at(t.get("upstream_ca") ? t.get("upstream_ca") : t.get("upstream_server_name"), t, s,
                      t.get("upstream_ca") ? "upstream_ca" : "upstream_server_name", "needs upstream_tls = true");
  if (!(st = r.choice(t, s, "mode", h.mode, {{"http", Mode::http}, {"tcp", Mode::tcp}}))) return st;
  if (!(st = r.choice(t, s, "proxy_protocol", h.proxy_protocol,
                      {{"off", ProxyProtocol::off}, {"v1", ProxyProtocol::v1}, {"v2", ProxyProtocol::v2}})))
    return st;
  if (!(st = r.choice(t, s, "on_failure", h.on_failure,
                      {{"alert", OnFailure::alert},
                       {"403", OnFailure::http_403},
                       {"496", OnFailure::http_496},
                       {"close", OnFailure::close}})))
    return st;
  if (h.mode == Mode::tcp && (h.on_failure == OnFailure::http_403 || h.on_failure == OnFailure::http_496))
    return r.error_at(t.get("on_failure"), t, s, "on_failure", "an HTTP page needs mode = \"http\"");
  if (h.mtls == Mtls::off &&
      (!h.pin_spki_sha256.empty() || !h.pin_cert_sha256.empty() || !h.client_cn.empty() || !h.client_san.empty()))
    return r.error_at(t.get("mtls"), t, s, "mtls",
                      "pins and client_cn/client_san need mtls = \"required\" or \"optional\"");
  if (!(st = r.boolean(t, s, "session_tickets", h.session_tickets))) return st;
  if (!(st = r.duration(t, s, "session_timeout", h.session_timeout))) return st;
  return {};
}

}  // namespace

Result<GatekeeperConfig> parse_gatekeeper_config(std::string_view text, std::string_view origin) {
  Reader r(origin);
  auto doc = r.document(text, {"gatekeeper", "host"});
  if (!doc) return fail(doc.error());
  const toml::table& root = *doc;
  GatekeeperConfig cfg;
  cfg.path = std::string(origin);
  if (const toml::node* g = root.get("gatekeeper")) {
    if (!g->is_table()) return r.error_at(g->source(), "", "gatekeeper", "must be a table");
    if (auto st = read_global(r, *g->as_table(), cfg); !st) return fail(st.error());
  }
  // `listen = []` is explicit: the sockets come from systemd (LISTEN_FDS); a missing key is a mistake.
  if (!root["gatekeeper"]["listen"])
    return r.error_at(root.source(), "gatekeeper", "listen",
                      "at least one address is required (or listen = [] with systemd socket activation)");
  const toml::node* hosts = root.get("host");
  if (!hosts || !hosts->is_array_of_tables())
    return r.error_at(hosts ? hosts->source() : root.source(), "", "host", "at least one [[host]] table is required");
  std::set<std::string> seen;
  for (const auto& e : *hosts->as_array()) {
    HostConfig h;
    if (auto st = read_host(r, *e.as_table(), h); !st) return fail(st.error());
    for (auto& n : h.names)
      if (!seen.insert(n).second)
        return r.error_at(e.source(), "host", "names", "\"" + n + "\" is listed by two [[host]] tables");
    if (!h.client_ca_aop_zone.empty()) h.client_ca = cfg.aop_dir / (h.client_ca_aop_zone + ".pem");
    cfg.hosts.push_back(std::move(h));
  }
  if (!cfg.default_host.empty()) {
    auto norm = normalize_host_pattern(cfg.default_host);
    if (!norm || !seen.contains(*norm))
      return r.error_at(root["gatekeeper"]["default_host"].node()->source(), "gatekeeper", "default_host",
                        "\"" + cfg.default_host + "\" is not a name of any [[host]]");
    cfg.default_host = *norm;
  }
  return cfg;
}

Result<GatekeeperConfig> load_gatekeeper_config(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail_errno("open " + file.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_gatekeeper_config(ss.str(), file.string());
}

}  // namespace og::gk
