// agentctl's side of the control protocol (blocking, with a deadline).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "originguard/control_protocol.hpp"

namespace og::ctl {

// Errors here mean "agent unreachable" (exit code 2): no socket, refused, timeout, garbage.
[[nodiscard]] Result<nlohmann::json> call(const std::string& socket_path, const ControlRequest& req,
                                          std::chrono::seconds timeout);

}  // namespace og::ctl
