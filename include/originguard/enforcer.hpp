// The seam between the agent and a kernel enforcement layer (nftables, XDP, ...).
// Adding an enforcer touches nothing else: implement this, register it in Agent.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "originguard/config.hpp"
#include "originguard/range_set.hpp"
#include "originguard/result.hpp"

namespace og {

// Everything an enforcer needs to program the kernel; built by the agent on every change.
struct DesiredState {
  RangeSet edge;                     // validated ranges + extra_allow
  RangeSet mgmt;                     // [protect] mgmt_allow
  std::vector<std::uint16_t> ports;  // [protect] ports
  ProtectMode mode = ProtectMode::enforce;
};

class Enforcer {
 public:
  virtual ~Enforcer() = default;
  [[nodiscard]] virtual std::string name() const = 0;  // key in status.enforcers
  // Programs the kernel atomically to `desired`. Must not leave a partial state.
  virtual Status apply(const DesiredState& desired) = 0;
  // Compares the kernel with the last applied state; repairs drift. Returns true when it
  // found (and repaired) drift.
  virtual Result<bool> verify() = 0;
  // JSON object shown under status.enforcers.<name>.
  [[nodiscard]] virtual nlohmann::json status() const = 0;
  // Enforcer-specific control commands (e.g. "uninstall"). Return nullopt when `cmd` is not
  // one of this enforcer's; otherwise the JSON reply ({"ok":true,...} or {"ok":false,"error":..}).
  virtual std::optional<nlohmann::json> control(std::string_view /*cmd*/, const nlohmann::json& /*params*/) {
    return std::nullopt;
  }
};

}  // namespace og
