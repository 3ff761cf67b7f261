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

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{
      "agentctl: control and inspect originguard-agent and originguard-gatekeeper.\n"
      "refresh, reload and uninstall need root or the agent's [control] admin_group; status, metrics,\n"
      "explain and version its [control] group too (docs/SECURITY.md).\n"
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

  CLI11_PARSE(app, argc, argv);
  const bool color = isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR");
  if (*gatekeeper) return gatekeeper_command(gk_socket, gatekeeper->get_subcommands().front()->get_name(), json, color);

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
