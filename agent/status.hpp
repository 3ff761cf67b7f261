// The agent's observable state and its two renderings: `status` JSON and Prometheus text
// (metrics.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "metrics.hpp"
#include "originguard/config.hpp"
#include "ranges/clock.hpp"
#include "ranges/store.hpp"

namespace og {

// One line of `agentctl status`. `id` is stable ("refresh.failed", "nftables.uninstalled",
// ...; docs/SECURITY.md lists them) so monitoring keys on it, not on the text.
struct Warning {
  std::string id;
  std::string text;
  bool needs_action = true;  // true -> status is degraded (exit code 1)
};

struct RefreshState {
  ranges::StoredRanges current;                // edge ranges in force (without extra_allow)
  std::optional<ranges::WallTime> checked_at;  // last 200-that-validated or 304
  // current.fetched_at on the steady clock: the age status judges by. The wall clock can jump
  // (an NTP step, an operator's `date -s`), and a jump must neither make fresh ranges look
  // stale nor stale ones fresh. A set loaded from the state file is placed by its wall age at
  // load; unset (no fetch time): status falls back to the wall clock.
  std::optional<ranges::Clock::time_point> fetched_steady;
  std::optional<std::string> last_error;  // cleared by the next success
  std::optional<ranges::WallTime> last_error_at;
  int consecutive_failures = 0;
  bool refreshing = false;
  std::vector<std::string> notes;  // non-fatal findings of the last refresh
  std::uint64_t updated = 0, not_modified = 0, failed = 0;
};

struct AgentSnapshot {
  const AgentConfig* config = nullptr;
  const RefreshState* refresh = nullptr;
  const RangeSet* effective = nullptr;  // fetched + extra_allow, if the caller holds it merged
  ranges::WallTime now;
  ranges::WallTime started_at;
  // The steady clock now and at the start (uptime); ages come from it where it is known.
  ranges::Clock::time_point steady_now{};
  std::optional<ranges::Clock::time_point> steady_started;
  std::chrono::milliseconds next_refresh{0};  // 0 while a refresh runs
  nlohmann::json enforcers = nlohmann::json::object();
  std::vector<Warning> warnings;                 // from the agent (reload failures, state file, enforcers)
  AgentCounters counters;                        // reloads, and per enforcer applies and repairs (metrics)
  nlohmann::json aop = nlohmann::json::array();  // per [[aop.zone]] (aop::Manager::status)
  std::string aop_metrics;                       // its Prometheus families
};

// Full warning list: the agent's own plus those derived from refresh state (failed, stale).
[[nodiscard]] std::vector<Warning> collect_warnings(const AgentSnapshot& s);
[[nodiscard]] nlohmann::json build_status(const AgentSnapshot& s);
[[nodiscard]] std::string rfc3339(ranges::WallTime t);

}  // namespace og
