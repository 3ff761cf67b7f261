#include "enforcer_set.hpp"

#include <algorithm>

#include "originguard/duration.hpp"
#include "originguard/log.hpp"

namespace og {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

namespace {

nlohmann::json to_json(const Explanation& e) {
  return {{"verdict", e.verdict},
          {"list", e.list},
          {"matched", e.matched.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.matched)},
          {"reason", e.reason}};
}

std::string in_seconds(milliseconds d) {
  return format_duration(duration_cast<Seconds>(std::max(d, milliseconds(0)) + milliseconds(999)));
}

}  // namespace

EnforcerSet::EnforcerSet(const ranges::Clock& clock, ApplyRetry retry) : clock_(&clock), retry_(retry) {}

void EnforcerSet::reset(std::vector<std::unique_ptr<Enforcer>> enforcers) {
  slots_.clear();
  for (auto& e : enforcers) {
    Slot s;
    s.name = e->name();
    s.enforcer = std::move(e);
    slots_.push_back(std::move(s));
  }
}

void EnforcerSet::try_apply(Slot& s, const DesiredState& d, std::string_view why) {
  const auto t0 = std::chrono::steady_clock::now();
  auto st = s.enforcer->apply(d);
  const auto took = std::chrono::steady_clock::now() - t0;
  const auto ms = duration_cast<milliseconds>(took).count();
  s.counters.last_apply_seconds = std::chrono::duration<double>(took).count();
  ++(st ? s.counters.applies_ok : s.counters.applies_failed);
  if (st) {
    s.pending.reset();
    s.failures = 0;
    s.apply_error.clear();
    s.ever_applied = true;
    log::info("enforcer.applied", {{"enforcer", s.name}, {"why", why}, {"prefixes", d.edge.size()}, {"ms", ms}});
    return;
  }
  // The kernel keeps what it had (apply is atomic); the latest desired state is retried.
  s.pending = d;
  ++s.failures;
  milliseconds delay = retry_.first;
  for (int i = 1; i < s.failures && delay < retry_.max; ++i) delay *= 2;
  delay = std::min(delay, retry_.max);
  s.retry_at = clock_->now() + delay;
  s.apply_error = st.error().message;
  log::error("enforcer.apply_failed", {{"enforcer", s.name},
                                       {"why", why},
                                       {"failures", s.failures},
                                       {"retry_in_ms", delay.count()},
                                       {"error", st.error().message}});
}

const EnforcerSet::Slot* EnforcerSet::blocking(std::size_t i) const {
  // A layer behind that never put anything in force here does not hold the front back: its
  // kernel has no state of this agent to be looser than (and more protection is better).
  for (std::size_t k = i + 1; k < slots_.size(); ++k) {
    const auto& b = slots_[k];
    if (!b.stopped && b.pending && b.ever_applied) return &b;
  }
  return nullptr;
}

std::vector<EnforcerSet::ApplyError> EnforcerSet::apply(const DesiredState& d, std::string_view why, bool resume) {
  for (auto& s : slots_) {
    if (s.stopped && !resume) continue;
    if (auto st = s.enforcer->prepare(d); !st)
      log::error("enforcer.prepare_failed", {{"enforcer", s.name}, {"why", why}, {"error", st.error().message}});
  }
  for (std::size_t i = slots_.size(); i-- > 0;) {
    auto& s = slots_[i];
    if (s.stopped && !resume) continue;  // uninstalled: stays removed until a reload
    s.stopped = false;
    if (const Slot* b = blocking(i)) {
      // It keeps what prepare() left in force (no stricter than `d` or the state behind).
      s.pending = d;
      s.waiting_for = b->name;
      s.retry_at = clock_->now();
      log::info("enforcer.apply_waiting", {{"enforcer", s.name}, {"why", why}, {"waiting_for", b->name}});
      continue;
    }
    s.waiting_for.clear();
    try_apply(s, d, why);
  }
  std::vector<ApplyError> errors;
  for (const auto& s : slots_) {
    if (s.stopped || !s.pending || !s.waiting_for.empty()) continue;
    errors.push_back({s.name, s.apply_error, s.enforcer->unavailable().has_value()});
  }
  return errors;
}

void EnforcerSet::retry_due() {
  const auto now = clock_->now();
  // From the back: a layer in front goes once the one it waits for has succeeded.
  for (std::size_t i = slots_.size(); i-- > 0;) {
    auto& s = slots_[i];
    if (s.stopped || !s.pending || now < s.retry_at) continue;
    if (const Slot* b = blocking(i)) {
      s.waiting_for = b->name;
      continue;
    }
    s.waiting_for.clear();
    const DesiredState d = *s.pending;
    try_apply(s, d, "retry");
  }
}

std::optional<EnforcerSet::TimePoint> EnforcerSet::next_retry() const {
  std::optional<TimePoint> next;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const auto& s = slots_[i];
    // A layer that waits is retried right after the one it waits for (retry_due).
    if (s.stopped || !s.pending || blocking(i)) continue;
    if (!next || s.retry_at < *next) next = s.retry_at;
  }
  return next;
}

void EnforcerSet::verify() {
  for (auto& s : slots_) {
    // A state waiting for its retry still verifies the previous one, which is in the kernel.
    if (s.stopped || !s.ever_applied) continue;
    auto r = s.enforcer->verify();
    if (!r) {
      s.verify_error = r.error().message;
      log::error("enforcer.verify_failed", {{"enforcer", s.name}, {"error", r.error().message}});
    } else {
      s.verify_error.clear();
      if (*r) {
        ++s.counters.drift_repairs;
        log::warn("enforcer.drift_repaired", {{"enforcer", s.name}});
      }
    }
  }
}

