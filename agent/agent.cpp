#include "agent.hpp"

#include <systemd/sd-daemon.h>

#include <boost/asio/post.hpp>

#include "originguard/atomic_file.hpp"
#include "originguard/log.hpp"
#ifdef OG_HAVE_NFT
#include "nft/nft_enforcer.hpp"
#endif

namespace og {

namespace asio = boost::asio;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

Agent::Agent(AgentOptions opts, AgentConfig cfg)
    : opts_(std::move(opts)),
      cfg_(std::move(cfg)),
      signals_(io_, SIGTERM, SIGINT, SIGHUP),
      refresh_timer_(io_),
      watchdog_timer_(io_),
      verify_timer_(io_),
      scheduler_(ranges::ScheduleConfig::from(cfg_.ranges), clock_) {}

Agent::~Agent() {
  stopping_ = true;
  worker_.join();
}

DesiredState Agent::desired() const {
  DesiredState d;
  d.edge = state_.current.ranges.merged(cfg_.ranges.extra_allow);
  d.mgmt = cfg_.protect.mgmt_allow;
  d.ports = cfg_.protect.ports;
  d.mode = cfg_.protect.mode;
  return d;
}

void Agent::load_initial_ranges() {
  ranges::RangeStore store(cfg_.ranges.state_dir);
  auto loaded = store.load();
  if (!loaded) {
    warnings_.push_back(
        {"last-known-good file unusable (" + loaded.error().message + "); using the embedded snapshot"});
    log::error("store.load_failed", {{"error", loaded.error().message}});
  } else if (*loaded) {
    state_.current = std::move(**loaded);
    log::info("store.loaded", {{"file", store.file().string()},
                               {"ipv4", state_.current.ranges.v4().size()},
                               {"ipv6", state_.current.ranges.v6().size()},
                               {"source", state_.current.source}});
    return;
  }
  auto boot = ranges::bootstrap_ranges();
  if (!boot) throw std::logic_error("embedded snapshot does not parse: " + boot.error().message);
  state_.current = std::move(*boot);
  log::info("store.bootstrap",
            {{"ipv4", state_.current.ranges.v4().size()}, {"ipv6", state_.current.ranges.v6().size()}});
}

void Agent::rebuild_enforcers() {
  enforcers_.clear();
#ifdef OG_HAVE_NFT
  if (cfg_.nftables.enabled) enforcers_.push_back(make_nft_enforcer(cfg_));
#endif
}

void Agent::apply_enforcers(const char* why) {
  const auto d = desired();
  for (auto& e : enforcers_) {
    auto t0 = std::chrono::steady_clock::now();
    auto st = e->apply(d);
    auto ms = duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0).count();
    std::erase_if(warnings_, [&](const Warning& w) { return w.text.starts_with(e->name() + ": apply failed"); });
    if (!st) {
      warnings_.push_back({e->name() + ": apply failed: " + st.error().message});
      log::error("enforcer.apply_failed", {{"enforcer", e->name()}, {"why", why}, {"error", st.error().message}});
    } else {
      log::info("enforcer.applied", {{"enforcer", e->name()}, {"why", why}, {"prefixes", d.edge.size()}, {"ms", ms}});
    }
  }
}

void Agent::verify_enforcers() {
  for (auto& e : enforcers_) {
    auto r = e->verify();
    if (!r) {
      log::error("enforcer.verify_failed", {{"enforcer", e->name()}, {"error", r.error().message}});
    } else if (*r) {
      log::warn("enforcer.drift_repaired", {{"enforcer", e->name()}});
    }
  }
}

void Agent::arm_verify_timer() {
  verify_timer_.expires_after(cfg_.protect.verify_interval);
  verify_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    verify_enforcers();
    arm_verify_timer();
  });
}

void Agent::export_ranges() {
  const auto& path = cfg_.ranges.export_file;
  if (path.empty()) return;
  const auto eff = state_.current.ranges.merged(cfg_.ranges.extra_allow);
  nlohmann::json j{{"version", 1},
                   {"generated_at", rfc3339(clock_.wall())},
                   {"source", state_.current.source},
                   {"ipv4", eff.strings(Family::v4)},
                   {"ipv6", eff.strings(Family::v6)}};
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  std::erase_if(warnings_, [](const Warning& w) { return w.text.starts_with("range export"); });
  if (auto st = write_file_atomic(path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", 0644);
      !st) {
    warnings_.push_back({"range export failed: " + st.error().message});
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
    ranges::CurlHttpClient http(
        {cfg->connect_timeout, cfg->total_timeout, cfg->max_body_bytes, cfg->ca_file, &stopping_});
    ranges::Refresher refresher(http, *cfg);
    auto outcome = refresher.run(in, std::chrono::system_clock::now());
    asio::post(io_, [this, outcome = std::move(outcome)]() mutable { finish_refresh(std::move(outcome)); });
  });
}

