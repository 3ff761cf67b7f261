// agentctl: talks to originguard-agent over its control socket.
// Exit codes: 0 ok/healthy, 1 degraded or the agent refused, 2 agent unreachable (usage errors: CLI11 codes > 100).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "client.hpp"
#include "render.hpp"

namespace {

constexpr int kOk = 0, kDegraded = 1, kUnreachable = 2;

std::string default_socket() {
  const char* env = std::getenv("ORIGINGUARD_SOCKET");
  return env && *env ? env : "/run/originguard/agent.sock";
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{
      "agentctl: control and inspect originguard-agent.\n"
      "Exit codes: 0 healthy/ok, 1 degraded or command refused, 2 agent unreachable."};
  app.require_subcommand(1);
  std::string socket = default_socket();
  app.add_option("-s,--socket", socket, "agent control socket (env ORIGINGUARD_SOCKET)")->capture_default_str();

  bool json = false, force = false;
  auto* status = app.add_subcommand("status", "show ranges, enforcers and warnings (exit 1 when degraded)");
  status->add_flag("--json", json, "machine-readable output");
  auto* refresh = app.add_subcommand("refresh", "fetch the ranges now and wait for the outcome");
  refresh->add_flag("--force", force, "accept a set that shrinks beyond [ranges] max_shrink; skip If-None-Match");
  auto* reload = app.add_subcommand("reload", "re-read the config file (a bad file is refused, the old config stays)");
  auto* version = app.add_subcommand("version", "print agentctl's and the agent's versions");
  auto* metrics = app.add_subcommand("metrics", "print Prometheus text metrics");
  std::string ip;
  int port = 0;
  auto* explain = app.add_subcommand("explain", "tell the verdict a source address would get, and why");
  explain->add_option("ip", ip, "source address")->required();
  explain->add_option("port", port, "destination port")->check(CLI::Range(1, 65535));
  explain->add_flag("--json", json, "machine-readable output");
  auto* uninstall = app.add_subcommand("uninstall", "remove the kernel rules the agent installed");

  CLI11_PARSE(app, argc, argv);
  const bool color = isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR");

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
    return kUnreachable;
  }
  nlohmann::json& j = *reply;
  bool ok = j.value("ok", false);
  if (!ok) {
    if (json) std::cout << j.dump(2) << "\n";
    std::cerr << "agentctl " << req.cmd << ": " << j.value("error", std::string("refused")) << "\n";
    return kDegraded;
  }
  j.erase("ok");

  if (*status) {
    std::cout << (json ? j.dump(2) + "\n" : og::ctl::render_status(j, color));
    return j.value("health", "") == "healthy" ? kOk : kDegraded;
  }
  if (*refresh) {
    std::string result = j.value("result", "");
    std::cout << "refresh: " << result << ": " << j.value("ipv4", 0) << " IPv4 + " << j.value("ipv6", 0)
              << " IPv6 prefixes from " << j.value("source", std::string("?"))
              << (j.value("changed", false) ? " (changed, enforcers updated)" : "") << "\n";
    return kOk;
  }
  if (*reload) {
    std::cout << "reload: config " << j.value("config", std::string("?")) << " applied"
              << (j.value("refreshing", false) ? "; sources changed, refreshing now" : "") << "\n";
    return kOk;
  }
  if (*version) {
    std::cout << "agentctl " << OG_VERSION << "\nagent    " << j.value("version", std::string("?")) << "\n";
    return kOk;
  }
  if (*metrics) {
    std::cout << j.value("text", std::string());
    return kOk;
  }
  if (*explain) {
    std::cout << (json ? j.dump(2) + "\n" : og::ctl::render_explain(j, color));
    return kOk;
  }
  std::cout << j.dump(2) << "\n";
  return kOk;
} catch (const std::exception& e) {
  std::cerr << "agentctl: " << e.what() << "\n";
  return 70;
}
