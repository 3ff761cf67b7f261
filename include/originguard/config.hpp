// originguard-agent configuration (TOML). Unknown keys are errors; every error names the
// file, line and key. Defaults are documented in docs/CONFIG.md and packaging/agent.toml.
#pragma once

#include <toml++/impl/forward_declarations.h>  // toml::table, for AopSectionReader
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "originguard/control_protocol.hpp"
#include "originguard/duration.hpp"
#include "originguard/range_set.hpp"
#include "originguard/result.hpp"

namespace og {

class TomlReader;
namespace aop {
struct AopConfig;  // agent/aop/config.hpp
}

inline constexpr std::string_view kDefaultConfigPath = "/etc/originguard/agent.toml";
inline constexpr std::string_view kCloudflareApiUrl = "https://api.cloudflare.com/client/v4/ips";

struct RangesConfig {
  // Alternatives tried in order; the first that validates wins. One alternative is one URL,
  // or several whose union forms the candidate (e.g. the ips-v4 and ips-v6 text endpoints).
  std::vector<std::vector<std::string>> sources{{std::string(kCloudflareApiUrl)}};
  Seconds refresh_interval{3600};
  double jitter = 0.10;            // +-10% of refresh_interval
  Seconds retry_min{30};           // first backoff after a failed refresh
  Seconds retry_max{3600};         // backoff cap (never above refresh_interval)
  Seconds stale_after{86400 * 3};  // ranges older than this make status degraded
  RangeSet extra_allow;            // static prefixes always allowed (monitoring, ...)
  std::filesystem::path state_dir = "/var/lib/originguard";
  bool include_china_network = false;
  std::size_t max_body_bytes = 1 << 20;  // a real answer is ~1 KiB
  Seconds connect_timeout{10};
  Seconds total_timeout{30};
  double max_shrink = 0.5;  // refuse a set that lost more than this fraction
  std::size_t min_ipv4 = 1;
  std::size_t min_ipv6 = 1;
  std::string ca_file;  // extra CA bundle for https sources (default: system)
  // Snapshot of the ranges in force for the gatekeeper / nginx / HAProxy ("" = don't write).
  std::filesystem::path export_file = "/run/originguard/edge-ranges.json";
};

enum class ProtectMode { enforce, audit };

struct ProtectConfig {
  std::vector<std::uint16_t> ports{80, 443};
  RangeSet mgmt_allow;
  ProtectMode mode = ProtectMode::enforce;
  // How often enforcers compare the kernel with the desired state and repair drift (also
  // done after every refresh and on reload).
  Seconds verify_interval{30};
};

// Who may do what on the control socket: docs/SECURITY.md.
struct ControlConfig {
  std::filesystem::path socket{kDefaultAgentSocket};
  std::string group;        // members may use the read-only commands; empty = root only
  std::string admin_group;  // members may also change state (reload, refresh, uninstall)
};

struct NftablesConfig {
  bool enabled = true;  // program table inet originguard
};

enum class XdpMode { auto_, native, generic };

struct XdpConfig {
  // Enforce at the driver too (docs/XDP.md). On by default: a flood is dropped before the
  // kernel builds an skb, and XDP only drops what nftables would drop anyway.
  bool enabled = true;
  std::vector<std::string> interfaces{"auto"};  // "auto": the interfaces holding default routes
  XdpMode mode = XdpMode::auto_;                // auto: native, generic where the driver refuses
  std::filesystem::path pin_dir = "/sys/fs/bpf/originguard";
  bool operator==(const XdpConfig&) const = default;
};

// Files from which a web server restores the visitor's address (CF-Connecting-IP), trusting
// it only from the fetched Cloudflare ranges in force (docs/DEPLOYMENT.md). Each is written
// only when set ("" = off); on_change runs (argv, no shell) after any of them changed.
struct RealIpConfig {
  std::filesystem::path nginx;    // set_real_ip_from lines + real_ip_header
  std::filesystem::path haproxy;  // one prefix a line, for `acl ... src -f FILE`
  std::filesystem::path apache;   // RemoteIPHeader + RemoteIPTrustedProxy lines (mod_remoteip)
  std::vector<std::string> on_change;
  Seconds on_change_timeout{30};
  [[nodiscard]] bool any() const { return !nginx.empty() || !haproxy.empty() || !apache.empty(); }
  bool operator==(const RealIpConfig&) const = default;
};

// The agent's Prometheus endpoint: the text of `agentctl metrics` over plain HTTP (GET /metrics)
// on this one address. Off by default; never a public address (docs/CONFIG.md).
struct MetricsConfig {
  std::optional<SocketAddress> listen;
  bool operator==(const MetricsConfig&) const = default;
};

struct AgentConfig {
  std::filesystem::path path;  // file it was read from ("" = built-in defaults)
  RangesConfig ranges;
  ProtectConfig protect;
  ControlConfig control;
  NftablesConfig nftables;
  XdpConfig xdp;
  RealIpConfig realip;
  MetricsConfig metrics;
  // [[aop.zone]]: read by agent/aop (og_aop, which og_common cannot depend on); null = none.
  std::shared_ptr<const aop::AopConfig> aop;
};

// The reader of the [aop] section, which lives in og_aop: the agent passes
// og::aop::read_agent_aop. Without one, an [aop] section is refused as an unknown section.
using AopSectionReader = Status (*)(const TomlReader& r, const toml::table& root, AgentConfig& cfg);

[[nodiscard]] const char* to_string(ProtectMode m);
[[nodiscard]] const char* to_string(XdpMode m);

// Parses TOML text; `origin` names the file in error messages ("agent.toml:12: ...").
[[nodiscard]] Result<AgentConfig> parse_agent_config(std::string_view toml_text, std::string_view origin,
                                                     AopSectionReader aop = nullptr);

// Reads and parses a file. A missing file at the default path yields the defaults.
// `ssh_port`: the server port of the SSH session the agent runs from (ssh_session_port()),
// refused as a protected port while mgmt_allow is empty, like 22.
[[nodiscard]] Result<AgentConfig> load_agent_config(const std::filesystem::path& path, bool missing_ok,
                                                    std::optional<std::uint16_t> ssh_port,
                                                    AopSectionReader aop = nullptr);

// The SSH lock-out guard. Ports in `ports` that would cut off the operator's SSH while
// `mgmt` is empty: 22, and `ssh_port`. Config validation refuses them; an enforcer handed
// them anyway leaves just those ports open and protects the others.
[[nodiscard]] std::vector<std::uint16_t> lockout_ports(const std::vector<std::uint16_t>& ports, const RangeSet& mgmt,
                                                       std::optional<std::uint16_t> ssh_port);
// "refusing to protect port 22 with an empty [protect] mgmt_allow: ..." when lockout_ports()
// is not empty.
[[nodiscard]] Status check_lockout(const std::vector<std::uint16_t>& ports, const RangeSet& mgmt,
                                   std::optional<std::uint16_t> ssh_port);

// The local (server) port in an SSH_CONNECTION value "client_ip client_port server_ip server_port".
[[nodiscard]] std::optional<std::uint16_t> ssh_port_from_connection(std::string_view ssh_connection);
// ssh_port_from_connection($SSH_CONNECTION), nullopt when unset.
[[nodiscard]] std::optional<std::uint16_t> ssh_session_port();

}  // namespace og
