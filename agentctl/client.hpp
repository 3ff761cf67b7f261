// agentctl's side of the control protocol (blocking, with a deadline), for the agent's and
// the gatekeeper's sockets alike.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "originguard/control_protocol.hpp"

namespace og::ctl {

// Errors here mean "unreachable" (exit code 2): no socket, refused, timeout, garbage. `peer`
// names the daemon in messages ("agent", "gatekeeper").
// A request with just a command name ("status", "reload", ...).
[[nodiscard]] inline ControlRequest request(std::string cmd) {
  ControlRequest r;
  r.cmd = std::move(cmd);
  return r;
}

[[nodiscard]] Result<nlohmann::json> call(const std::string& socket_path, const ControlRequest& req,
                                          std::chrono::seconds timeout, std::string_view peer = "agent");

}  // namespace og::ctl
