// The agent's Prometheus text exposition (`agentctl metrics`, [metrics] listen): families
// grouped, each with HELP and TYPE, names and units after the Prometheus conventions; checked
// by `promtool check metrics` (tests/packaging/metrics_test.sh).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace og {

// What the agent counts about one enforcer, whatever the enforcer (EnforcerSet).
struct EnforcerCounters {
  std::string name;
  std::uint64_t applies_ok = 0;
  std::uint64_t applies_failed = 0;
  std::uint64_t drift_repairs = 0;
  std::optional<double> last_apply_seconds;  // the last apply, successful or not
};

struct AgentCounters {
  std::uint64_t reloads_ok = 0;
  std::uint64_t reloads_refused = 0;  // the previous config stayed in force
  std::vector<EnforcerCounters> enforcers;
};

struct AgentSnapshot;
[[nodiscard]] std::string build_metrics(const AgentSnapshot& s);

// A label value in the text format: backslash, double quote and newline escaped.
[[nodiscard]] std::string prometheus_label(std::string_view v);

}  // namespace og
