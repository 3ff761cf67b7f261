// Process-level wiring: one io_context + thread per worker, each with its own SO_REUSEPORT
// listeners (the kernel spreads connections) or its own acceptor on sockets passed by systemd
// (LISTEN_FDS), and a control loop on the main thread for signals (SIGHUP reload, SIGTERM
// drain), the control socket (agentctl: status, reload, metrics), metrics_listen, the
// edge-range snapshot and file watching. sd_notify READY/RELOADING/STOPPING under systemd.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "originguard/result.hpp"
#include "status.hpp"
#include "tls_policy.hpp"

namespace og::gk {

class Server {
 public:
  static Result<std::unique_ptr<Server>> create(std::filesystem::path config_file);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Serves until SIGTERM/SIGINT; returns the process exit code.
  int run();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace og::gk
