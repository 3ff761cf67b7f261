#include "render.hpp"

#include <cstdint>
#include <iomanip>
#include <sstream>

#include "originguard/duration.hpp"

namespace og::ctl {
namespace {

struct Style {
  bool on;
  [[nodiscard]] std::string wrap(const char* code, const std::string& s) const {
    return on ? std::string("\033[") + code + "m" + s + "\033[0m" : s;
  }
  [[nodiscard]] std::string bold(const std::string& s) const { return wrap("1", s); }
  [[nodiscard]] std::string red(const std::string& s) const { return wrap("1;31", s); }
  [[nodiscard]] std::string green(const std::string& s) const { return wrap("1;32", s); }
  [[nodiscard]] std::string yellow(const std::string& s) const { return wrap("1;33", s); }
  [[nodiscard]] std::string dim(const std::string& s) const { return wrap("2", s); }
};

std::string str(const nlohmann::json& j, const char* key, const std::string& dflt = "-") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

std::string ago(const nlohmann::json& secs) {
  if (!secs.is_number_integer()) return "";
  return format_duration(Seconds(secs.get<long long>())) + " ago";
}

void row(std::ostringstream& o, const std::string& label, const std::string& value) {
  o << "  " << std::left << std::setw(16) << label << value << '\n';
}

// Enforcer objects are rendered generically: scalars as rows, nested objects flattened.
void render_enforcer(std::ostringstream& o, const std::string& name, const nlohmann::json& e, const Style& st) {
  o << "  " << st.bold(name) << '\n';
  for (auto it = e.begin(); it != e.end(); ++it) {
    if (it.key() == "metrics" || it.key() == "warnings") continue;
    std::string v = it->is_string() ? it->get<std::string>() : it->dump();
    if (v.size() > 90) v = v.substr(0, 87) + "...";
    o << "    " << std::left << std::setw(18) << it.key() << v << '\n';
  }
}

std::string human_bytes(std::uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream o;
  o << std::fixed << std::setprecision(u ? 1 : 0) << v << ' ' << units[u];
  return o.str();
}

std::string counter(const nlohmann::json& c) {
  if (!c.is_object()) return "-";
  auto p = c.value("packets", std::uint64_t{0});
  return std::to_string(p) + " packet" + (p == 1 ? "" : "s") + " (" + human_bytes(c.value("bytes", std::uint64_t{0})) +
         ")";
}

void render_nftables(std::ostringstream& o, const nlohmann::json& e, const Style& st) {
  bool present = e.value("table_present", false);
  std::string mode = str(e, "mode");
  std::string ports;
  for (const auto& p : e.value("ports", nlohmann::json::array())) ports += (ports.empty() ? "" : ",") + p.dump();
  const std::string state = str(e, "state", "enforcing");
  o << "  " << st.bold("nftables") << "  table " << str(e, "table", "inet originguard") << " "
    << (present ? st.green("present") : st.red("MISSING")) << ", mode " << (mode == "audit" ? st.yellow("AUDIT") : mode)
    << ", ports " << (ports.empty() ? "-" : ports)
    << (state == "enforcing" ? "" : ", " + st.red(state == "uninstalled" ? "UNINSTALLED" : state)) << '\n';
  const auto el = e.value("elements", nlohmann::json::object());
  auto n = [&](const char* k) { return std::to_string(el.value(k, 0)); };
  row(o, "  Edge set", n("edge_v4") + " IPv4 + " + n("edge_v6") + " IPv6 ranges");
  row(o, "  Mgmt set", n("mgmt_v4") + " IPv4 + " + n("mgmt_v6") + " IPv6 ranges");
  row(o, "  Dropped", counter(e.value("dropped", nlohmann::json())));
  if (mode == "audit" || e.value("audit_would_drop", nlohmann::json::object()).value("packets", 0) > 0)
    row(o, "  Would drop", counter(e.value("audit_would_drop", nlohmann::json())) + " (audit)");
  const auto la = e.value("last_apply", nlohmann::json::object());
  if (!la.empty()) {
    std::ostringstream ms;
    ms << std::fixed << std::setprecision(1) << la.value("duration_ms", 0.0);
    row(o, "  Last apply", str(la, "time") + " (" + ms.str() + " ms), " + str(e, "applies", "0") + " applies");
  }
  std::string drift = str(e, "drift_repairs", "0") + " repair(s)";
  if (e.contains("last_drift") && !e["last_drift"].is_null() && !e["last_drift"].empty()) {
    const auto& d = e["last_drift"];
    std::string why;
    for (const auto& r : d.value("reasons", nlohmann::json::array()))
      why += (why.empty() ? "" : "; ") + (r.is_string() ? r.get<std::string>() : r.dump());
    drift += ", last at " + str(d, "time") + ": " + why;
  }
  row(o, "  Drift", drift);
  if (e.contains("last_error") && e["last_error"].is_string() && !e["last_error"].get<std::string>().empty())
    row(o, "  Last error", st.red(e["last_error"].get<std::string>()));
}

std::uint64_t packets_of(const nlohmann::json& family, const char* reason) {
  auto it = family.find(reason);
  return it != family.end() && it->is_object() ? it->value("packets", std::uint64_t{0}) : 0;
}

void render_xdp(std::ostringstream& o, const nlohmann::json& e, const Style& st) {
  const bool attached = e.value("attached", false);
  const std::string mode = str(e, "mode", "none");
  std::string on;
  for (const auto& i : e.value("interfaces", nlohmann::json::array()))
    if (str(i, "state") == "attached") on += (on.empty() ? "" : ",") + str(i, "name");
  const bool none = e.value("interfaces", nlohmann::json::array()).empty();
  const std::string enforcer_state = str(e, "state", "enforcing");
  o << "  " << st.bold("xdp") << "  "
    << (attached ? st.green("attached")
        : none   ? st.dim("attached nowhere")
                 : st.red("NOT ATTACHED everywhere"));
  if (!none) o << ", " << mode << " mode" << (on.empty() ? "" : " on " + on);
  o << ", protect mode " << (str(e, "protect_mode") == "audit" ? st.yellow("AUDIT") : str(e, "protect_mode"))
    << (enforcer_state == "enforcing" ? ""
                                      : ", " + st.red(enforcer_state == "uninstalled" ? "UNINSTALLED" : enforcer_state))
    << '\n';
  if (e.contains("note")) row(o, "  Note", str(e, "note"));
  for (const auto& i : e.value("interfaces", nlohmann::json::array())) {
    const std::string state = str(i, "state");
    std::string line = str(i, "name") + ": " + (state == "attached" ? st.green(state) : st.red(state));
    if (i.contains("mode") && !i["mode"].is_null()) line += " (" + str(i, "mode") + ")";
    if (i.contains("detail")) line += " " + st.dim(str(i, "detail"));
    row(o, "  Interface", line);
  }
  const auto c = e.value("counters", nlohmann::json::object());
  auto sum = [&](const char* reason) {
    std::uint64_t n = 0;
    for (auto it = c.begin(); it != c.end(); ++it) n += packets_of(*it, reason);
    return n;
  };
  row(o, "  Dropped",
      str(e, "dropped_packets", "0") + " packets (IPv4 " +
          std::to_string(packets_of(c.value("ipv4", nlohmann::json::object()), "dropped")) + ", IPv6 " +
          std::to_string(packets_of(c.value("ipv6", nlohmann::json::object()), "dropped")) + ")");
  row(o, "  Passed",
      str(e, "passed_packets", "0") + " packets (edge " + std::to_string(sum("edge")) + ", mgmt " +
          std::to_string(sum("mgmt")) + ", tracked connections " + std::to_string(sum("tracked")) +
          ", unprotected ports " + std::to_string(sum("port_not_protected")) + ")");
  if (str(e, "protect_mode") == "audit" || e.value("audit_would_drop_packets", 0) > 0)
    row(o, "  Would drop", str(e, "audit_would_drop_packets", "0") + " packets (audit)");
  const auto p = e.value("program", nlohmann::json());
  if (p.is_object()) {
    std::string ct = p.value("conntrack", false) ? "conntrack check on"
                                                 : "conntrack check OFF (" + str(p, "conntrack_error", "?") + ")";
    row(o, "  Program", "id " + str(p, "id") + ", generation " + str(p, "generation") + ", " + ct);
  }
  const auto la = e.value("last_apply", nlohmann::json::object());
  if (la.is_object() && !la.empty()) {
    std::ostringstream ms;
    ms << std::fixed << std::setprecision(1) << la.value("duration_ms", 0.0);
    row(o, "  Last apply", str(la, "time") + " (" + ms.str() + " ms), " + str(e, "applies", "0") + " applies");
  }
  std::string drift = str(e, "drift_repairs", "0") + " repair(s)";
  if (e.contains("last_drift") && e["last_drift"].is_object()) {
    std::string why;
    for (const auto& r : e["last_drift"].value("reasons", nlohmann::json::array()))
      why += (why.empty() ? "" : "; ") + (r.is_string() ? r.get<std::string>() : r.dump());
    drift += ", last at " + str(e["last_drift"], "time") + ": " + why;
  }
  row(o, "  Drift", drift);
  if (e.contains("last_error") && e["last_error"].is_string())
    row(o, "  Last error", st.red(e["last_error"].get<std::string>()));
}

}  // namespace

std::string render_status(const nlohmann::json& s, bool color) {
  Style st{color};
  std::ostringstream o;
  const auto& agent = s.value("agent", nlohmann::json::object());
  const auto& r = s.value("ranges", nlohmann::json::object());
  bool healthy = s.value("health", "") == "healthy";
  std::string mode = str(agent, "mode");

  o << st.bold("originguard-agent " + str(s, "version")) << "   pid " << str(agent, "pid") << "   up "
    << format_duration(Seconds(agent.value("uptime_s", 0LL))) << "   "
    << (healthy ? st.green("HEALTHY") : st.red("DEGRADED")) << "   mode "
    << (mode == "audit" ? st.yellow("AUDIT (nothing is dropped)") : st.bold(mode)) << "\n\n";

  o << st.bold("Ranges") << '\n';
  row(o, "IPv4 prefixes", str(r, "ipv4"));
  row(o, "IPv6 prefixes", str(r, "ipv6"));
  if (r.value("extra_allow", 0) > 0) row(o, "extra_allow", str(r, "extra_allow") + " (included above)");
  row(o, "Source", str(r, "source"));
  row(o, "ETag", str(r, "etag"));
  if (r.contains("fetched_at") && !r["fetched_at"].is_null())
    row(o, "Fetched", str(r, "fetched_at") + "  (" + ago(r["age_s"]) + ")");
  else
    row(o, "Fetched", "never (embedded snapshot)");
  if (r.value("refreshing", false))
    row(o, "Next refresh", "running now");
  else
    row(o, "Next refresh",
        "in " + format_duration(Seconds(r.value("next_refresh_s", 0LL))) + "  (every " +
            format_duration(Seconds(r.value("refresh_interval_s", 0LL))) + " +-10%)");
  if (r.contains("last_error") && !r["last_error"].is_null()) {
    row(o, "Last error", st.red(str(r, "last_error")));
    row(o, "",
        st.dim("at " + str(r, "last_error_at") + ", " + str(r, "consecutive_failures") + " failure(s) in a row"));
  } else {
    row(o, "Last error", "none");
  }

  o << '\n' << st.bold("Enforcers") << '\n';
  const auto& enf = s.value("enforcers", nlohmann::json::object());
  if (enf.empty()) o << "  " << st.dim("(none enabled)") << '\n';
  for (auto it = enf.begin(); it != enf.end(); ++it) {
    if (it.key() == "nftables" && it->is_object())
      render_nftables(o, *it, st);
    else if (it.key() == "xdp" && it->is_object())
      render_xdp(o, *it, st);
    else
      render_enforcer(o, it.key(), *it, st);
  }

  if (const auto& aop = s.value("aop", nlohmann::json::array()); aop.is_array() && !aop.empty()) {
    o << '\n' << render_aop(aop, color);
  }

  const auto& w = s.value("warnings", nlohmann::json::array());
  o << '\n' << st.bold("Warnings") << '\n';
  if (w.empty()) o << "  none\n";
  for (const auto& x : w)
    o << "  " << st.yellow("!") << ' ' << (x.is_string() ? x.get<std::string>() : x.dump()) << '\n';
  return o.str();
}

std::string render_aop(const nlohmann::json& zones, bool color) {
  Style st{color};
  std::ostringstream o;
  o << st.bold("Origin-pull certificates (AOP)") << '\n';
  if (!zones.is_array() || zones.empty()) o << "  " << st.dim("(no [[aop.zone]] configured)") << '\n';
  for (const auto& z : zones.is_array() ? zones : nlohmann::json::array()) {
    const std::string state = str(z, "state");
    const bool bad = state == "setup_failed" || z.value("failures", 0) > 0;
    o << "  " << st.bold("zone " + str(z, "zone_id")) << "  " << (bad ? st.red(state) : st.green(state)) << "  ("
      << str(z, "level") << " level)\n";
    auto r = [&](const std::string& label, const std::string& v) {
      o << "    " << std::left << std::setw(16) << label << v << '\n';
    };
    r("Certificate",
      str(z, "current_cert_id") + "  expires " + str(z, "expires_on") + "  renew at " + str(z, "renew_at"));
    if (!z.value("next_cert_id", nlohmann::json()).is_null()) r("Rolling out", str(z, "next_cert_id"));
    if (!z.value("previous_cert_id", nlohmann::json()).is_null()) r("Previous", str(z, "previous_cert_id"));
    r("Next action", z.value("busy", false) ? std::string("running now") : str(z, "next_action_at"));
    if (z.value("ca_rollover", std::string("none")) != "none")
      r("CA rollover", str(z, "ca_rollover") + (z.value("ca_rollover_next_at", nlohmann::json()).is_null()
                                                    ? std::string()
                                                    : "  next step at " + str(z, "ca_rollover_next_at")));
    if (!z.value("last_error", nlohmann::json()).is_null())
      r("Last error",
        st.red(str(z, "last_error")) + st.dim(" (" + str(z, "last_error_kind") + ", at " + str(z, "last_error_at") +
                                              ", " + str(z, "failures") + " in a row)"));
    else
      r("Last error", "none");
    r("CA bundle", str(z, "ca_bundle") + (z.value("export_error", nlohmann::json()).is_null()
                                              ? std::string()
                                              : st.red("  NOT EXPORTED: " + str(z, "export_error"))));
  }
  return o.str();
}

std::string render_gatekeeper(const nlohmann::json& gk, bool color) {
  Style st{color};
  std::ostringstream o;
  if (!gk.value("running", false)) {
    if (gk.contains("error"))
      o << st.bold("Gatekeeper") << "   " << st.red("UNREACHABLE") << "   " << str(gk, "error") << '\n';
    else
      o << st.bold("Gatekeeper") << "   " << st.dim("not running (no socket at " + str(gk, "socket") + ")") << '\n';
    return o.str();
  }
  const bool healthy = gk.value("health", "healthy") == "healthy";
  o << st.bold("Gatekeeper " + str(gk, "version")) << "   pid " << str(gk, "pid") << "   up "
    << format_duration(Seconds(gk.value("uptime_s", 0LL))) << "   "
    << (healthy ? st.green("HEALTHY") : st.red("DEGRADED")) << '\n';
  row(o, "Config", str(gk, "config_file") + " (loaded " + str(gk, "loaded_at") + ")");
  const auto lr = gk.value("last_reload", nlohmann::json());
  if (lr.is_object())
    row(o, "Last reload",
        str(lr, "time") + " (" + str(lr, "trigger") + ") " +
            (lr.value("ok", false) ? st.green("ok")
                                   : st.red("REFUSED: " + str(lr, "error")) + " (old config serving)"));
  std::string listeners;
  for (const auto& l : gk.value("listeners", nlohmann::json::array()))
    listeners += (listeners.empty() ? "" : ", ") + str(l, "address") + " (" + str(l, "source") + ")";
  row(o, "Listeners", (listeners.empty() ? "-" : listeners) + ", " + str(gk, "workers") + " workers");
  row(o, "Connections",
      str(gk, "connections_active") + " active; refused: " + str(gk, "refused_sni") + " no/unknown SNI, " +
          str(gk, "refused_overload") + " overload, " + str(gk, "refused_not_edge", "0") + " not edge, " +
          str(gk, "refused_source_limit", "0") + " per-source limit; " + str(gk, "handshake_errors") +
          " handshake errors");
  for (const auto& h : gk.value("hosts", nlohmann::json::array())) {
    std::string names;
    for (const auto& n : h.value("names", nlohmann::json::array()))
      names += (names.empty() ? "" : ", ") + n.get<std::string>();
    o << '\n'
      << "  " << st.bold(names) << "   mtls " << str(h, "mtls") << ", " << str(h, "mode") << " -> "
      << str(h, "upstream") << '\n';
    auto hrow = [&](const std::string& label, const std::string& value) {
      o << "    " << std::left << std::setw(14) << label << value << '\n';
    };
    const bool mtls = str(h, "mtls") != "off";
    // "origin-pull (global)", or an aop: bundle that still holds it (a zone's migration).
    const bool global = str(h, "client_ca").find("origin-pull (global)") != std::string::npos;
    const bool pinned = h.value("pinned", false);
    if (mtls) hrow("Client CA", str(h, "client_ca") + (pinned ? ", pinned" : ", no pins"));
    const auto r = h.value("refusals", nlohmann::json::object());
    hrow("Handshakes", str(h, "handshakes_ok") + " ok; refused: " + str(r, "no_cert", "0") + " no cert, " +
                           str(r, "verify", "0") + " verify, " + str(r, "pin", "0") + " pin, " +
                           str(r, "subject", "0") + " subject, " + str(r, "edge_ip", "0") + " edge IP");
    hrow("Active", str(h, "active_connections") + " connection(s)");
    for (const auto& c : h.value("certs", nlohmann::json::array())) {
      const long long days = c.value("days_left", 0LL);
      std::string line = str(c, "file") + "  expires " + str(c, "not_after") + " (" +
                         (days < 0 ? "EXPIRED" : std::to_string(days) + " days") + ")";
      if (c.value("warning", false))
        line += "  " + st.red(days < 0 ? "WARNING: expired" : "WARNING: expires in under 14 days");
      hrow("Certificate", line);
    }
    if (mtls && global && !pinned)
      hrow("Warning", st.yellow("WARNING: relies on the global origin-pull CA without pins: any Cloudflare zone can "
                                "reach this host (use a zone/per-hostname client_ca or pins)"));
  }
  return o.str();
}

std::string render_explain(const nlohmann::json& j, bool color) {
  Style st{color};
  std::ostringstream o;
  std::string verdict = str(j, "verdict");
  std::string target = str(j, "ip") + (j.contains("port") && !j["port"].is_null() ? " -> port " + str(j, "port") : "");
  o << target << ": "
    << (verdict == "drop"     ? st.red("DROP")
        : verdict == "accept" ? st.green("ACCEPT")
                              : st.yellow("UNKNOWN (the kernel holds something else)"))
    << '\n';
  row(o, "Why", str(j, "reason"));
  row(o, "Matched", str(j, "matched", "nothing") + " (" + str(j, "list") + ")");
  row(o, "Decided by", str(j, "layer"));
  // Each layer's own answer, in packet order (XDP at the driver first, then nftables).
  const auto layers = j.value("enforcers", nlohmann::json::object());
  if (layers.is_object() && layers.size() > 1) {
    for (const char* name : {"xdp", "nftables"})
      if (auto it = layers.find(name); it != layers.end() && it->is_object())
        row(o, std::string("  ") + name, str(*it, "verdict") + ": " + str(*it, "reason"));
  }
  row(o, "Mode", str(j, "mode"));
  if (j.contains("detail"))
    row(o, "Detail", j["detail"].is_string() ? j["detail"].get<std::string>() : j["detail"].dump());
  return o.str();
}

}  // namespace og::ctl
