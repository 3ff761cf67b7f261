#include "agent.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <boost/asio/post.hpp>

#include <cstring>

#include "fetch/subprocess.hpp"
#include "originguard/atomic_file.hpp"
#include "originguard/log.hpp"
#include "originguard/range_snapshot.hpp"
#include "ranges/system_clock.hpp"
#ifdef OG_HAVE_NFT
#include "nft/nft_enforcer.hpp"
#endif
#ifdef OG_HAVE_XDP
#include "xdp/xdp_enforcer.hpp"
#endif

namespace og {

namespace asio = boost::asio;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

#ifdef OG_HAVE_XDP
XdpEnforcerOptions xdp_options(const AgentConfig& cfg) {
  return {cfg.xdp.interfaces, cfg.xdp.mode, ssh_session_port()};
}
#endif

// Failures of layers that cannot run on this machine at all (XDP without kernel support):
// status is degraded for them, but they are no reason to refuse a config or report a refresh
// as failed. Moves them out of `errors`.
std::vector<EnforcerSet::ApplyError> take_unavailable(std::vector<EnforcerSet::ApplyError>& errors) {
  std::vector<EnforcerSet::ApplyError> out;
  for (auto& e : errors)
    if (e.unavailable) out.push_back(e);
  std::erase_if(errors, [](const auto& e) { return e.unavailable; });
  return out;
}

// In packet order: XDP (at the driver) first, then nftables. `with_xdp` false: the caller
// brings the XDP enforcer it already has (EnforcerSet::transfer).
std::vector<std::unique_ptr<Enforcer>> make_enforcers(const AgentConfig& cfg, bool with_xdp) {
  std::vector<std::unique_ptr<Enforcer>> out;
#ifdef OG_HAVE_XDP
  if (cfg.xdp.enabled && with_xdp) out.push_back(make_xdp_enforcer({xdp_options(cfg), cfg.xdp.pin_dir}));
#else
  (void)with_xdp;
#endif
#ifdef OG_HAVE_NFT
  if (cfg.nftables.enabled) out.push_back(make_nft_enforcer(cfg));
#endif
  return out;
}

// A failed apply is retried from 1 s, doubling, never less often than the verify cycle.
ApplyRetry apply_retry(const AgentConfig& cfg) {
  return {seconds(1), std::clamp<milliseconds>(cfg.protect.verify_interval, seconds(1), seconds(30))};
}

std::string join(const std::vector<EnforcerSet::ApplyError>& errors) {
  std::string out;
  for (const auto& e : errors) out += (out.empty() ? "" : "; ") + e.enforcer + ": " + e.error;
  return out;
}

nlohmann::json to_json(const Explanation& e) {
  return {{"verdict", e.verdict},
          {"list", e.list},
          {"matched", e.matched.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.matched)},
          {"reason", e.reason}};
}

}  // namespace

AgentDeps production_agent_deps() {
  static const ranges::SystemClock clock;
  return {[](const ranges::HttpOptions& o) { return std::make_unique<fetch::SubprocessHttpClient>(o); }, clock,
          make_enforcers};
}

// Reading is for [control] group; everything else changes state (refresh, even unforced:
// it fetches, writes the state file and may replace the ranges in force; aop-issue, -rotate
// and -revoke act at Cloudflare) and needs admin.
ControlAccess command_access(std::string_view cmd) {
  for (std::string_view ro : {"status", "metrics", "explain", "version", "aop-status"})
    if (cmd == ro) return ControlAccess::group;
  return ControlAccess::admin;
}

Agent::Agent(AgentOptions opts, AgentConfig cfg, AgentDeps deps)
    : opts_(std::move(opts)),
      cfg_(std::move(cfg)),
      signals_(io_, SIGTERM, SIGINT, SIGHUP),
      refresh_timer_(io_),
      watchdog_timer_(io_),
      verify_timer_(io_),
      retry_timer_(io_),
      deps_(std::move(deps)),
      clock_(deps_.clock),
      scheduler_(ranges::ScheduleConfig::from(cfg_.ranges), clock_),
      enforcers_(clock_, apply_retry(cfg_)) {}

Agent::~Agent() {
  stopping_ = true;
  worker_.join();
}

