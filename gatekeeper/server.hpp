// Process-level wiring: one io_context + thread per worker, each with its own SO_REUSEPORT
// listeners (the kernel spreads connections), a control loop on the main thread for
// signals (SIGHUP reload, SIGTERM drain), the edge-range snapshot and file watching.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "originguard/result.hpp"
#include "tls_policy.hpp"

namespace og::gk {

// Operator-facing warnings for a built generation (global CA without pins, expiring certs).
[[nodiscard]] std::vector<std::string> policy_warnings(const PolicySet& set);

struct Shared;
// Prometheus text exposition of the current generation's per-host counters (reset on reload).
[[nodiscard]] std::string metrics_text(const Shared& shared);

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
