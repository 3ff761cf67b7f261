// Gatekeeper configuration: one [gatekeeper] table of listener-wide settings and one
// [[host]] table per host policy, selected by SNI. Parsing is pure (no file reads beyond
// the TOML text); certificate/key/CA/CRL contents are checked when policies are built.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "originguard/config.hpp"
#include "originguard/control_protocol.hpp"
#include "originguard/result.hpp"

namespace og::gk {

enum class Mtls : std::uint8_t { required, optional, off };
enum class Mode : std::uint8_t { http, tcp };
enum class ProxyProtocol : std::uint8_t { off, v1, v2 };
// What a host does with a client whose certificate fails its policy.
enum class OnFailure : std::uint8_t { alert, http_403, http_496, close };

[[nodiscard]] const char* to_string(Mtls m);
[[nodiscard]] const char* to_string(Mode m);
[[nodiscard]] const char* to_string(ProxyProtocol p);
[[nodiscard]] const char* to_string(OnFailure f);

struct Upstream {
  std::string host;  // empty when unix_path is set
  std::uint16_t port = 0;
  std::filesystem::path unix_path;  // "unix:/run/app.sock"
  [[nodiscard]] std::string to_string() const;
};

// Parses "host:port", "[v6]:port" or "unix:/abs/path".
[[nodiscard]] Result<Upstream> parse_upstream(std::string_view text);

struct ListenAddress {
  std::string host;  // numeric address
  std::uint16_t port = 0;
};
[[nodiscard]] Result<ListenAddress> parse_listen(std::string_view text);

struct HostConfig {
  std::vector<std::string> names;  // lower-case; exact or "*.suffix"
  std::vector<std::filesystem::path> certs;
  std::vector<std::filesystem::path> keys;
  Mtls mtls = Mtls::required;
  std::filesystem::path client_ca;  // empty: the embedded origin-pull CA
  // client_ca = "aop:<zone_id>": client_ca is then <aop_dir>/<zone_id>.pem, the bundle the
  // agent exports for that [[aop.zone]] (its CA, plus the next one during a CA rollover).
  std::string client_ca_aop_zone;
  std::vector<std::filesystem::path> crls;
  std::vector<std::string> pin_spki_sha256;  // base64 of SHA-256, as given
  std::vector<std::string> pin_cert_sha256;
  std::vector<std::string> client_cn;   // any-of match on the leaf's subject CN
  std::vector<std::string> client_san;  // any-of match on the leaf's DNS SANs
  bool require_edge_ip = false;
  Upstream upstream;
  bool upstream_tls = false;
  std::filesystem::path upstream_ca;  // empty: the system trust store
  std::string upstream_server_name;   // SNI + name verified; empty: the upstream IP is verified
  Mode mode = Mode::http;
  ProxyProtocol proxy_protocol = ProxyProtocol::off;
  OnFailure on_failure = OnFailure::alert;
  bool session_tickets = true;
  std::chrono::seconds session_timeout{3600};
  int line = 0;  // of the [[host]] header, for messages
  [[nodiscard]] std::string label() const { return names.empty() ? "?" : names.front(); }
};

struct GatekeeperConfig {
  std::string path;
  std::vector<ListenAddress> listen;            // may be empty when systemd passes the sockets (LISTEN_FDS)
  std::optional<ListenAddress> metrics_listen;  // Prometheus text on GET /metrics (plain HTTP)
  unsigned workers = 0;                         // 0: one per online CPU
  std::string default_host;                     // a name of one [[host]]; empty: no-SNI/unknown-SNI refused
  std::filesystem::path edge_ranges_file = "/run/originguard/edge-ranges.json";
  // The agent's [aop] export_dir: where client_ca = "aop:<zone_id>" finds <zone_id>.pem.
  std::filesystem::path aop_dir = "/run/originguard/aop";
  // Cloudflare's global origin-pull CA: "" = the one built in (gatekeeper/data/). The default
  // client_ca, and the CA recognised in an "aop:" bundle during a zone's migration (exempt from
  // the CRL check, which Cloudflare's CA has none of here). Tests point it at a CA of their own.
  std::filesystem::path origin_pull_ca;
  std::chrono::seconds handshake_timeout{10};
  // From accept to a complete ClientHello (never more than handshake_timeout).
  std::chrono::seconds client_hello_timeout{5};
  std::chrono::seconds header_timeout{10};
  std::chrono::seconds idle_timeout{60};
  std::chrono::seconds upstream_connect_timeout{5};
  // Idle kept-alive upstream connections per worker and upstream (http mode, no PROXY header),
  // shared by the worker's client connections; 0: none, each client connection keeps its own.
  std::size_t upstream_keepalive = 32;
  // A pooled connection idle this long is closed (below typical upstream keep-alive timeouts).
  std::chrono::seconds upstream_keepalive_timeout{60};
  std::size_t max_connections = 10000;
  // Open connections per source not in the edge snapshot (IPv4 address or IPv6 /64); 0: no cap.
  std::size_t max_connections_per_source = 256;
  std::size_t max_header_bytes = 16384;  // request line + header; also a chunk-size line, a trailer section
  // An upstream's response header; also its chunk-size lines and trailer section.
  std::size_t max_response_header_bytes = 65536;
  // Largest client Certificate message (leaf + chain) read; the origin-pull chain is ~2-3 KB.
  std::size_t max_client_chain_bytes = 16384;
  // A connection ends at its first request boundary after this long (idle: at once), splices
  // included: the bound within which a policy change reaches every established connection.
  std::chrono::seconds max_connection_lifetime{3600};
  std::size_t verdict_cache_entries = 1024;
  std::string ciphers;       // TLS 1.2 cipher list; empty: OpenSSL default
  std::string ciphersuites;  // TLS 1.3; empty: OpenSSL default
  // control_socket / control_group: agentctl's status, reload and metrics. An empty socket
  // path disables it; root and the gatekeeper's own user may always use it.
  ControlConfig control{std::filesystem::path(kDefaultGatekeeperSocket), "", ""};
  std::vector<HostConfig> hosts;
};

[[nodiscard]] Result<GatekeeperConfig> parse_gatekeeper_config(std::string_view text, std::string_view origin);
[[nodiscard]] Result<GatekeeperConfig> load_gatekeeper_config(const std::filesystem::path& file);

}  // namespace og::gk
