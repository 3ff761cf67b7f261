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
  bool operator==(const DesiredState&) const = default;
};

// What one enforcer does with a new connection from a source to a port, judged from the
// state it actually has in the kernel (not from the config): `agentctl explain`.
struct Explanation {
  std::string verdict;  // "accept", "drop", or "unknown" (the kernel holds something else)
  std::string list;     // what decided: "mgmt_allow", "edge" or "none"
  std::string matched;  // the kernel range that matched, as a prefix when it is one ("" none)
  std::string reason;   // one sentence, naming the kernel object that decided
};

class Enforcer {
 public:
  virtual ~Enforcer() = default;
  [[nodiscard]] virtual std::string name() const = 0;  // key in status.enforcers
  // Programs the kernel atomically to `desired`. Must not leave a partial state: on error
  // the kernel keeps what it had. The agent retries a failed apply with backoff.
  virtual Status apply(const DesiredState& desired) = 0;
  // Compares the kernel with the last applied state; repairs drift. Returns true when it
  // found (and repaired) drift. Only called once an apply has succeeded.
  virtual Result<bool> verify() = 0;
  // JSON object shown under status.enforcers.<name>. Its "warnings" array lists what the
  // enforcer sees wrong in the kernel right now (state missing, modified by someone else, a
  // port left open by the lock-out guard), each {"id": "<stable id>", "text": "..."}; each
  // one makes status degraded. An enforcer with nothing applied reports none: the agent
  // tracks never-applied, failing and uninstalled enforcers itself. Its "traffic" array, each
  // {"verdict": "drop"|"audit"|..., "packets": n, "bytes": n}, becomes
  // originguard_enforcer_{packets,bytes}_total; a "metrics" string is appended to the
  // metrics text as it is (families of the enforcer's own).
  [[nodiscard]] virtual nlohmann::json status() const = 0;
  // Removes everything this enforcer put in the kernel (`agentctl uninstall`) and forgets
  // the applied state, so verify() repairs nothing until the next apply(). True when there
  // was something to remove.
  virtual Result<bool> uninstall() = 0;
  // The verdict for a new connection from `src` to `port` (nullopt: any protected port),
  // read from the kernel.
  virtual Result<Explanation> explain(const Address& src, std::optional<std::uint16_t> port) = 0;
  // Enforcer-specific control commands. Return nullopt when `cmd` is not one of this
  // enforcer's; otherwise the JSON reply ({"ok":true,...} or {"ok":false,"error":..}). They
  // need the control socket's admin rights (docs/SECURITY.md).
  virtual std::optional<nlohmann::json> control(std::string_view /*cmd*/, const nlohmann::json& /*params*/) {
    return std::nullopt;
  }
  // Called on every enforcer before any of them applies `next`. A layer in front of another
  // (XDP before nftables) must never drop what the ones behind it accept, whatever becomes of
  // their applies: it relaxes itself here to what both its state in force and `next` allow,
  // and it applies `next` itself only once every layer behind holds it (EnforcerSet). A layer
  // that cannot relax must stand aside (drop nothing) and say so in status; an error means
  // it could not even do that.
  virtual Status prepare(const DesiredState& /*next*/) { return {}; }
  // Why this layer cannot run on this machine at all (nullopt: it can, or it does not know).
  // Its failed applies are retried and make status degraded like any other, but they never
  // refuse a reload: no config would change that (XDP: docs/XDP.md "Kernel requirements").
  [[nodiscard]] virtual std::optional<std::string> unavailable() const { return std::nullopt; }
  // A file descriptor the agent watches (-1: none); readable -> on_event() on the agent's
  // loop thread. For kernel notifications, e.g. interfaces appearing.
  [[nodiscard]] virtual int event_fd() const { return -1; }
  virtual void on_event() {}
};

}  // namespace og