const RangeSet& Agent::effective() const {
  if (!effective_) effective_ = state_.current.ranges.merged(cfg_.ranges.extra_allow);
  return *effective_;
}

DesiredState Agent::desired() const {
  DesiredState d;
  d.edge = effective();
  d.mgmt = cfg_.protect.mgmt_allow;
  d.ports = cfg_.protect.ports;
  d.mode = cfg_.protect.mode;
  return d;
}

void Agent::load_initial_ranges() {
  ranges::RangeStore store(cfg_.ranges.state_dir);
  auto loaded = store.load();
  if (!loaded) {
    set_warning({"store.load_failed",
                 "last-known-good file unusable (" + loaded.error().message + "); using the embedded snapshot"});
    log::error("store.load_failed", {{"error", loaded.error().message}});
  } else if (*loaded) {
    state_.current = std::move(**loaded);
    effective_.reset();
    // Its age by the wall clock, once, now; from here on the steady clock counts.
    if (state_.current.fetched_at) state_.fetched_steady = clock_.now() - (clock_.wall() - *state_.current.fetched_at);
    log::info("store.loaded", {{"file", store.file().string()},
                               {"ipv4", state_.current.ranges.v4().size()},
                               {"ipv6", state_.current.ranges.v6().size()},
                               {"source", state_.current.source}});
    return;
  }
  auto boot = ranges::bootstrap_ranges();
  if (!boot) throw std::logic_error("embedded snapshot does not parse: " + boot.error().message);
  state_.current = std::move(*boot);
  effective_.reset();
  state_.fetched_steady.reset();
  log::info("store.bootstrap",
            {{"ipv4", state_.current.ranges.v4().size()}, {"ipv6", state_.current.ranges.v6().size()}});
}

void Agent::persist_ranges() {
  clear_warning("store.save_failed");
  if (auto st = ranges::RangeStore(cfg_.ranges.state_dir).save(state_.current); !st) {
    set_warning({"store.save_failed", "could not persist last-known-good ranges: " + st.error().message});
    log::error("store.save_failed", {{"error", st.error().message}});
  }
}

bool Agent::has_warning(std::string_view id) const {
  return std::any_of(warnings_.begin(), warnings_.end(), [&](const Warning& w) { return w.id == id; });
}

void Agent::set_warning(Warning w) {
  clear_warning(w.id);
  warnings_.push_back(std::move(w));
}

void Agent::clear_warning(std::string_view id) {
  std::erase_if(warnings_, [&](const Warning& w) { return w.id == id; });
}

void Agent::watch_enforcer_events() {
  enforcer_events_.clear();
  for (const auto& src : enforcers_.event_sources()) {
    // asio owns (and closes) the descriptor it is given: hand it a duplicate.
    const int dup = ::fcntl(src.fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
      log::error("enforcer.events_unavailable", {{"enforcer", src.enforcer->name()}, {"error", std::strerror(errno)}});
      continue;
    }
    enforcer_events_.push_back(std::make_unique<asio::posix::stream_descriptor>(io_, dup));
    arm_enforcer_event(enforcer_events_.back().get(), src.enforcer);
  }
}

void Agent::arm_enforcer_event(asio::posix::stream_descriptor* sd, Enforcer* e) {
  // Cancelled (ec set) when the descriptors are cleared, before `sd` and `e` go away.
  sd->async_wait(asio::posix::stream_descriptor::wait_read, [this, sd, e](boost::system::error_code ec) {
    if (ec) return;
    e->on_event();
    arm_enforcer_event(sd, e);
  });
}

std::vector<EnforcerSet::ApplyError> Agent::apply_enforcers(const char* why, bool resume) {
  auto errors = enforcers_.apply(desired(), why, resume);
  arm_retry_timer();
  return errors;
}

// Until an apply succeeds it is retried with backoff (the first one included: nothing else
// would ever put the rules in); status is degraded meanwhile.
void Agent::arm_retry_timer() {
  retry_timer_.cancel();
  const auto next = enforcers_.next_retry();
  if (!next) return;
  retry_timer_.expires_at(*next);
  retry_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    enforcers_.retry_due();
    arm_retry_timer();
  });
}

