// originguard-agent entry point: options, config, daemonisation, then Agent::run().
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "agent.hpp"
#include "aop/config.hpp"
#include "originguard/control_server.hpp"
#include "originguard/log.hpp"
#include "realip.hpp"

namespace {

// Classic detach for use without a supervisor; under systemd (Type=notify) use --foreground.
int daemonize() {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid > 0) _exit(0);
  if (setsid() < 0) return -1;
  pid = fork();
  if (pid < 0) return -1;
  if (pid > 0) _exit(0);
  if (chdir("/") != 0) return -1;
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) return -1;
  dup2(fd, STDIN_FILENO);
  dup2(fd, STDOUT_FILENO);
  // stderr is kept: it is where logs go (journald when started by systemd).
  if (fd > STDERR_FILENO) close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  // A refresh of a large range list allocates megabytes for a moment, partly on the fetch
  // worker thread and partly on the loop, then frees them. glibc's defaults keep both in
  // resident memory: each thread gets an arena of its own (neither reuses what the other
  // freed), and after the first large block is freed the mmap threshold rises to its size, so
  // later large blocks come from the heap and stay resident. One arena and a fixed threshold
  // hand large blocks back to the kernel as soon as they are freed (docs/BENCHMARKS.md).
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  CLI::App app{
      "originguard-agent: keeps Cloudflare's IP ranges fresh and enforces them in the kernel.\n"
      "Logs go to stderr (journald under systemd). See docs/CONFIG.md for every key."};
  std::string config_path(og::kDefaultConfigPath);
  bool check_only = false, foreground = false, verbose = false;
  app.add_option("-c,--config", config_path, "TOML config file")->capture_default_str();
  app.add_flag("--check-config", check_only, "validate the config (file, line and key on error) and exit");
  app.add_flag("-f,--foreground", foreground, "stay in the foreground (use this under systemd)");
  app.add_flag("-v,--verbose", verbose, "debug logging");
  app.set_version_flag("-V,--version", std::string("originguard-agent ") + OG_VERSION);
  CLI11_PARSE(app, argc, argv);

  if (verbose) og::log::set_min_level(og::log::Level::debug);
  // The default path may be absent (built-in defaults); an explicitly named file must exist.
  const bool missing_ok = config_path == og::kDefaultConfigPath;
  // Read once: a reload is checked against the session the agent was started from.
  const auto ssh_port = og::ssh_session_port();
  auto cfg = og::load_agent_config(config_path, missing_ok, ssh_port, &og::aop::read_agent_aop);
  if (!cfg) {
    std::cerr << "originguard-agent: config refused: " << cfg.error().message << "\n";
    return 1;
  }
  // Refused now rather than after the rules are applied, when the socket is bound.
  if (auto st = og::check_control_config(cfg->control); !st) {
    std::cerr << "originguard-agent: config refused: "
              << (cfg->path.empty() ? "(built-in defaults)" : cfg->path.string())
              << ": [control]: " << st.error().message << "\n";
    return 1;
  }
  if (auto st = og::check_realip_config(cfg->realip); !st) {
    std::cerr << "originguard-agent: config refused: "
              << (cfg->path.empty() ? "(built-in defaults)" : cfg->path.string()) << ": " << st.error().message << "\n";
    return 1;
  }
  if (check_only) {
    std::cout << "config OK: " << (cfg->path.empty() ? "(built-in defaults)" : cfg->path.string()) << "\n";
    return 0;
  }
  if (geteuid() != 0) og::log::warn("agent.not_root", {{"hint", "enforcers need root (CAP_NET_ADMIN, CAP_BPF)"}});
  if (!foreground && daemonize() != 0) {
    std::perror("originguard-agent: daemonize");
    return 1;
  }
  // No curl_global_init: transfers run in originguard-fetch, the unprivileged helper, so the
  // agent neither links curl nor initialises a TLS library at idle (docs/SECURITY.md).
  og::Agent agent({config_path, missing_ok, ssh_port}, std::move(*cfg), og::production_agent_deps());
  return agent.run();
} catch (const std::exception& e) {
  og::log::error("agent.fatal", {{"error", e.what()}});
  return 70;
}
