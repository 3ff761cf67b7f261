// agentctl's view of originguard-gatekeeper, through its control socket: whether it runs, its
// status, and what in it makes `agentctl status` degraded (exit 1).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace og::ctl {

// --gatekeeper-socket default: $ORIGINGUARD_GATEKEEPER_SOCKET, else the packaged path.
[[nodiscard]] std::string default_gatekeeper_socket();

// The gatekeeper's status reply plus "running": true; {"running": false, "socket": ...} when
// the socket does not exist (not installed or not started); {"running": false, "socket": ...,
// "error": ...} when it exists but does not answer or refuses.
[[nodiscard]] nlohmann::json gatekeeper_status(const std::string& socket);
// The view of a `status` reply that answered `ok` (what gatekeeper_status returns then).
[[nodiscard]] nlohmann::json gatekeeper_view(nlohmann::json reply, const std::string& socket);

// Why the gatekeeper part makes status degraded: reachable socket but no answer, or a host
// certificate expiring within 14 days or expired. Relying on the global origin-pull CA is
// shown but does not degrade (it is a documented, deliberate setting). Empty: healthy.
[[nodiscard]] std::vector<std::string> gatekeeper_problems(const nlohmann::json& gk);

}  // namespace og::ctl
