// originguard-gatekeeper: terminates TLS for the origin, enforcing Cloudflare Authenticated
// Origin Pulls per SNI host (see docs/GATEKEEPER.md).
#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "config.hpp"
#include "originguard/log.hpp"
#include "server.hpp"
#include "tls_policy.hpp"

int main(int argc, char** argv) {
  CLI::App app{"originguard-gatekeeper: per-host Authenticated Origin Pull enforcement"};
  std::string config = "/etc/originguard/gatekeeper.toml";
  bool check = false, verbose = false;
  app.add_option("-c,--config", config, "TOML configuration file")->capture_default_str();
  app.add_flag("--check-config", check, "Load and validate every certificate, key, CA and CRL, then exit");
  app.add_flag("-v,--verbose", verbose, "Debug logging");
  app.set_version_flag("--version", std::string(OG_VERSION));
  CLI11_PARSE(app, argc, argv);
  if (verbose) og::log::set_min_level(og::log::Level::debug);
  std::signal(SIGPIPE, SIG_IGN);

  try {
    if (check) {
      auto cfg = og::gk::load_gatekeeper_config(config);
      if (!cfg) {
        std::cerr << cfg.error().message << "\n";
        return 1;
      }
      auto set = og::gk::PolicySet::build(*cfg);
      if (!set) {
        std::cerr << set.error().message << "\n";
        return 1;
      }
      for (const auto& w : og::gk::policy_warnings(**set)) std::cerr << "warning: " << w << "\n";
      if (cfg->listen.empty())
        std::cerr
            << "note: listen = []: the listening sockets must come from systemd (originguard-gatekeeper.socket)\n";
      std::cout << config << ": ok (" << cfg->hosts.size() << " hosts)\n";
      return 0;
    }
    auto server = og::gk::Server::create(config);
    if (!server) {
      og::log::error("gk_start_failed", {{"error", server.error().message}});
      return 1;
    }
    return (*server)->run();
  } catch (const std::exception& e) {  // programming errors only
    og::log::error("gk_fatal", {{"error", e.what()}});
    return 70;
  }
}
