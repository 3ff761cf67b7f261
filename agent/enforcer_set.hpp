// The agent's enforcers and what it knows about each, generic over the Enforcer interface
// (nothing here knows nftables or XDP): whether the desired state is in force, failed
// applies retried with backoff, enforcement stopped by `agentctl uninstall`, the warnings
// that make status degraded, and `explain` across the layers.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "originguard/enforcer.hpp"
#include "ranges/scheduler.hpp"
#include "status.hpp"

namespace og {

// Delay before retrying a failed apply: `first`, doubling per failure, capped at `max`.
struct ApplyRetry {
  std::chrono::milliseconds first{1000};
  std::chrono::milliseconds max{30000};
};

// The combined verdict of every layer for one connection (agentctl explain).
struct LayeredExplanation {
  Explanation verdict;                                     // what the packet meets, layer by layer
  std::string layer;                                       // who decided: one enforcer, or all that accept
  nlohmann::json per_enforcer = nlohmann::json::object();  // name -> {verdict, list, matched, reason}
};

class EnforcerSet {
 public:
  using TimePoint = ranges::Clock::time_point;

  explicit EnforcerSet(const ranges::Clock& clock, ApplyRetry retry = {});

  // Enforcers in the order a packet meets them (XDP before nftables).
  void reset(std::vector<std::unique_ptr<Enforcer>> enforcers);
  void set_retry(ApplyRetry retry) { retry_ = retry; }
  [[nodiscard]] bool empty() const { return slots_.empty(); }

  struct ApplyError {
    std::string enforcer;
    std::string error;
  };
  // Programs `d` into every enforcer. One stopped by uninstall stays stopped unless `resume`.
  // A failed apply leaves that kernel as it was; it is retried (retry_due) until an apply of
  // the latest desired state succeeds. Returns the failures (empty: all in force).
  std::vector<ApplyError> apply(const DesiredState& d, std::string_view why, bool resume);
  // Retries the failed applies whose backoff has run out.
  void retry_due();
  // When the next retry is due (nullopt: none pending).
  [[nodiscard]] std::optional<TimePoint> next_retry() const;
  // Compares each kernel holding an applied state with it and repairs drift.
  void verify();

  // `agentctl uninstall`: every enforcer removes its kernel state and stays stopped (no apply
  // on range changes, no drift repair) until apply(..., resume=true): a reload or restart.
  // `by` names who asked ("uid 0 pid 123"). The reply for the control socket.
  nlohmann::json uninstall(const std::string& by);
  // Enforcer-specific control commands.
  std::optional<nlohmann::json> control(std::string_view cmd, const nlohmann::json& params);

  // name -> the enforcer's status() plus "state": enforcing, apply_pending, not_applied,
  // uninstalled.
  [[nodiscard]] nlohmann::json status() const;
  // The agent's own knowledge of each enforcer (never applied, apply failing, verify
  // failing, uninstalled), each with a stable id "<enforcer>.<what>".
  [[nodiscard]] std::vector<Warning> warnings() const;
  // Asks every layer for its verdict from the state it has in the kernel. A packet passes
  // the layers in order: the first that drops decides; one that cannot tell makes it
  // unknown; otherwise the last layer's accept (and what it matched) stands.
  [[nodiscard]] LayeredExplanation explain(const Address& src, std::optional<std::uint16_t> port);

 private:
  struct Slot {
    std::unique_ptr<Enforcer> enforcer;
    std::string name;
    bool ever_applied = false;            // the kernel holds a state this agent applied
    std::optional<DesiredState> pending;  // desired state not in force yet: retried
    int failures = 0;                     // consecutive failed applies
    TimePoint retry_at{};
    std::string apply_error;
    std::string verify_error;
    bool stopped = false;  // agentctl uninstall
    std::string stopped_by;
    std::chrono::system_clock::time_point stopped_at{};
  };
  void try_apply(Slot& s, const DesiredState& d, std::string_view why);

  const ranges::Clock* clock_;
  ApplyRetry retry_;
  std::vector<Slot> slots_;
};

}  // namespace og