void Agent::arm_verify_timer() {
  verify_timer_.expires_after(cfg_.protect.verify_interval);
  verify_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    enforcers_.verify();
    realip_.sync(cfg_.realip, state_.current.ranges);      // retries, and puts edited files back
    (void)metrics_server_.configure(cfg_.metrics.listen);  // retries an address that failed
    // The files are retried here, not only at the next range change, which may be an hour
    // away: a stale last-known-good would be what a restarted agent enforces, and the
    // gatekeeper would trust a stale (or no) snapshot meanwhile.
    if (has_warning("store.save_failed")) persist_ranges();
    if (has_warning("export.failed")) {
      export_ranges();
    } else if (std::error_code fec;
               !cfg_.ranges.export_file.empty() && !std::filesystem::exists(cfg_.ranges.export_file, fec) && !fec) {
      // Deleted behind the agent's back (its directory removed, a tmpfiles clean-up).
      log::warn("export.missing", {{"file", cfg_.ranges.export_file.string()}});
      export_ranges();
    }
    arm_verify_timer();
  });
}

void Agent::export_ranges() {
  const auto& path = cfg_.ranges.export_file;
  if (path.empty()) return;
  RangeSnapshot snap;
  snap.ranges = effective();
  snap.source = state_.current.source;
  snap.generated_at = rfc3339(clock_.wall());
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  clear_warning("export.failed");
  if (auto st = write_range_snapshot(path, snap, 0644); !st) {
    set_warning({"export.failed", "range export failed: " + st.error().message});
    log::error("export.failed", {{"file", path.string()}, {"error", st.error().message}});
  }
}

void Agent::arm_refresh_timer() {
  refresh_timer_.expires_at(scheduler_.next_due());
  refresh_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) start_refresh(false, {});
  });
}

void Agent::start_refresh(bool force, ControlServer::Reply waiter) {
  if (waiter) refresh_waiters_.push_back(std::move(waiter));
  if (state_.refreshing) {
    pending_force_ |= force;  // run again, forced, once the current attempt is done
    return;
  }
  state_.refreshing = true;
  refresh_timer_.cancel();
  ranges::RefreshInput in;
  if (state_.current.fetched()) in.last_good = state_.current.ranges;
  in.current_source = state_.current.source;
  in.etags = state_.current.etags;
  in.force = force;
  auto cfg = std::make_shared<const RangesConfig>(cfg_.ranges);
  log::info("refresh.start", {{"force", force}});
  asio::post(worker_, [this, cfg, in = std::move(in)] {
    auto http = deps_.http({cfg->connect_timeout, cfg->total_timeout, cfg->max_body_bytes, cfg->ca_file, &stopping_});
    ranges::Refresher refresher(*http, *cfg);
    auto outcome = refresher.run(in, clock_.wall());
    asio::post(io_, [this, outcome = std::move(outcome)]() mutable { finish_refresh(std::move(outcome)); });
  });
}

void Agent::finish_refresh(ranges::RefreshOutcome outcome) {
  using Kind = ranges::RefreshOutcome::Kind;
  state_.refreshing = false;
  const auto now = clock_.wall();
  nlohmann::json reply{{"ok", outcome.kind != Kind::failed}};

  if (outcome.kind == Kind::failed) {
    state_.last_error = outcome.error.message;
    state_.last_error_at = now;
    ++state_.failed;
    scheduler_.on_failure();
    state_.consecutive_failures = scheduler_.consecutive_failures();
    log::warn("refresh.failed", {{"error", outcome.error.message},
                                 {"failures", state_.consecutive_failures},
                                 {"retry_in_s", duration_cast<seconds>(scheduler_.until_next()).count()}});
    reply["result"] = "failed";
    reply["error"] = outcome.error.message;
  } else {
    state_.last_error.reset();
    state_.last_error_at.reset();
    state_.checked_at = now;
    scheduler_.on_success();
    state_.consecutive_failures = 0;
    state_.notes = outcome.notes;
    bool changed = false;
    if (outcome.kind == Kind::updated) {
      ++state_.updated;
      changed = outcome.result.ranges != state_.current.ranges;
      state_.current = std::move(outcome.result);
      effective_.reset();
      state_.fetched_steady = clock_.now();
      reply["result"] = "updated";
    } else {
      ++state_.not_modified;
      state_.current.fetched_at = now;  // the source confirmed the set is current
      state_.fetched_steady = clock_.now();
      reply["result"] = "not_modified";
    }
    persist_ranges();
    log::info("refresh.ok", {{"result", reply["result"].get<std::string>()},
                             {"changed", changed},
                             {"ipv4", state_.current.ranges.v4().size()},
                             {"ipv6", state_.current.ranges.v6().size()},
                             {"source", state_.current.source},
                             {"etag", state_.current.etag}});
    if (changed) {
      export_ranges();
      realip_.sync(cfg_.realip, state_.current.ranges);
      auto errors = apply_enforcers("ranges changed", false);
      if (auto unavailable = take_unavailable(errors); !unavailable.empty())
        reply["note"] = "not in force where the layer cannot run on this machine: " + join(unavailable);
      if (!errors.empty()) {
        reply["ok"] = false;
        reply["error"] = "ranges updated, but not in force yet (retrying): " + join(errors);
      }
      // The fetch, parse, merge and netlink batches of a large set leave freed heap that glibc
      // keeps resident; hand it back so the agent returns to its idle footprint.
      malloc_trim(0);
    }
    reply["changed"] = changed;
  }
  enforcers_.verify();
  reply["ipv4"] = state_.current.ranges.v4().size();
  reply["ipv6"] = state_.current.ranges.v6().size();
  reply["source"] = state_.current.source;

  if (pending_force_) {
    pending_force_ = false;
    start_refresh(true, {});
    return;  // waiters get the forced attempt's outcome
  }
  arm_refresh_timer();
  auto waiters = std::move(refresh_waiters_);
  refresh_waiters_.clear();
  for (auto& w : waiters) w(reply);
}