void Agent::finish_refresh(ranges::RefreshOutcome outcome) {
  using Kind = ranges::RefreshOutcome::Kind;
  state_.refreshing = false;
  const auto now = clock_.wall();
  ranges::RangeStore store(cfg_.ranges.state_dir);
  nlohmann::json reply{{"ok", outcome.kind != Kind::failed}};

  std::erase_if(warnings_, [](const Warning& w) { return w.text.starts_with("could not persist"); });
  auto persist = [&] {
    if (auto st = store.save(state_.current); !st) {
      warnings_.push_back({"could not persist last-known-good ranges: " + st.error().message});
      log::error("store.save_failed", {{"error", st.error().message}});
    }
  };

  if (outcome.kind == Kind::failed) {
    state_.last_error = outcome.error;
    state_.last_error_at = now;
    ++state_.failed;
    scheduler_.on_failure();
    state_.consecutive_failures = scheduler_.consecutive_failures();
    log::warn("refresh.failed", {{"error", outcome.error},
                                 {"failures", state_.consecutive_failures},
                                 {"retry_in_s", duration_cast<seconds>(scheduler_.until_next()).count()}});
    reply["result"] = "failed";
    reply["error"] = outcome.error;
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
      reply["result"] = "updated";
    } else {
      ++state_.not_modified;
      state_.current.fetched_at = now;  // the source confirmed the set is current
      reply["result"] = "not_modified";
    }
    persist();
    log::info("refresh.ok", {{"result", reply["result"].get<std::string>()},
                             {"changed", changed},
                             {"ipv4", state_.current.ranges.v4().size()},
                             {"ipv6", state_.current.ranges.v6().size()},
                             {"source", state_.current.source},
                             {"etag", state_.current.etag}});
    if (changed) {
      export_ranges();
      apply_enforcers("ranges changed");
    }
    reply["changed"] = changed;
  }
  verify_enforcers();
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
  auto next = load_agent_config(opts_.config_path, opts_.config_missing_ok, opts_.ssh_port);
  std::erase_if(warnings_, [](const Warning& w) { return w.text.starts_with("config reload refused"); });
  if (!next) {
    warnings_.push_back({"config reload refused, previous config still in force: " + next.error().message});
    log::error("config.reload_refused", {{"error", next.error().message}});
    if (reply) reply({{"ok", false}, {"error", next.error().message}});
    return;
  }
  AgentConfig old = std::move(cfg_);
  cfg_ = std::move(*next);
  std::erase_if(warnings_, [](const Warning& w) { return w.text.starts_with("[control] changes"); });
  if (cfg_.control.socket != old.control.socket || cfg_.control.group != old.control.group) {
    warnings_.push_back({"[control] changes take effect when the agent restarts", false});
  }
  scheduler_.set_config(ranges::ScheduleConfig::from(cfg_.ranges));
  if (cfg_.nftables.enabled != old.nftables.enabled) rebuild_enforcers();
  export_ranges();
  apply_enforcers("config reloaded");
  verify_enforcers();
  verify_timer_.cancel();
  arm_verify_timer();
  log::info("config.reloaded", {{"file", cfg_.path.string()}});
  bool sources_changed = cfg_.ranges.sources != old.ranges.sources ||
                         cfg_.ranges.include_china_network != old.ranges.include_china_network;
  if (sources_changed) start_refresh(false, {});
  if (reply) reply({{"ok", true}, {"config", cfg_.path.string()}, {"refreshing", sources_changed}});
}

AgentSnapshot Agent::snapshot() const {
  AgentSnapshot s;
  s.config = &cfg_;
  s.refresh = &state_;
  s.now = clock_.wall();
  s.started_at = started_at_;
  s.warnings = warnings_;
  s.next_refresh = state_.refreshing ? milliseconds(0) : scheduler_.until_next();
  for (const auto& e : enforcers_) s.enforcers[e->name()] = e->status();
  return s;
}