nlohmann::json EnforcerSet::uninstall(const std::string& by) {
  nlohmann::json per = nlohmann::json::object();
  bool ok = true, removed = false;
  std::string errors;
  for (auto& s : slots_) {
    auto r = s.enforcer->uninstall();
    if (!r) {
      ok = false;
      errors += (errors.empty() ? "" : "; ") + s.name + ": " + r.error().message;
      per[s.name] = {{"removed", false}, {"error", r.error().message}};
      continue;
    }
    removed |= *r;
    per[s.name] = {{"removed", *r}};
    s.stopped = true;
    s.pending.reset();
    s.failures = 0;
    s.apply_error.clear();
    s.verify_error.clear();
    s.ever_applied = false;
    s.stopped_by = by;
    s.stopped_at = clock_->wall();
    log::warn("enforcer.uninstalled", {{"enforcer", s.name}, {"removed", *r}, {"by", by}});
  }
  nlohmann::json j{{"ok", ok}, {"removed", removed}, {"enforcers", per}};
  if (slots_.empty())
    j["detail"] = "no enforcer is enabled: nothing to remove";
  else
    j["detail"] = "enforcement stopped until `agentctl reload` or an agent restart";
  if (!ok) j["error"] = errors;
  return j;
}

Enforcer* EnforcerSet::find(std::string_view name) {
  for (auto& s : slots_)
    if (s.name == name) return s.enforcer.get();
  return nullptr;
}

bool EnforcerSet::transfer(std::string_view name, EnforcerSet& from) {
  auto it = std::find_if(from.slots_.begin(), from.slots_.end(), [&](const Slot& s) { return s.name == name; });
  if (it == from.slots_.end()) return false;
  slots_.insert(slots_.begin(), std::move(*it));
  from.slots_.erase(it);
  return true;
}

std::vector<EnforcerSet::EventSource> EnforcerSet::event_sources() const {
  std::vector<EventSource> out;
  for (const auto& s : slots_)
    if (const int fd = s.enforcer->event_fd(); fd >= 0) out.push_back({fd, s.enforcer.get()});
  return out;
}

std::optional<nlohmann::json> EnforcerSet::control(std::string_view cmd, const nlohmann::json& params) {
  for (auto& s : slots_)
    if (auto r = s.enforcer->control(cmd, params)) return r;
  return std::nullopt;
}

nlohmann::json EnforcerSet::status() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& s : slots_) {
    auto e = s.enforcer->status();
    if (!e.is_object()) e = nlohmann::json{{"status", e}};
    e["state"] = s.stopped    ? "uninstalled"
                 : !s.pending ? (s.ever_applied ? "enforcing" : "idle")
                              : (s.ever_applied ? "apply_pending" : "not_applied");
    j[s.name] = std::move(e);
  }
  return j;
}

std::vector<EnforcerCounters> EnforcerSet::counters() const {
  std::vector<EnforcerCounters> out;
  for (const auto& s : slots_) {
    out.push_back(s.counters);
    out.back().name = s.name;
  }
  return out;
}

std::vector<Warning> EnforcerSet::warnings() const {
  std::vector<Warning> w;
  const auto now = clock_->now();
  for (const auto& s : slots_) {
    if (s.stopped) {
      w.push_back({s.name + ".uninstalled",
                   s.name + ": removed by agentctl uninstall (" + s.stopped_by + ", " + format_utc(s.stopped_at) +
                       "): nothing is enforced by it until `agentctl reload` or an agent restart"});
      continue;
    }
    if (s.pending && !s.waiting_for.empty()) {
      w.push_back(
          {s.name + ".apply_waiting", s.name + ": the latest state waits until " + s.waiting_for +
                                          " has put it in force; meanwhile it drops nothing that either state allows"});
    } else if (const auto why = s.pending ? s.enforcer->unavailable() : std::nullopt) {
      w.push_back({s.name + ".unavailable", s.name + ": cannot run on this machine (" + *why +
                                                "); the other layers enforce without it, retrying in " +
                                                in_seconds(duration_cast<milliseconds>(s.retry_at - now))});
    } else if (s.pending) {
      const std::string retry = "attempt " + std::to_string(s.failures) + " failed, retrying in " +
                                in_seconds(duration_cast<milliseconds>(s.retry_at - now));
      if (s.ever_applied)
        w.push_back({s.name + ".apply_failed", s.name + ": the latest state is not in force, the kernel keeps the " +
                                                   "previous one (" + retry + "): " + s.apply_error});
      else
        w.push_back({s.name + ".not_applied",
                     s.name + ": nothing is enforced yet, the first apply failed (" + retry + "): " + s.apply_error});
    }
    if (!s.verify_error.empty())
      w.push_back({s.name + ".verify_failed", s.name + ": drift check or repair failed: " + s.verify_error});
  }
  return w;
}

LayeredExplanation EnforcerSet::explain(const Address& src, std::optional<std::uint16_t> port) {
  LayeredExplanation out;
  std::vector<std::pair<std::string, Explanation>> answers;
  for (auto& s : slots_) {
    auto r = s.enforcer->explain(src, port);
    Explanation e = r ? *r : Explanation{"unknown", "none", "", "cannot read the kernel state: " + r.error().message};
    out.per_enforcer[s.name] = to_json(e);
    answers.emplace_back(s.name, std::move(e));
  }
  for (const char* decisive : {"drop", "unknown"}) {
    for (const auto& [name, e] : answers) {
      if (e.verdict != decisive) continue;
      out.verdict = e;
      out.layer = name;
      return out;
    }
  }
  // Every layer accepts: the last one (nftables, the authoritative layer) says why.
  for (const auto& [name, e] : answers) out.layer += (out.layer.empty() ? "" : " + ") + name;
  if (!answers.empty()) out.verdict = answers.back().second;
  return out;
}

}  // namespace og