void Agent::reload(ControlServer::Reply reply) {
  auto refuse = [&](const std::string& why) {
    ++counters_.reloads_refused;
    set_warning({"config.reload_refused", "config reload refused, previous config still in force: " + why});
    log::error("config.reload_refused", {{"error", why}});
    if (reply) reply({{"ok", false}, {"error", "reload refused, the previous config stays in force: " + why}});
  };
  auto next = load_agent_config(opts_.config_path, opts_.config_missing_ok, opts_.ssh_port, &aop::read_agent_aop);
  if (!next) {
    refuse(next.error().message);
    return;
  }
  // [control] changes wait for a restart; one that the restart would refuse is refused now.
  if (auto st = check_control_config(next->control); !st) {
    refuse(next->path.string() + ": [control]: " + st.error().message);
    return;
  }
  if (auto st = check_realip_config(next->realip); !st) {
    refuse(next->path.string() + ": " + st.error().message);
    return;
  }
  AgentConfig old = std::move(cfg_);
  cfg_ = std::move(*next);
  effective_.reset();
  const bool xdp_was = old.xdp.enabled, xdp_is = cfg_.xdp.enabled;
  std::optional<EnforcerSet> previous;
  if (cfg_.nftables.enabled != old.nftables.enabled || xdp_is != xdp_was) {
    previous.emplace(std::move(enforcers_));
    enforcers_ = EnforcerSet(clock_, apply_retry(cfg_));
    enforcers_.reset(deps_.enforcers(cfg_, !(xdp_was && xdp_is)));
    // The XDP enforcer holds its pin directory's lock: a second one would be locked out.
    if (xdp_was && xdp_is) enforcers_.transfer("xdp", *previous);
  }
  configure_xdp();
  std::vector<EnforcerSet::ApplyError> errors;
  if (xdp_was && !xdp_is) {
    // Disabled: its tables would keep dropping at the driver with nobody refreshing them.
    // Removed before anything else changes: one layer fewer never drops more.
    if (Enforcer* x = previous->find("xdp")) {
      if (auto r = x->uninstall(); !r) errors.push_back({"xdp", "[xdp] enabled = false, but " + r.error().message});
    }
  }
  // A reload also resumes enforcers stopped by `agentctl uninstall`.
  enforcers_.set_retry(apply_retry(cfg_));
  if (errors.empty()) errors = apply_enforcers("config reloaded", true);
  const auto unavailable = take_unavailable(errors);
  if (!errors.empty()) {
    // A config that an enforcer cannot put in force does not become the running one: the
    // previous config stays, and range updates keep being applied under it.
    cfg_ = std::move(old);
    effective_.reset();
    if (previous) {
      if (xdp_was && xdp_is) previous->transfer("xdp", enforcers_);
      // One this reload started: what it attached must not outlive it.
      if (Enforcer* x = !xdp_was && xdp_is ? enforcers_.find("xdp") : nullptr; x && !x->uninstall())
        log::error("xdp.rollback_uninstall_failed", {});
      enforcers_ = std::move(*previous);
    }
    configure_xdp();
    watch_enforcer_events();
    enforcers_.set_retry(apply_retry(cfg_));
    (void)apply_enforcers("config reload rolled back", true);
    refuse(join(errors));
    return;
  }
  if (previous) watch_enforcer_events();  // before `previous` (and what it owns) goes
  if (xdp_was && !xdp_is) clear_warning("xdp.leftovers_not_removed");
  clear_warning("config.reload_refused");
  clear_warning("control.restart_needed");
  if (cfg_.control.socket != old.control.socket || cfg_.control.group != old.control.group ||
      cfg_.control.admin_group != old.control.admin_group) {
    set_warning({"control.restart_needed", "[control] changes take effect when the agent restarts", false});
  }
  scheduler_.set_config(ranges::ScheduleConfig::from(cfg_.ranges));
  export_ranges();
  realip_.sync(cfg_.realip, state_.current.ranges);
  (void)metrics_server_.configure(cfg_.metrics.listen);
  aop_.configure(cfg_.aop.get());
  ++counters_.reloads_ok;
  enforcers_.verify();
  verify_timer_.cancel();
  arm_verify_timer();
  log::info("config.reloaded", {{"file", cfg_.path.string()}});
  bool sources_changed = cfg_.ranges.sources != old.ranges.sources ||
                         cfg_.ranges.include_china_network != old.ranges.include_china_network;
  if (sources_changed) start_refresh(false, {});
  nlohmann::json ok{{"ok", true}, {"config", cfg_.path.string()}, {"refreshing", sources_changed}};
  if (!unavailable.empty())
    ok["note"] = "not in force where the layer cannot run on this machine: " + join(unavailable);
  if (reply) reply(std::move(ok));
}

