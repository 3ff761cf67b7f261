// What the gatekeeper tells operators about itself: the control socket's `status` JSON, the
// Prometheus text, and the warnings derived from a policy generation (global origin-pull CA
// without pins, certificates close to expiry, CRLs past their nextUpdate). Pure: process facts and a generation in,
// text out; the server gathers the facts (server.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tls_policy.hpp"
#include "upstream_pool.hpp"

namespace og::gk {

using WallTime = std::chrono::system_clock::time_point;

// A host certificate this close to its notAfter (or past it) is reported.
inline constexpr std::chrono::seconds kCertWarning = std::chrono::days(14);

struct ReloadOutcome {
  WallTime time;
  std::string trigger;  // "SIGHUP", "control", "files changed"
  bool ok = true;
  std::string error;  // when refused: "file:line: [section] key: reason"
};

struct Listener {
  std::string address;  // "127.0.0.1:443", "[::]:443"
  std::string source;   // "config" (bound by us) or "systemd" (LISTEN_FDS)
};

struct ProcessFacts {
  long pid = 0;
  std::string config_file;
  WallTime started_at;
  WallTime loaded_at;  // of the generation in force
  std::optional<ReloadOutcome> last_reload;
  std::size_t workers = 0;
  std::vector<Listener> listeners;
  std::uint64_t connections_active = 0;
  std::uint64_t refused_sni = 0;
  std::uint64_t refused_overload = 0;
  std::uint64_t refused_not_edge = 0;      // at accept: every host requires an edge source
  std::uint64_t refused_source_limit = 0;  // at accept: max_connections_per_source
  std::uint64_t handshake_errors = 0;
  // The workers' upstream keep-alive pools (upstream_keepalive).
  std::uint64_t upstream_idle = 0;
  std::uint64_t upstream_reuses = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(Discard::count_)> upstream_discards{};
};

// mTLS against the bundled global origin-pull CA without SPKI/cert pins: every Cloudflare
// zone presents that certificate, so any zone can reach the host. (A CN/SAN match does not
// help: the global certificate's subject is the same for every zone.)
[[nodiscard]] bool relies_on_global_ca(const HostPolicy& h);

// One host's warnings, without the "host NAME: " prefix.
[[nodiscard]] std::vector<std::string> host_warnings(const HostPolicy& h, WallTime now);
// Every host's warnings, each prefixed with "host NAME: " (logged at start/reload, status).
[[nodiscard]] std::vector<std::string> policy_warnings(const PolicySet& set,
                                                       WallTime now = std::chrono::system_clock::now());

// The `status` reply (docs/GATEKEEPER.md, "Control socket").
[[nodiscard]] nlohmann::json status_json(const PolicySet& set, const ProcessFacts& p, WallTime now);
// Prometheus text exposition (metrics_listen and the `metrics` command).
[[nodiscard]] std::string metrics_text(const PolicySet& set, const ProcessFacts& p);

}  // namespace og::gk
