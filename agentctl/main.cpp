// agentctl: talks to originguard-agent over its control socket, and to originguard-gatekeeper
// over its own (status, reload and metrics cover both; `agentctl gatekeeper ...` the latter).
// Exit codes: 0 ok/healthy, 1 degraded or refused (permission denied included), 2 agent unreachable
// (usage errors: CLI11 codes > 100).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "client.hpp"
#include "gatekeeper.hpp"
#include "render.hpp"

namespace {

constexpr int kOk = 0, kDegraded = 1, kUnreachable = 2;

std::string default_socket() {
  const char* env = std::getenv("ORIGINGUARD_SOCKET");
  return env && *env ? env : std::string(og::kDefaultAgentSocket);
}

bool socket_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// Adds "health" to the gatekeeper part and prints why it is degraded; true when it is.
bool assess(nlohmann::json& gk) {
  const auto problems = og::ctl::gatekeeper_problems(gk);
  if (gk.value("running", false) || gk.contains("error")) gk["health"] = problems.empty() ? "healthy" : "degraded";
  for (const auto& p : problems) std::cerr << "agentctl: degraded: " << p << "\n";
  return !problems.empty();
}

// `reload` of the gatekeeper: prints the outcome; kOk, kDegraded (refused) or kUnreachable.
int reload_gatekeeper(const std::string& socket) {
  auto reply = og::ctl::call(socket, og::ctl::request("reload"), std::chrono::seconds(60), "gatekeeper");
  if (!reply) {
    std::cerr << "agentctl gatekeeper reload: " << reply.error().message << "\n";
    return kUnreachable;
  }
  if (!reply->value("ok", false)) {
    std::cerr << "agentctl gatekeeper reload: refused, the old config keeps serving: "
              << reply->value("error", std::string("no reason given")) << "\n";
    return kDegraded;
  }
  std::cout << "gatekeeper reload: config " << reply->value("config", std::string("?")) << " applied ("
            << reply->value("hosts", 0) << " hosts)\n";
  for (const auto& w : reply->value("warnings", nlohmann::json::array()))
    std::cout << "  warning: " << (w.is_string() ? w.get<std::string>() : w.dump()) << "\n";
  return kOk;
}

// `agentctl gatekeeper status|reload|metrics`: the gatekeeper alone (unreachable or absent: 2).
int gatekeeper_command(const std::string& socket, const std::string& cmd, bool json, bool color) {
  if (cmd == "reload") return reload_gatekeeper(socket);
  if (cmd == "metrics") {
    auto reply = og::ctl::call(socket, og::ctl::request("metrics"), std::chrono::seconds(10), "gatekeeper");
    if (!reply || !reply->value("ok", false)) {
      std::cerr << "agentctl gatekeeper metrics: "
                << (reply ? reply->value("error", std::string("refused")) : reply.error().message) << "\n";
      return reply ? kDegraded : kUnreachable;
    }
    std::cout << reply->value("text", std::string());
    return kOk;
  }
  auto gk = og::ctl::gatekeeper_status(socket);
  const bool degraded = assess(gk);
  if (json) std::cout << gk.dump(2) << "\n";
  if (!gk.value("running", false)) {
    std::cerr << "agentctl: " << gk.value("error", "the gatekeeper is not running (no socket at " + socket + ")")
              << "\n";
    return kUnreachable;
  }
  if (!json) std::cout << og::ctl::render_gatekeeper(gk, color);
  return degraded ? kDegraded : kOk;
}

// A zone that needs the operator: its setup failed, a step keeps failing, or the rotation is
// overdue (the agent's warnings say which; aop.* ids).
bool aop_degraded(const nlohmann::json& zone) {
  return zone.value("state", "") == "setup_failed" || zone.value("failures", 0) > 0 ||
         !zone.value("export_error", nlohmann::json()).is_null();
}

// `agentctl aop status|issue|rotate|revoke [ZONE]`.
int aop_command(const std::string& socket, const std::string& action, const std::string& zone, bool json, bool dry_run,
                bool ca, bool color) {
  og::ControlRequest req;
  req.cmd = "aop-" + action;
  nlohmann::json p = nlohmann::json::object();
  if (!zone.empty()) p["zone"] = zone;
  if (dry_run) p["dry_run"] = true;
  if (ca) p["ca"] = true;
  req.params = p.dump();
  // issue/rotate return once the request is recorded; revoke waits for its DELETEs.
  auto reply = og::ctl::call(socket, req, std::chrono::seconds(action == "revoke" ? 120 : 60));
  if (!reply) {
    std::cerr << "agentctl: " << reply.error().message << "\n";
    return kUnreachable;
  }
  nlohmann::json& j = *reply;
  if (!j.value("ok", false)) {
    if (json) std::cout << j.dump(2) << "\n";
    std::cerr << "agentctl aop " << action << ": " << j.value("error", std::string("refused")) << "\n";
    return kDegraded;
  }
  j.erase("ok");
  if (action == "status") {
    const auto zones = j.value("zones", nlohmann::json::array());
    bool degraded = false;
    for (const auto& z : zones) degraded |= aop_degraded(z);
    if (json)
      std::cout << j.dump(2) << "\n";
    else
      std::cout << og::ctl::render_aop(zones, color);
    return degraded ? kDegraded : kOk;
  }
  if (json) {
    std::cout << j.dump(2) << "\n";
    return kOk;
  }
  if (dry_run) {
    std::cout << "aop " << action << " (dry run) for zone " << j.value("zone", std::string("?"))
              << ": the API calls it would make, in order:\n";
    for (const auto& c : j.value("plan", nlohmann::json::array()))
      std::cout << "  " << c.value("method", std::string()) << " " << c.value("path", std::string())
                << (c.contains("body") ? "  " + c.value("body", std::string()) : std::string()) << "\n";
    return kOk;
  }
  if (action == "revoke") {
    std::string ids;
    for (const auto& id : j.value("deleted", nlohmann::json::array()))
      ids += (ids.empty() ? "" : ", ") + (id.is_string() ? id.get<std::string>() : id.dump());
    std::cout << "aop revoke: zone " << j.value("zone", std::string("?"))
              << ": deleted at Cloudflare: " << (ids.empty() ? "nothing (no certificate)" : ids)
              << "; the zone is unissued\n";
    return kOk;
  }
  std::cout << "aop " << action << ": zone " << j.value("zone", std::string("?")) << ": "
            << j.value("detail", std::string("requested")) << "\n";
  return kOk;
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{
      "agentctl: control and inspect originguard-agent and originguard-gatekeeper.\n"
      "refresh, reload, uninstall and aop issue/rotate/revoke need root or the agent's [control] admin_group;\n"
      "status, metrics, explain, version and aop status its [control] group too (docs/SECURITY.md).\n"
      "Exit codes: 0 healthy/ok, 1 degraded or command refused (permission denied too), 2 agent unreachable."};
  app.require_subcommand(1);
  // Also what help2man reads for agentctl(8); `agentctl version` asks the daemons too.
  app.set_version_flag("-V,--version", std::string("agentctl ") + OG_VERSION);
  std::string socket = default_socket();
  std::string gk_socket = og::ctl::default_gatekeeper_socket();
  app.add_option("-s,--socket", socket, "agent control socket (env ORIGINGUARD_SOCKET)")->capture_default_str();
  app.add_option("--gatekeeper-socket", gk_socket,
                 "gatekeeper control socket (env ORIGINGUARD_GATEKEEPER_SOCKET); absent: no gatekeeper")
      ->capture_default_str();

  bool json = false, force = false;
  auto* status = app.add_subcommand(
      "status",
      "show ranges, enforcers, warnings and the gatekeeper's hosts (exit 1 when degraded: agent warnings, "
      "gatekeeper socket present but not answering, its last reload refused, a gatekeeper certificate expiring "
      "within 14 days)");
  status->add_flag("--json", json, "machine-readable output (the gatekeeper under \"gatekeeper\")");
  auto* refresh = app.add_subcommand("refresh",
                                     "fetch the ranges now and wait for the outcome (exit 1 when they "
                                     "could not be fetched or put in force)");
  refresh->add_flag("--force", force, "accept a set that shrinks beyond [ranges] max_shrink; skip If-None-Match");
  auto* reload = app.add_subcommand("reload",
                                    "re-read the agent's config and, when its socket exists, the gatekeeper's (a bad "
                                    "file is refused and the old config stays; exit 1 if either refused)");
  auto* version = app.add_subcommand("version", "print agentctl's, the agent's and the gatekeeper's versions");
  auto* metrics = app.add_subcommand("metrics", "print Prometheus text metrics (the gatekeeper's appended)");
  std::string ip;
  int port = 0;
  auto* explain = app.add_subcommand(
      "explain",
      "tell the verdict a new connection from a source address gets from the rules in the kernel, which "
      "layer decides, and what the configuration asks for");
  explain->add_option("ip", ip, "source address")->required();
  explain->add_option("port", port, "destination port")->check(CLI::Range(1, 65535));
  explain->add_flag("--json", json, "machine-readable output");
  auto* uninstall = app.add_subcommand(
      "uninstall",
      "remove the kernel rules the agent installed and stop enforcing until `agentctl reload` or an agent restart "
      "(status is degraded meanwhile)");
  auto* gatekeeper =
      app.add_subcommand("gatekeeper", "the gatekeeper alone (exit 2 when its socket is absent or does not answer)");
  gatekeeper->require_subcommand(1);
  auto* gk_status = gatekeeper->add_subcommand("status", "per-host handshakes, refusals, connections, certificates");
  gk_status->add_flag("--json", json, "machine-readable output");
  gatekeeper->add_subcommand("reload", "re-read the gatekeeper's config (a bad file is refused, the old one serves)");
  gatekeeper->add_subcommand("metrics", "print the gatekeeper's Prometheus text metrics");
  auto* aop = app.add_subcommand(
      "aop",
      "managed Authenticated Origin Pull certificates ([[aop.zone]], docs/AOP.md); issue, rotate and revoke "
      "need the admin group");
  aop->require_subcommand(1);
  std::string aop_zone;
  bool dry_run = false;
  bool aop_ca = false;
  auto* aop_status = aop->add_subcommand(
      "status", "per zone: state, certificates, expiry, next action, last API error (exit 1 when failing)");
  aop_status->add_option("zone", aop_zone, "zone id (default: all)");
  aop_status->add_flag("--json", json, "machine-readable output");
  for (auto [name, help] : {std::pair{"issue", "issue, upload and activate the zone's first certificate"},
                            std::pair{"rotate",
                                      "replace the zone's certificate now (the old one is deleted only after the "
                                      "new one is active)"},
                            std::pair{"revoke",
                                      "delete the zone's certificate at Cloudflare (the edge stops presenting it); "
                                      "the zone is then unissued"}}) {
    auto* c = aop->add_subcommand(name, help);
    c->add_option("zone", aop_zone, "zone id (may be left out when one zone is configured)");
    c->add_flag("--dry-run", dry_run, "print the API calls it would make and change nothing");
    c->add_flag("--json", json, "machine-readable output");
    if (std::string_view(name) == "rotate")
      c->add_flag("--ca", aop_ca,
                  "roll the zone's CA over too: the new CA is trusted first (the bundle the gatekeeper reloads), the "
                  "certificate is rotated under it ca_overlap later, the old CA is dropped ca_overlap after that");
  }

  CLI11_PARSE(app, argc, argv);
  const bool color = isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR");
  if (*gatekeeper) return gatekeeper_command(gk_socket, gatekeeper->get_subcommands().front()->get_name(), json, color);
  if (*aop)
    return aop_command(socket, aop->get_subcommands().front()->get_name(), aop_zone, json, dry_run, aop_ca, color);

  og::ControlRequest req;
  std::chrono::seconds timeout(15);
  if (*status) req.cmd = "status";
  if (*refresh) {
    req.cmd = "refresh";
    req.force = force;
    timeout = std::chrono::seconds(600);
  }
  if (*reload) req.cmd = "reload";
  if (*version) req.cmd = "version";
  if (*metrics) req.cmd = "metrics";
  if (*uninstall) req.cmd = "uninstall";
  if (*explain) {
    req.cmd = "explain";
    nlohmann::json p{{"ip", ip}};
    if (port) p["port"] = port;
    req.params = p.dump();
  }

  auto reply = og::ctl::call(socket, req, timeout);
  if (!reply) {
    if (*version) std::cout << "agentctl " << OG_VERSION << "\nagent    unreachable\n";
    std::cerr << "agentctl: " << reply.error().message << "\n";
    // The gatekeeper is reloaded even when the agent cannot be reached.
    if (*reload && socket_exists(gk_socket)) (void)reload_gatekeeper(gk_socket);
    return kUnreachable;
  }
  nlohmann::json& j = *reply;
  bool ok = j.value("ok", false);
  if (!ok) {
    if (json) std::cout << j.dump(2) << "\n";
    std::cerr << "agentctl " << req.cmd << ": " << j.value("error", std::string("refused")) << "\n";
    if (*reload && socket_exists(gk_socket)) (void)reload_gatekeeper(gk_socket);
    return kDegraded;
  }
  j.erase("ok");

  if (*status) {
    auto gk = og::ctl::gatekeeper_status(gk_socket);
    const bool gk_degraded = assess(gk);
    const bool agent_healthy = j.value("health", "") == "healthy";
    j["gatekeeper"] = gk;
    if (json) {
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << og::ctl::render_status(j, color) << '\n' << og::ctl::render_gatekeeper(gk, color);
    }
    return agent_healthy && !gk_degraded ? kOk : kDegraded;
  }
  if (*refresh) {
    std::string result = j.value("result", "");
    std::cout << "refresh: " << result << ": " << j.value("ipv4", 0) << " IPv4 + " << j.value("ipv6", 0)
              << " IPv6 prefixes from " << j.value("source", std::string("?"))
              << (j.value("changed", false) ? " (changed, enforcers updated)" : "") << "\n";
    if (j.contains("note")) std::cout << "note: " << j.value("note", std::string()) << "\n";
    return kOk;
  }
  if (*reload) {
    std::cout << "reload: config " << j.value("config", std::string("?")) << " applied"
              << (j.value("refreshing", false) ? "; sources changed, refreshing now" : "") << "\n";
    // A layer that cannot run here (XDP without kernel support): applied without it.
    if (j.contains("note")) std::cout << "note: " << j.value("note", std::string()) << "\n";
    if (!socket_exists(gk_socket)) return kOk;
    return reload_gatekeeper(gk_socket) == kOk ? kOk : kDegraded;
  }
  if (*version) {
    std::cout << "agentctl " << OG_VERSION << "\nagent    " << j.value("version", std::string("?")) << "\n";
    if (socket_exists(gk_socket)) {
      auto gk = og::ctl::call(gk_socket, og::ctl::request("version"), std::chrono::seconds(5), "gatekeeper");
      std::cout << "gatekeeper "
                << (gk && gk->value("ok", false) ? gk->value("version", std::string("?")) : "unreachable") << "\n";
    }
    return kOk;
  }
  if (*metrics) {
    std::cout << j.value("text", std::string());
    if (socket_exists(gk_socket)) {
      auto gk = og::ctl::call(gk_socket, og::ctl::request("metrics"), std::chrono::seconds(10), "gatekeeper");
      if (gk && gk->value("ok", false))
        std::cout << gk->value("text", std::string());
      else
        std::cerr << "agentctl: gatekeeper metrics unavailable: "
                  << (gk ? gk->value("error", std::string("refused")) : gk.error().message) << "\n";
    }
    return kOk;
  }
  if (*explain) {
    std::cout << (json ? j.dump(2) + "\n" : og::ctl::render_explain(j, color));
    return kOk;
  }
  if (*uninstall) {
    std::string what;
    const auto per = j.value("enforcers", nlohmann::json::object());
    for (auto it = per.begin(); it != per.end(); ++it)
      what += (what.empty() ? "" : ", ") + it.key() +
              (it->is_object() && it->value("removed", false) ? " removed" : " had nothing installed");
    std::cout << "uninstall: " << (what.empty() ? "no enforcer" : what) << "; " << j.value("detail", std::string())
              << "\n";
    return kOk;
  }
  std::cout << j.dump(2) << "\n";
  return kOk;
} catch (const std::exception& e) {
  std::cerr << "agentctl: " << e.what() << "\n";
  return 70;
}