void Agent::configure_xdp() {
#ifdef OG_HAVE_XDP
  // The running enforcer is reconfigured in place (interfaces, mode); its next apply
  // reconciles. A new pin directory needs a new lock: it waits for a restart.
  if (auto* x = dynamic_cast<XdpEnforcer*>(enforcers_.find("xdp"))) {
    x->set_options(xdp_options(cfg_));
    clear_warning("xdp.restart_needed");
    if (x->pin_dir() != cfg_.xdp.pin_dir)
      set_warning({"xdp.restart_needed",
                   "[xdp] pin_dir changes take effect when the agent restarts (in use: " + x->pin_dir().string() + ")",
                   false});
  }
#endif
}

AgentSnapshot Agent::snapshot() const {
  AgentSnapshot s;
  s.config = &cfg_;
  s.refresh = &state_;
  s.effective = &effective();
  s.now = clock_.wall();
  s.started_at = started_at_;
  s.steady_now = clock_.now();
  s.steady_started = steady_started_;
  s.warnings = warnings_;
  for (auto& w : enforcers_.warnings()) s.warnings.push_back(std::move(w));
  for (auto& w : realip_.warnings()) s.warnings.push_back(std::move(w));
  for (auto& w : metrics_server_.warnings()) s.warnings.push_back(std::move(w));
  for (auto& w : aop_.warnings(s.now)) s.warnings.push_back({std::move(w.id), std::move(w.text), w.needs_action});
  s.aop = aop_.status(s.now);
  s.aop_metrics = aop_.metrics();
  s.counters = counters_;
  s.counters.enforcers = enforcers_.counters();
  s.next_refresh = state_.refreshing ? milliseconds(0) : scheduler_.until_next();
  s.enforcers = enforcers_.status();
  return s;
}

