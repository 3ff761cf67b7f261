#include "metrics.hpp"

#include <cstdio>

#include "status.hpp"

namespace og {

using std::chrono::duration_cast;
using std::chrono::seconds;

namespace {

class Exposition {
 public:
  // Starts a family: its samples must follow before the next family starts.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ");
    out_.append(name).append(" ").append(type).append("\n");
  }
  template <class V>
  void sample(std::string_view name, std::string_view labels, V v) {
    out_.append(name);
    if (!labels.empty()) out_.append("{").append(labels).append("}");
    out_.append(" ").append(number(v)).append("\n");
  }
  void raw(std::string_view text) { out_.append(text); }
  std::string take() { return std::move(out_); }

 private:
  static std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
  }
  template <class I>
  requires std::is_integral_v<I>
  static std::string number(I v) { return std::to_string(v); }
  std::string out_;
};

std::string label(std::string_view key, std::string_view value) {
  return std::string(key) + "=\"" + prometheus_label(value) + "\"";
}

// A source URL as a scrape may see it: the endpoint may be reachable by more than the local
// users `agentctl status` answers, so no user:password@ and no query (a token) leaves the host.
std::string public_source(std::string_view source) {
  std::string out;
  while (true) {
    const auto plus = source.find(" + ");
    std::string_view url = source.substr(0, plus);
    std::string part;
    if (const auto scheme = url.find("://"); scheme != std::string_view::npos) {
      const auto host = scheme + 3;
      const auto path = std::min(url.find('/', host), url.size());
      const auto at = url.substr(host, path - host).rfind('@');
      part = std::string(url.substr(0, host)) +
             std::string(url.substr(at == std::string_view::npos ? host : host + at + 1));
      part = part.substr(0, part.find_first_of("?#"));
    } else {
      part = std::string(url);
    }
    out += part;
    if (plus == std::string_view::npos) return out;
    out += " + ";
    source.remove_prefix(plus + 3);
  }
}

}  // namespace

std::string prometheus_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string build_metrics(const AgentSnapshot& s) {
  const auto& r = *s.refresh;
  Exposition m;
  std::optional<RangeSet> merged;
  if (!s.effective) merged = r.current.ranges.merged(s.config->ranges.extra_allow);
  const RangeSet& effective = s.effective ? *s.effective : *merged;
  m.family("originguard_ranges_prefixes", "gauge",
           "Prefixes allowed as edge (fetched ranges + extra_allow), by family.");
  m.sample("originguard_ranges_prefixes", "family=\"ipv4\"", effective.v4().size());
  m.sample("originguard_ranges_prefixes", "family=\"ipv6\"", effective.v6().size());
  m.family("originguard_ranges_fetched_timestamp_seconds", "gauge",
           "When the ranges in force were fetched (0 = embedded snapshot).");
  m.sample("originguard_ranges_fetched_timestamp_seconds", "",
           r.current.fetched_at ? duration_cast<seconds>(r.current.fetched_at->time_since_epoch()).count() : 0);
  m.family("originguard_ranges_source_info", "gauge",
           "Where the ranges in force come from (a URL without credentials or query, URLs joined by \" + \", or the "
           "embedded snapshot); always 1.");
  m.sample("originguard_ranges_source_info", label("source", public_source(r.current.source)), 1);
  m.family("originguard_refresh_total", "counter", "Refresh attempts by result.");
  m.sample("originguard_refresh_total", "result=\"updated\"", r.updated);
  m.sample("originguard_refresh_total", "result=\"not_modified\"", r.not_modified);
  m.sample("originguard_refresh_total", "result=\"failed\"", r.failed);
  m.family("originguard_refresh_consecutive_failures", "gauge", "Failed refreshes since the last success.");
  m.sample("originguard_refresh_consecutive_failures", "", r.consecutive_failures);
  m.family("originguard_config_reloads_total", "counter",
           "Config reloads (SIGHUP, agentctl reload) by result: ok, or refused (the previous config stays in force).");
  m.sample("originguard_config_reloads_total", "result=\"ok\"", s.counters.reloads_ok);
  m.sample("originguard_config_reloads_total", "result=\"refused\"", s.counters.reloads_refused);
  m.family("originguard_healthy", "gauge", "1 when agentctl status would exit 0.");
  bool degraded = false;
  for (const auto& w : collect_warnings(s)) degraded |= w.needs_action;
  m.sample("originguard_healthy", "", degraded ? 0 : 1);

  const auto& ec = s.counters.enforcers;
  m.family("originguard_enforcer_applies_total", "counter",
           "Applies of the desired state to the kernel, by enforcer and result (ok, failed: retried with backoff).");
  for (const auto& e : ec) {
    m.sample("originguard_enforcer_applies_total", label("enforcer", e.name) + ",result=\"ok\"", e.applies_ok);
    m.sample("originguard_enforcer_applies_total", label("enforcer", e.name) + ",result=\"failed\"", e.applies_failed);
  }
  m.family("originguard_enforcer_last_apply_duration_seconds", "gauge",
           "How long the enforcer's last apply took, successful or not.");
  for (const auto& e : ec)
    if (e.last_apply_seconds)
      m.sample("originguard_enforcer_last_apply_duration_seconds", label("enforcer", e.name), *e.last_apply_seconds);
  m.family("originguard_enforcer_drift_repairs_total", "counter",
           "Times the enforcer found its kernel state changed by someone else and put it back.");
  for (const auto& e : ec)
    m.sample("originguard_enforcer_drift_repairs_total", label("enforcer", e.name), e.drift_repairs);

  // Each enforcer's own packet counters, in the uniform shape of its status "traffic" list
  // (include/originguard/enforcer.hpp).
  struct Traffic {
    std::string labels;
    std::uint64_t packets, bytes;
  };
  std::vector<Traffic> traffic;
  for (auto it = s.enforcers.begin(); it != s.enforcers.end(); ++it) {
    const auto t = it->is_object() ? it->find("traffic") : it->end();
    if (t == it->end() || !t->is_array()) continue;
    for (const auto& x : *t) {
      if (!x.is_object() || !x.contains("verdict") || !x["verdict"].is_string()) continue;
      auto count = [&](const char* k) -> std::uint64_t {  // a count, or 0 for anything else
        if (!x.contains(k)) return 0;
        if (x[k].is_number_unsigned()) return x[k].get<std::uint64_t>();
        if (x[k].is_number_integer() && x[k].get<std::int64_t>() >= 0) return x[k].get<std::uint64_t>();
        return 0;
      };
      traffic.push_back({label("enforcer", it.key()) + "," + label("verdict", x["verdict"].get<std::string>()),
                         count("packets"), count("bytes")});
    }
  }
  m.family("originguard_enforcer_packets_total", "counter",
           "Packets the enforcer counted on the protected ports, by verdict: drop, or audit (would be dropped; "
           "passed because [protect] mode is audit).");
  for (const auto& t : traffic) m.sample("originguard_enforcer_packets_total", t.labels, t.packets);
  m.family("originguard_enforcer_bytes_total", "counter", "Bytes of those packets, by verdict.");
  for (const auto& t : traffic) m.sample("originguard_enforcer_bytes_total", t.labels, t.bytes);

  m.raw(s.aop_metrics);  // managed origin-pull certificates, per zone

  // Families of an enforcer's own (its status "metrics" text).
  for (auto it = s.enforcers.begin(); it != s.enforcers.end(); ++it) {
    if (auto x = it->find("metrics"); x != it->end() && x->is_string()) m.raw(x->get<std::string>());
  }
  return m.take();
}

}  // namespace og
