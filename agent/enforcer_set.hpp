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
#include "ranges/clock.hpp"
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
    // The layer cannot run on this machine at all (Enforcer::unavailable()): degraded, but
    // no reason to refuse a config.
    bool unavailable = false;
  };
  // Programs `d` into every enforcer. One stopped by uninstall stays stopped unless `resume`.
  // First every enforcer prepares (a layer in front relaxes to what its state and `d` both
  // allow); then they apply from the back (nftables, authoritative) to the front (XDP): a
  // layer in front applies `d` only once every layer behind it that holds an earlier state
  // has put `d` in force, and waits (pending) meanwhile, so it never drops what a layer behind
  // still accepts. A failed apply leaves that kernel as it was; it is retried (retry_due)
  // until an apply of the latest desired state succeeds. Returns the failures (empty: all in
  // force; a layer waiting for one behind it is not listed, the one it waits for is).
  std::vector<ApplyError> apply(const DesiredState& d, std::string_view why, bool resume);
  // Retries the failed applies whose backoff has run out (from the back, as apply()).
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

  // The enforcer called `name` (nullptr: none), e.g. to reconfigure it in place.
  [[nodiscard]] Enforcer* find(std::string_view name);
  // Moves the enforcer called `name`, with everything this set knows about it, from `from`
  // to the front of this set (the packet's first layer). A reload that rebuilds the set keeps
  // an enforcer that holds a kernel lock (XDP's pin directory) this way, and gives it back
  // when it rolls back. False when `from` has none.
  bool transfer(std::string_view name, EnforcerSet& from);

  // Kernel notification descriptors: readable -> enforcer->on_event() on the loop thread.
  struct EventSource {
    int fd;
    Enforcer* enforcer;  // owned by this set: valid until reset() or transfer()
  };
  [[nodiscard]] std::vector<EventSource> event_sources() const;

  // name -> the enforcer's status() plus "state": enforcing, apply_pending, not_applied,
  // uninstalled.
  [[nodiscard]] nlohmann::json status() const;
  // Applies by result, the last apply's duration and drift repairs, per enforcer (metrics).
  [[nodiscard]] std::vector<EnforcerCounters> counters() const;
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
    std::string waiting_for;              // a layer behind that must put `pending` in force first
    int failures = 0;                     // consecutive failed applies
    TimePoint retry_at{};
    std::string apply_error;
    std::string verify_error;
    bool stopped = false;  // agentctl uninstall
    std::string stopped_by;
    std::chrono::system_clock::time_point stopped_at{};
    EnforcerCounters counters;
  };
  void try_apply(Slot& s, const DesiredState& d, std::string_view why);
  // The first layer behind slot `i` that still holds an earlier state than its pending one.
  [[nodiscard]] const Slot* blocking(std::size_t i) const;

  const ranges::Clock* clock_;
  ApplyRetry retry_;
  std::vector<Slot> slots_;
};

}  // namespace og