Explanation Agent::configured_verdict(const Address& src, std::optional<std::uint16_t> port) const {
  const bool protected_port =
      !port || std::find(cfg_.protect.ports.begin(), cfg_.protect.ports.end(), *port) != cfg_.protect.ports.end();
  if (!protected_port) return {"accept", "none", "", "port " + std::to_string(*port) + " is not protected"};
  if (const Prefix* m = cfg_.protect.mgmt_allow.match(src))
    return {"accept", "mgmt_allow", m->to_string(), "management allow-list [protect] mgmt_allow"};
  if (const Prefix* e = state_.current.ranges.match(src))
    return {"accept", "edge", e->to_string(),
            "Cloudflare edge range from " + state_.current.source +
                " (edge IPs are shared by every Cloudflare customer: the gatekeeper's mTLS decides whether the "
                "request came through your zone)"};
  if (const Prefix* x = cfg_.ranges.extra_allow.match(src))
    return {"accept", "extra_allow", x->to_string(), "static allow-list [ranges] extra_allow"};
  if (cfg_.protect.mode == ProtectMode::audit)
    return {"accept", "none", "", "not in any allow-list: audit mode counts and logs it but does not drop"};
  return {"drop", "none", "", "not Cloudflare, not management, not extra_allow: dropped on protected ports"};
}

nlohmann::json Agent::explain(const nlohmann::json& params) {
  auto ip = params.find("ip");
  if (ip == params.end() || !ip->is_string()) return {{"ok", false}, {"error", "explain needs an \"ip\""}};
  auto addr = parse_address(ip->get<std::string>());
  if (!addr) return {{"ok", false}, {"error", addr.error().message}};
  std::optional<std::uint16_t> port;
  if (auto p = params.find("port"); p != params.end() && !p->is_null()) {
    // Never a narrowing get<int>(): 4294967739 would be explained as port 443.
    const bool in_range = p->is_number_unsigned()  ? p->get<std::uint64_t>() >= 1 && p->get<std::uint64_t>() <= 65535
                          : p->is_number_integer() ? p->get<std::int64_t>() >= 1 && p->get<std::int64_t>() <= 65535
                                                   : false;
    if (!in_range) return {{"ok", false}, {"error", "\"port\" must be an integer 1..65535"}};
    port = static_cast<std::uint16_t>(p->get<std::int64_t>());
  }

  nlohmann::json j{{"ok", true}, {"ip", addr->to_string()}, {"mode", to_string(cfg_.protect.mode)}};
  j["port"] = port ? nlohmann::json(*port) : nlohmann::json(nullptr);
  const Explanation configured = configured_verdict(*addr, port);
  j["configured"] = to_json(configured);
  Explanation in_force;
  if (enforcers_.empty()) {
    in_force = configured;
    j["layer"] = "none (no enforcer enabled: everything passes)";
    if (in_force.verdict == "drop") {
      in_force.verdict = "accept";
      in_force.reason = "would be dropped (not Cloudflare, not management), but no enforcer is enabled";
    }
    j["enforcers"] = nlohmann::json::object();
  } else {
    // What the kernel holds decides, not the config: after a refused reload, an uninstall
    // or a failed apply the two differ, and the operator asks about the packet.
    auto layered = enforcers_.explain(*addr, port);
    in_force = layered.verdict;
    if (in_force.list == "edge" && configured.list == "extra_allow") in_force.list = "extra_allow";
    // The kernel's sets merge adjacent prefixes (104.16.0.0/13 + 104.24.0.0/14 is one range):
    // when it agrees with the configuration, the configured prefix says more; the kernel's
    // range stays alongside.
    if (in_force.verdict == configured.verdict && in_force.list == configured.list && !configured.matched.empty() &&
        !in_force.matched.empty()) {
      j["kernel_range"] = in_force.matched;
      in_force.matched = configured.matched;
    }
    j["layer"] = layered.layer;
    j["enforcers"] = std::move(layered.per_enforcer);
    if (in_force.verdict != configured.verdict) {
      j["detail"] = "the configuration says " + configured.verdict + " (" + configured.reason +
                    "), but that is not what the kernel holds: see agentctl status";
    }
  }
  j["verdict"] = in_force.verdict;
  j["list"] = in_force.list;
  j["matched"] = in_force.matched.empty() ? nlohmann::json(nullptr) : nlohmann::json(in_force.matched);
  j["reason"] = in_force.reason;
  return j;
}