nlohmann::json Agent::explain(const nlohmann::json& params) const {
  auto ip = params.find("ip");
  if (ip == params.end() || !ip->is_string()) return {{"ok", false}, {"error", "explain needs an \"ip\""}};
  auto addr = parse_address(ip->get<std::string>());
  if (!addr) return {{"ok", false}, {"error", addr.error().message}};
  std::optional<int> port;
  if (auto p = params.find("port"); p != params.end() && p->is_number_integer()) port = p->get<int>();

  nlohmann::json j{{"ok", true}, {"ip", addr->to_string()}, {"mode", to_string(cfg_.protect.mode)}};
  j["port"] = port ? nlohmann::json(*port) : nlohmann::json(nullptr);
  std::string layer = enforcers_.empty() ? "none (no enforcer enabled: everything passes)" : "";
  for (const auto& e : enforcers_) layer += (layer.empty() ? "" : " + ") + e->name();
  j["layer"] = layer;
  auto decide = [&](const char* verdict, const char* list, const Prefix* m, std::string reason) {
    j["verdict"] = verdict;
    j["list"] = list;
    j["matched"] = m ? nlohmann::json(m->to_string()) : nlohmann::json(nullptr);
    j["reason"] = std::move(reason);
  };
  bool protected_port =
      !port || std::find(cfg_.protect.ports.begin(), cfg_.protect.ports.end(), *port) != cfg_.protect.ports.end();
  if (!protected_port) {
    decide("accept", "none", nullptr, "port " + std::to_string(*port) + " is not protected");
  } else if (const Prefix* m = cfg_.protect.mgmt_allow.match(*addr)) {
    decide("accept", "mgmt_allow", m, "management allow-list [protect] mgmt_allow");
  } else if (const Prefix* e = state_.current.ranges.match(*addr)) {
    decide("accept", "edge", e,
           "Cloudflare edge range from " + state_.current.source +
               " (edge IPs are shared by every Cloudflare customer: the gatekeeper's mTLS "
               "decides whether the request came through your zone)");
  } else if (const Prefix* x = cfg_.ranges.extra_allow.match(*addr)) {
    decide("accept", "extra_allow", x, "static allow-list [ranges] extra_allow");
  } else if (cfg_.protect.mode == ProtectMode::audit) {
    decide("accept", "none", nullptr, "not in any allow-list: audit mode counts and logs it but does not drop");
  } else {
    decide("drop", "none", nullptr, "not Cloudflare, not management, not extra_allow: dropped on protected ports");
  }
  if (enforcers_.empty() && j["verdict"] == "drop") {
    j["verdict"] = "accept";
    j["reason"] = "would be dropped (not Cloudflare, not management), but no enforcer is enabled";
  }
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
    nlohmann::json j{{"ok", true}, {"removed", false}};
    for (auto& e : enforcers_) {
      auto r = e->uninstall();
      if (!r) {
        j = {{"ok", false}, {"error", r.error().message}};
        break;
      }
      j["removed"] = j["removed"].get<bool>() || *r;
    }
    reply(std::move(j));
  } else {
    for (auto& e : enforcers_) {
      if (auto r = e->control(req.cmd, params)) {
        reply(std::move(*r));
        return;
      }
    }
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

int Agent::run() {
  started_at_ = clock_.wall();
  log::info("agent.starting",
            {{"version", OG_VERSION}, {"config", cfg_.path.empty() ? "(built-in defaults)" : cfg_.path.string()}});
  load_initial_ranges();
  export_ranges();
  rebuild_enforcers();
  apply_enforcers("start");

  control_ = std::make_unique<ControlServer>(
      io_, cfg_.control, [this](const ControlRequest& r, ControlServer::Reply rep) { handle(r, std::move(rep)); });
  if (auto st = control_->start(); !st) {
    log::error("control.failed", {{"error", st.error().message}});
    return 1;
  }
  wait_signals();
  std::uint64_t wd_usec = 0;
  if (sd_watchdog_enabled(0, &wd_usec) > 0) arm_watchdog(std::chrono::microseconds(wd_usec / 2));

  // Restarting the agent must not hammer the API: a fresh last-known-good set waits out its
  // interval; a stale or never-fetched one is refreshed now.
  if (state_.current.fetched()) {
    auto age = duration_cast<milliseconds>(clock_.wall() - *state_.current.fetched_at);
    auto interval = duration_cast<milliseconds>(cfg_.ranges.refresh_interval);
    scheduler_.schedule_in(age < interval ? interval - age : milliseconds(0));
  } else {
    scheduler_.schedule_in(milliseconds(0));
  }
  arm_refresh_timer();
  arm_verify_timer();

  sd_notifyf(0, "READY=1\nSTATUS=%zu IPv4 + %zu IPv6 prefixes from %s", state_.current.ranges.v4().size(),
             state_.current.ranges.v6().size(), state_.current.source.c_str());
  log::info("agent.ready", {{"socket", cfg_.control.socket.string()}});
  io_.run();

  stopping_ = true;
  worker_.join();
  control_->stop();
  log::info("agent.stopped", {});
  return 0;
}

}  // namespace og
