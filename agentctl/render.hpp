// Human renderings of agent replies.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace og::ctl {

[[nodiscard]] std::string render_status(const nlohmann::json& status, bool color);
// The gatekeeper section of `agentctl status` (gatekeeper_status(), with "health" set).
[[nodiscard]] std::string render_gatekeeper(const nlohmann::json& gk, bool color);
// `agentctl aop status`, and the AOP part of `agentctl status`: the status "aop" zones.
[[nodiscard]] std::string render_aop(const nlohmann::json& zones, bool color);
[[nodiscard]] std::string render_explain(const nlohmann::json& reply, bool color);

}  // namespace og::ctl