void Agent::handle(const ControlRequest& req, ControlServer::Reply reply) {
  nlohmann::json params = nlohmann::json::parse(req.params, nullptr, false);
  if (req.cmd == "status") {
    auto j = build_status(snapshot());
    j["ok"] = true;
    reply(std::move(j));
  } else if (req.cmd == "metrics") {
    reply({{"ok", true}, {"text", build_metrics(snapshot())}});
  } else if (req.cmd == "refresh") {
    start_refresh(req.force, std::move(reply));
  } else if (req.cmd == "reload") {
    reload(std::move(reply));
  } else if (req.cmd == "version") {
    reply({{"ok", true}, {"version", OG_VERSION}});
  } else if (req.cmd == "explain") {
    reply(explain(params));
  } else if (req.cmd == "uninstall") {
    reply(enforcers_.uninstall("uid " + std::to_string(req.peer.uid) + " pid " + std::to_string(req.peer.pid)));
  } else if (aop_.handle(req.cmd, params, reply)) {
  } else if (auto r = enforcers_.control(req.cmd, params)) {
    reply(std::move(*r));
  } else {
    reply({{"ok", false}, {"error", "unknown command \"" + req.cmd + "\""}});
  }
}

void Agent::wait_signals() {
  signals_.async_wait([this](boost::system::error_code ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      log::info("signal.hup", {});
      reload({});
      wait_signals();
      return;
    }
    log::info("agent.stopping", {{"signal", sig}});
    sd_notify(0, "STOPPING=1");
    stopping_ = true;
    io_.stop();
  });
}

void Agent::arm_watchdog(std::chrono::microseconds period) {
  watchdog_timer_.expires_after(period);
  watchdog_timer_.async_wait([this, period](boost::system::error_code ec) {
    if (ec) return;
    sd_notify(0, "WATCHDOG=1");
    arm_watchdog(period);
  });
}

Status Agent::start() {
  started_at_ = clock_.wall();
  steady_started_ = clock_.now();
  log::info("agent.starting",
            {{"version", OG_VERSION}, {"config", cfg_.path.empty() ? "(built-in defaults)" : cfg_.path.string()}});
  load_initial_ranges();
  export_ranges();
#ifdef OG_HAVE_XDP
  if (!cfg_.xdp.enabled) {
    if (auto st = remove_xdp_leftovers(cfg_.xdp.pin_dir); !st) {
      // Stale tables nobody refreshes would keep dropping at the driver.
      set_warning({"xdp.leftovers_not_removed",
                   "xdp: disabled, but what an earlier run attached could not be removed: " + st.error().message});
      log::error("xdp.leftovers_not_removed", {{"error", st.error().message}});
    }
  }
#endif
  realip_.sync(cfg_.realip, state_.current.ranges);
  enforcers_.reset(deps_.enforcers(cfg_, true));
  watch_enforcer_events();
  (void)apply_enforcers("start", false);

  control_ = std::make_unique<ControlServer>(
      io_, cfg_.control, [this](const ControlRequest& r, ControlServer::Reply rep) { handle(r, std::move(rep)); },
      command_access);
  if (auto st = control_->start(); !st) return st;
  // Not fatal: protection does not depend on it; status says why and it is retried.
  (void)metrics_server_.configure(cfg_.metrics.listen);
  aop_.configure(cfg_.aop.get());
  wait_signals();
  std::uint64_t wd_usec = 0;
  if (sd_watchdog_enabled(0, &wd_usec) > 0) arm_watchdog(std::chrono::microseconds(wd_usec / 2));

  // Restarting the agent must not hammer the API: a fresh last-known-good set waits out its
  // interval; a stale or never-fetched one is refreshed now.
  scheduler_.schedule_in(
      state_.current.fetched()
          ? ranges::first_refresh_delay(*state_.current.fetched_at, clock_.wall(), cfg_.ranges.refresh_interval)
          : milliseconds(0));
  arm_refresh_timer();
  arm_verify_timer();

  sd_notifyf(0, "READY=1\nSTATUS=%zu IPv4 + %zu IPv6 prefixes from %s", state_.current.ranges.v4().size(),
             state_.current.ranges.v6().size(), state_.current.source.c_str());
  log::info("agent.ready", {{"socket", cfg_.control.socket.string()}});
  return {};
}

int Agent::run() {
  if (auto st = start(); !st) {
    log::error("control.failed", {{"error", st.error().message}});
    return 1;
  }
  io_.run();

  stopping_ = true;
  worker_.join();
  control_->stop();
  log::info("agent.stopped", {});
  return 0;
}

}  // namespace og
