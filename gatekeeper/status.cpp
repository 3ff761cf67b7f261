#include "status.hpp"

#include "originguard/duration.hpp"

#include <algorithm>
#include <filesystem>

namespace og::gk {
namespace {

using std::chrono::duration_cast;
using std::chrono::seconds;

struct CertExpiry {
  std::string file;
  WallTime not_after;
  long long days_left = 0;  // floor: -1 on the first day after expiry
  bool warning = false;
};

std::vector<CertExpiry> cert_expiries(const HostPolicy& h, WallTime now) {
  std::vector<CertExpiry> out;
  for (std::size_t i = 0; i < h.cert_not_after.size() && i < h.cfg.certs.size(); ++i) {
    const auto not_after = std::chrono::system_clock::from_time_t(h.cert_not_after[i]);
    const auto left = duration_cast<seconds>(not_after - now);
    out.push_back(
        {h.cfg.certs[i].string(), not_after, std::chrono::floor<std::chrono::days>(left).count(), left < kCertWarning});
  }
  return out;
}

// Prometheus label value: backslash, double quote and newline escaped.
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

bool relies_on_global_ca(const HostPolicy& h) {
  return h.cfg.mtls != Mtls::off && h.global_ca && h.spki_pins.empty() && h.cert_pins.empty();
}

std::vector<std::string> host_warnings(const HostPolicy& h, WallTime now) {
  std::vector<std::string> out;
  if (relies_on_global_ca(h) && !h.cfg.client_ca_aop_zone.empty())
    out.push_back("client_ca aop:" + h.cfg.client_ca_aop_zone +
                  ": the agent's bundle still trusts the global origin-pull CA without pins, shared by every "
                  "Cloudflare customer: any zone can reach this host until the zone's first certificate is active "
                  "(the migration; agentctl aop issue)");
  else if (relies_on_global_ca(h))
    out.push_back(
        "client_ca is the global origin-pull CA without pins, shared by every Cloudflare customer: any zone can "
        "reach this host. Use a zone or per-hostname AOP certificate (client_ca) or pins.");
  for (const auto& [file, next] : h.crl_next_update)
    if (next && std::chrono::system_clock::from_time_t(*next) <= now)
      out.push_back("crl " + file.string() + " is past its nextUpdate (" +
                    format_utc(std::chrono::system_clock::from_time_t(*next)) +
                    "): every client certificate is refused until a newer CRL replaces it");
    else if (next && !h.cfg.client_ca_aop_zone.empty() && file == h.cfg.client_ca &&
             std::chrono::system_clock::from_time_t(*next) - now < std::chrono::hours(48))
      // The agent re-signs the zone's CRL 4 days ahead of its nextUpdate: it has not for 2 days.
      out.push_back("aop:" + h.cfg.client_ca_aop_zone + ": the CRL in " + file.string() + " expires at " +
                    format_utc(std::chrono::system_clock::from_time_t(*next)) +
                    " and the agent has not re-signed it; then every certificate of the zone is refused");
  for (const auto& c : cert_expiries(h, now)) {
    if (!c.warning) continue;
    out.push_back("certificate " + c.file + " " +
                  (c.not_after <= now
                       ? "has expired (" + format_utc(c.not_after) + ")"
                       : "expires in " + std::to_string(c.days_left) + " days (" + format_utc(c.not_after) + ")"));
  }
  return out;
}

std::vector<std::string> policy_warnings(const PolicySet& set, WallTime now) {
  std::vector<std::string> out;
  for (const auto& h : set.hosts())
    for (auto& w : host_warnings(*h, now)) out.push_back("host " + h->cfg.label() + ": " + std::move(w));
  return out;
}

namespace {
nlohmann::json upstream_pool_json(const ProcessFacts& p) {
  nlohmann::json discards = nlohmann::json::object();
  for (std::size_t i = 0; i < p.upstream_discards.size(); ++i)
    discards[to_string(static_cast<Discard>(i))] = p.upstream_discards[i];
  return {{"idle", p.upstream_idle}, {"reuses", p.upstream_reuses}, {"discards", std::move(discards)}};
}
}  // namespace

nlohmann::json status_json(const PolicySet& set, const ProcessFacts& p, WallTime now) {
  using nlohmann::json;
  json hosts = json::array();
  for (const auto& h : set.hosts()) {
    const HostStats& st = h->stats;
    json certs = json::array();
    for (const auto& c : cert_expiries(*h, now))
      certs.push_back({{"file", c.file},
                       {"not_after", format_utc(c.not_after)},
                       {"days_left", c.days_left},
                       {"warning", c.warning}});
    json client_ca = nullptr;  // mtls = "off": no client CA is loaded
    if (h->cfg.mtls != Mtls::off)
      client_ca = !h->cfg.client_ca_aop_zone.empty()
                      ? "aop:" + h->cfg.client_ca_aop_zone + " (" + h->cfg.client_ca.string() + ")" +
                            (h->global_ca ? " + origin-pull (global), migrating" : "")
                  : h->global_ca ? "origin-pull (global)"
                                 : h->cfg.client_ca.string();
    hosts.push_back({{"names", h->cfg.names},
                     {"mtls", to_string(h->cfg.mtls)},
                     {"mode", to_string(h->cfg.mode)},
                     {"upstream", h->cfg.upstream.to_string()},
                     {"client_ca", client_ca},
                     {"pinned", !h->spki_pins.empty() || !h->cert_pins.empty()},
                     {"handshakes_ok", st.handshakes_ok.load()},
                     {"refusals",
                      {{"no_cert", st.refused_no_cert.load()},
                       {"verify", st.refused_verify.load()},
                       {"pin", st.refused_pin.load()},
                       {"subject", st.refused_subject.load()},
                       {"edge_ip", st.refused_edge_ip.load()}}},
                     {"active_connections", st.active.load()},
                     {"verdict_cache_hits", st.verdict_cache_hits.load()},
                     {"certs", std::move(certs)},
                     {"warnings", host_warnings(*h, now)}});
  }
  json listeners = json::array();
  for (const auto& l : p.listeners) listeners.push_back({{"address", l.address}, {"source", l.source}});
  json last_reload = nullptr;
  if (p.last_reload)
    last_reload = {{"time", format_utc(p.last_reload->time)},
                   {"trigger", p.last_reload->trigger},
                   {"ok", p.last_reload->ok},
                   {"error", p.last_reload->ok ? json(nullptr) : json(p.last_reload->error)}};
  return {{"version", OG_VERSION},
          {"pid", p.pid},
          {"started_at", format_utc(p.started_at)},
          {"uptime_s", duration_cast<seconds>(now - p.started_at).count()},
          {"config_file", p.config_file},
          {"loaded_at", format_utc(p.loaded_at)},
          {"last_reload", std::move(last_reload)},
          {"workers", p.workers},
          {"listeners", std::move(listeners)},
          {"connections_active", p.connections_active},
          {"refused_sni", p.refused_sni},
          {"refused_overload", p.refused_overload},
          {"refused_not_edge", p.refused_not_edge},
          {"refused_source_limit", p.refused_source_limit},
          {"handshake_errors", p.handshake_errors},
          {"upstream_pool", upstream_pool_json(p)},
          {"hosts", std::move(hosts)},
          {"warnings", policy_warnings(set, now)}};
}

std::string metrics_text(const PolicySet& set, const ProcessFacts& p) {
  // One family at a time, HELP and TYPE first, then all its samples (every host's): the text
  // format wants a family's lines together, and promtool checks HELP.
  std::string out;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ");
    out.append(name).append(" ").append(type).append("\n");
  };
  auto line = [&](std::string_view name, const std::string& labels, auto v) {
    out += std::string(name) + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(v) + "\n";
  };
  auto per_host = [&](auto&& sample) {
    for (const auto& h : set.hosts()) sample(*h, "host=\"" + label(h->cfg.label()) + "\"");
  };
  family("og_gk_connections_active", "gauge", "Client connections open now.");
  line("og_gk_connections_active", "", p.connections_active);
  family("og_gk_refused_sni_total", "counter", "Handshakes refused for their SNI: none, unknown or malformed.");
  line("og_gk_refused_sni_total", "", p.refused_sni);
  family("og_gk_refused_overload_total", "counter", "Connections reset at accept: max_connections reached.");
  line("og_gk_refused_overload_total", "", p.refused_overload);
  family("og_gk_refused_not_edge_total", "counter",
         "Connections reset at accept: the source is no edge address and every host requires one.");
  line("og_gk_refused_not_edge_total", "", p.refused_not_edge);
  family("og_gk_refused_source_limit_total", "counter",
         "Connections reset at accept: max_connections_per_source reached for the source.");
  line("og_gk_refused_source_limit_total", "", p.refused_source_limit);
  family("og_gk_handshake_errors_total", "counter",
         "Handshakes that failed otherwise: timed out, broken off, not TLS.");
  line("og_gk_handshake_errors_total", "", p.handshake_errors);
  family("og_gk_upstream_idle", "gauge", "Idle kept-alive upstream connections in the workers' pools now.");
  line("og_gk_upstream_idle", "", p.upstream_idle);
  family("og_gk_upstream_reuses_total", "counter", "Requests sent on a pooled upstream connection.");
  line("og_gk_upstream_reuses_total", "", p.upstream_reuses);
  family("og_gk_upstream_discards_total", "counter",
         "Upstream connections closed instead of pooled or reused (upstream_keepalive), by reason.");
  for (std::size_t i = 0; i < p.upstream_discards.size(); ++i)
    line("og_gk_upstream_discards_total", std::string("reason=\"") + to_string(static_cast<Discard>(i)) + "\"",
         p.upstream_discards[i]);
  family("og_gk_handshakes_total", "counter", "Completed handshakes, by host.");
  per_host([&](const HostPolicy& h, const std::string& host) {
    line("og_gk_handshakes_total", host, h.stats.handshakes_ok.load());
  });
  family("og_gk_refusals_total", "counter",
         "Clients refused by the host's policy, by host and reason: no_cert, verify, pin, subject, edge_ip.");
  per_host([&](const HostPolicy& h, const std::string& host) {
    const HostStats& st = h.stats;
    line("og_gk_refusals_total", host + ",reason=\"no_cert\"", st.refused_no_cert.load());
    line("og_gk_refusals_total", host + ",reason=\"verify\"", st.refused_verify.load());
    line("og_gk_refusals_total", host + ",reason=\"pin\"", st.refused_pin.load());
    line("og_gk_refusals_total", host + ",reason=\"subject\"", st.refused_subject.load());
    line("og_gk_refusals_total", host + ",reason=\"edge_ip\"", st.refused_edge_ip.load());
  });
  family("og_gk_verdict_cache_hits_total", "counter",
         "Client certificate chains whose verdict came from the cache, by host.");
  per_host([&](const HostPolicy& h, const std::string& host) {
    line("og_gk_verdict_cache_hits_total", host, h.stats.verdict_cache_hits.load());
  });
  family("og_gk_host_connections_active", "gauge", "Connections open now, by host.");
  per_host([&](const HostPolicy& h, const std::string& host) {
    line("og_gk_host_connections_active", host, h.stats.active.load());
  });
  family("og_gk_cert_not_after_seconds", "gauge", "When each host certificate expires (notAfter, Unix time).");
  per_host([&](const HostPolicy& h, const std::string& host) {
    for (std::size_t i = 0; i < h.cert_not_after.size(); ++i)
      line("og_gk_cert_not_after_seconds", host + ",cert=\"" + label(h.cfg.certs[i].string()) + "\"",
           static_cast<long long>(h.cert_not_after[i]));
  });
  family("og_gk_crl_next_update_seconds", "gauge",
         "The nextUpdate of each CRL a host checks (Unix time); past it the host refuses every client.");
  per_host([&](const HostPolicy& h, const std::string& host) {
    // One series per file: a file with several CRLs (an aop bundle during a CA rollover holds
    // one per CA) reports the earliest nextUpdate, the moment its host starts refusing clients.
    std::vector<std::pair<std::filesystem::path, std::time_t>> earliest;
    for (const auto& crl : h.crl_next_update) {
      if (!crl.second) continue;
      // Not a structured binding: clang 14 (the fuzz and tidy builds) cannot capture one.
      const auto& file = crl.first;
      auto it = std::find_if(earliest.begin(), earliest.end(), [&](const auto& e) { return e.first == file; });
      if (it == earliest.end())
        earliest.emplace_back(file, *crl.second);
      else
        it->second = std::min(it->second, *crl.second);
    }
    for (const auto& [file, next] : earliest)
      line("og_gk_crl_next_update_seconds", host + ",crl=\"" + label(file.string()) + "\"", next);
  });
  family("og_gk_global_ca_without_pins", "gauge",
         "1 when the host trusts Cloudflare's global origin-pull CA without pins: any Cloudflare zone can connect.");
  per_host([&](const HostPolicy& h, const std::string& host) {
    line("og_gk_global_ca_without_pins", host, relies_on_global_ca(h) ? 1 : 0);
  });
  return out;
}

}  // namespace og::gk
