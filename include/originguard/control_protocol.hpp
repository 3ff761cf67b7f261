// agentctl <-> agent protocol: one JSON object per line over a unix stream socket.
//   request:  {"cmd":"status"} | {"cmd":"refresh","force":true} | {"cmd":"reload"} | ...
//   response: {"ok":true, ...payload} | {"ok":false,"error":"why"}
// The server answers one request per connection and closes.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "originguard/result.hpp"

namespace og {

inline constexpr std::size_t kMaxControlLine = std::size_t{64} * 1024;

// Default socket paths (agent: [control] socket; gatekeeper: [gatekeeper] control_socket).
inline constexpr std::string_view kDefaultAgentSocket = "/run/originguard/agent.sock";
inline constexpr std::string_view kDefaultGatekeeperSocket = "/run/originguard/gatekeeper.sock";

// Who sent a request, from SO_PEERCRED (filled in by the server, never read off the wire).
struct ControlPeer {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int32_t pid = 0;
};

struct ControlRequest {
  std::string cmd;  // status | refresh | reload | version | metrics (enforcers add more)
  bool force = false;
  std::string params;  // raw JSON of extra fields, for commands that take arguments
  ControlPeer peer;
};

// Strict: an object with a string "cmd" of [a-z-]{1,32}; "force" optional bool.
[[nodiscard]] Result<ControlRequest> parse_control_request(std::string_view line);
[[nodiscard]] std::string encode_control_request(const ControlRequest& r);

}  // namespace og
