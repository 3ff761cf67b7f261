// [[aop.zone]] sections of agent.toml: one per zone whose origin-pull certificate the agent
// manages. parse_aop_section() is what the agent's config loader calls with the document's
// root table (the section name "aop" must be among its allowed sections); errors are
// "file:line: [aop.zone] key: reason" like every other config error.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "aop/ca.hpp"
#include "originguard/config.hpp"
#include "originguard/toml_reader.hpp"

namespace og::aop {

struct AopZoneConfig {
  std::string zone_id;                   // 32 hex digits
  std::filesystem::path api_token_file;  // mode 0600 or stricter, owned by root or the agent's user
  std::vector<std::string> hostnames;    // empty = zone level
  std::filesystem::path ca_dir;          // default /var/lib/originguard/aop/<zone_id>
  Seconds cert_lifetime{Seconds(86400) * 90};
  Seconds renew_before{Seconds(86400) * 30};
  // The zone's CA (10 years) is rolled over this long before it expires (or on
  // `agentctl aop rotate --ca`); both CAs are trusted ca_overlap before the edge's certificate
  // moves to the new CA and ca_overlap after (rotation.hpp, CaRollover).
  Seconds ca_renew_before{Seconds(86400) * 365};
  Seconds ca_overlap{600};
  std::string api_base{kCloudflareApiBaseUrl};
  KeyType key_type = KeyType::ecdsa_p256;
  std::string api_ca_file;  // "" = the system trust store (tests: the fake API's CA)
  // Until ca_overlap after the zone's first certificate is active (AOP enabled by the agent),
  // the exported bundle also trusts Cloudflare's global origin-pull CA, so that the edge's
  // global certificate is accepted until it switches (docs/AOP.md, docs/SECURITY.md).
  bool migrate_from_global = true;

  bool operator==(const AopZoneConfig&) const = default;
  static constexpr std::string_view kCloudflareApiBaseUrl = "https://api.cloudflare.com/client/v4";
};

namespace embedded {
extern const std::string_view kOriginPullCaPem;  // gatekeeper/data/origin-pull-ca.pem
}  // namespace embedded

inline constexpr std::string_view kDefaultAopDir = "/var/lib/originguard/aop";
inline constexpr std::string_view kDefaultAopExportDir = "/run/originguard/aop";

struct AopConfig {
  // Where the agent exports each zone's CA bundle, <export_dir>/<zone_id>.pem (mode 0644: CA
  // certificates only), for the gatekeeper's client_ca = "aop:<zone_id>".
  std::filesystem::path export_dir{kDefaultAopExportDir};
  // How often a deploying certificate is polled. Cloudflare deploys within minutes, so the
  // default asks every 15 s; tests against the fake API (which deploys in a second or two)
  // shorten it so that a rotation takes seconds.
  Seconds poll_interval{15};
  // Cloudflare's global origin-pull CA, trusted during a zone's migration: "" = the one built
  // in (gatekeeper/data/origin-pull-ca.pem). Tests point it at a CA of their own; an operator
  // only if Cloudflare replaces that CA before originguard does.
  std::filesystem::path origin_pull_ca;
  std::vector<AopZoneConfig> zones;
  bool operator==(const AopConfig&) const = default;
};

// Reads root["aop"] (absent = no zones) into `out`.
[[nodiscard]] Status parse_aop_section(const TomlReader& r, const toml::table& root, AopConfig& out);
// The agent's reader (og::AopSectionReader): parse_aop_section, then every zone's
// api_token_file checked (load_api_token; the token itself is dropped), each error naming the
// file and line of the zone's api_token_file. Sets cfg.aop (null without zones).
[[nodiscard]] Status read_agent_aop(const TomlReader& r, const toml::table& root, AgentConfig& cfg);

// A document holding only [aop] (for tests and tools).
[[nodiscard]] Result<AopConfig> parse_aop_config(std::string_view toml_text, std::string_view origin);

// The API token from `api_token_file`: refused unless the file is a regular file (no symlink)
// with mode 0600 or stricter, owned by root or the effective user; surrounding whitespace
// trimmed; refused if empty or if it holds characters a header cannot carry. The token's
// value never appears in an error.
[[nodiscard]] Result<std::string> load_api_token(const std::filesystem::path& file);

[[nodiscard]] bool valid_zone_id(std::string_view id);
[[nodiscard]] bool valid_hostname(std::string_view h);

}  // namespace og::aop
