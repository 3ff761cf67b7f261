#include "status.hpp"

#include <unistd.h>

#include <ctime>

#include "originguard/duration.hpp"

namespace og {

using std::chrono::duration_cast;
using std::chrono::seconds;

std::string rfc3339(ranges::WallTime t) { return format_utc(t); }

namespace {
// Clocks of fleet machines disagree by seconds; a fetch time further ahead is wrong.
constexpr seconds kClockSkew{300};

// How long ago the ranges in force were fetched or confirmed: on the steady clock when known,
// so that a wall-clock jump changes nothing (only a set loaded from disk is judged by the
// wall clock, once, at its load).
seconds ranges_age(const AgentSnapshot& s) {
  const auto& r = *s.refresh;
  if (r.fetched_steady) return duration_cast<seconds>(s.steady_now - *r.fetched_steady);
  return duration_cast<seconds>(s.now - *r.current.fetched_at);
}
}  // namespace

std::vector<Warning> collect_warnings(const AgentSnapshot& s) {
  std::vector<Warning> w;
  const auto& r = *s.refresh;
  const auto& cfg = *s.config;
  if (r.last_error) {
    w.push_back({"refresh.failed", "last refresh failed (" + std::to_string(r.consecutive_failures) +
                                       " in a row); the ranges in force are kept: " + *r.last_error});
  }
  if (r.current.fetched()) {
    const auto age = ranges_age(s);
    if (age > cfg.ranges.stale_after)
      w.push_back({"ranges.stale", "ranges are stale: fetched " + format_duration(age) + " ago (stale_after " +
                                       format_duration(cfg.ranges.stale_after) + ")"});
    // A fetch time in the future (a clock set back, an edited state file) would hide staleness.
    if (age < -kClockSkew)
      w.push_back({"ranges.fetched_in_future", "ranges claim to be fetched " + format_duration(-age) +
                                                   " in the future (clock changed?): their age cannot be judged"});
  } else {
    w.push_back(
        {"ranges.bootstrap", "running on the embedded bootstrap snapshot: no source has been fetched yet", false});
  }
  if (cfg.protect.mode == ProtectMode::audit)
    w.push_back(
        {"protect.audit", "protect mode is AUDIT: non-Cloudflare traffic is counted and logged, not dropped", false});
  for (const auto& n : r.notes) w.push_back({"refresh.note", n, false});
  w.insert(w.end(), s.warnings.begin(), s.warnings.end());
  // What each enforcer sees wrong in the kernel: {"id", "text"} objects (plain strings too).
  for (auto it = s.enforcers.begin(); it != s.enforcers.end(); ++it) {
    if (!it->is_object()) continue;
    if (auto ws = it->find("warnings"); ws != it->end() && ws->is_array()) {
      for (const auto& x : *ws) {
        if (x.is_string()) {
          w.push_back({it.key() + ".warning", it.key() + ": " + x.get<std::string>()});
        } else if (x.is_object() && x.contains("text") && x["text"].is_string()) {
          const auto id = x.contains("id") && x["id"].is_string() ? x["id"].get<std::string>() : "warning";
          w.push_back({it.key() + "." + id, it.key() + ": " + x["text"].get<std::string>()});
        }
      }
    }
  }
  return w;
}

nlohmann::json build_status(const AgentSnapshot& s) {
  const auto& r = *s.refresh;
  const auto& cfg = *s.config;
  nlohmann::json j;
  j["version"] = OG_VERSION;
  j["agent"] = {
      {"pid", static_cast<long>(getpid())},
      {"started_at", rfc3339(s.started_at)},
      {"uptime_s",
       duration_cast<seconds>(s.steady_started ? s.steady_now - *s.steady_started : s.now - s.started_at).count()},
      {"config", cfg.path.empty() ? std::string("(built-in defaults)") : cfg.path.string()},
      {"mode", to_string(cfg.protect.mode)},
      {"ports", cfg.protect.ports}};

  std::optional<RangeSet> merged;
  if (!s.effective) merged = r.current.ranges.merged(cfg.ranges.extra_allow);
  const RangeSet& effective = s.effective ? *s.effective : *merged;
  nlohmann::json rj;
  rj["ipv4"] = effective.v4().size();
  rj["ipv6"] = effective.v6().size();
  rj["ipv4_cidrs"] = effective.strings(Family::v4);
  rj["ipv6_cidrs"] = effective.strings(Family::v6);
  rj["extra_allow"] = cfg.ranges.extra_allow.size();
  rj["source"] = r.current.source;
  rj["etag"] = r.current.etag.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.current.etag);
  if (r.current.fetched_at) {
    rj["fetched_at"] = rfc3339(*r.current.fetched_at);
    rj["age_s"] = ranges_age(s).count();
  } else {
    rj["fetched_at"] = nullptr;
    rj["age_s"] = nullptr;
  }
  rj["checked_at"] = r.checked_at ? nlohmann::json(rfc3339(*r.checked_at)) : nlohmann::json(nullptr);
  rj["next_refresh_s"] = duration_cast<seconds>(s.next_refresh).count();
  rj["refreshing"] = r.refreshing;
  rj["last_error"] = r.last_error ? nlohmann::json(*r.last_error) : nlohmann::json(nullptr);
  rj["last_error_at"] = r.last_error_at ? nlohmann::json(rfc3339(*r.last_error_at)) : nlohmann::json(nullptr);
  rj["consecutive_failures"] = r.consecutive_failures;
  rj["refresh_interval_s"] = cfg.ranges.refresh_interval.count();
  j["ranges"] = std::move(rj);
  j["enforcers"] = s.enforcers;
  j["aop"] = s.aop;
  // An enforcer's "metrics" text belongs to `agentctl metrics`, not to status.
  for (auto it = j["enforcers"].begin(); it != j["enforcers"].end(); ++it)
    if (it->is_object()) it->erase("metrics");

  auto warnings = collect_warnings(s);
  j["warnings"] = nlohmann::json::array();
  j["warning_details"] = nlohmann::json::array();
  bool degraded = false;
  for (const auto& w : warnings) {
    j["warnings"].push_back(w.text);
    j["warning_details"].push_back({{"id", w.id}, {"text", w.text}, {"needs_action", w.needs_action}});
    degraded |= w.needs_action;
  }
  j["health"] = degraded ? "degraded" : "healthy";
  return j;
}

}  // namespace og
