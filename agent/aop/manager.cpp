#include "aop/manager.hpp"

#include <openssl/crypto.h>

#include <boost/asio/post.hpp>
#include <fstream>
#include <iterator>
#include <sstream>

#include "fetch/subprocess.hpp"
#include "originguard/atomic_file.hpp"
#include "originguard/log.hpp"

namespace og::aop {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

namespace {

// A certificate file anyone may read (the global CA: public), size-capped, PEM certificates only.
Result<std::string> read_public_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return fail(p.string() + ": cannot be read");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > std::size_t{64} * 1024) return fail(p.string() + ": larger than 64 KiB");
  if (!identify_pem(text)) return fail(p.string() + ": not a PEM certificate");
  if (text.find("PRIVATE KEY") != std::string::npos) return fail(p.string() + ": holds a private key");
  return text;
}

}  // namespace

struct Manager::Worker {
  AopZoneConfig cfg;
  fs::path export_file;
  fs::path origin_pull_ca;  // [aop] origin_pull_ca ("" = built in)
  ManagerOptions opts;
  Seconds poll_interval{15};  // [aop] poll_interval
  std::unique_ptr<ApiHttp> http;
  std::unique_ptr<CfApi> api;
  std::optional<Rotator> rot;

  // Token, API client, CA (created on first use: the gatekeeper can trust it before anything
  // is issued) and the Rotator from its state file. Retried on every step until it works.
  Status open(TimePoint now) {
    if (rot) return {};
    if (auto ca = LocalCa::open_or_create(cfg.ca_dir, CaOptions{cfg.key_type}, now); !ca)
      return fail(ca.error().context("local CA"));
    auto token = load_api_token(cfg.api_token_file);
    if (!token) return fail(token.error());
    ranges::HttpOptions ho;
    ho.connect_timeout = opts.connect_timeout;
    ho.total_timeout = opts.total_timeout;
    ho.ca_file = cfg.api_ca_file;
    ho.abort = opts.abort;
    // The transfers run in the unprivileged fetch helper (docs/SECURITY.md).
    http = std::make_unique<fetch::SubprocessApiHttp>(ho, fetch::SpawnOptions{opts.fetch_helper});
    api = std::make_unique<CfApi>(*http, cfg.api_base, cfg.zone_id, *token, cfg.hostnames);
    OPENSSL_cleanse(token->data(), token->size());
    RotationOptions ro;
    ro.state_file = cfg.ca_dir / "state.json";
    ro.ca_dir = cfg.ca_dir;
    ro.ca = CaOptions{cfg.key_type};
    ro.key_type = cfg.key_type;
    ro.cert_lifetime = cfg.cert_lifetime;
    ro.renew_before = cfg.renew_before;
    ro.poll_interval = poll_interval;
    ro.retry_min = opts.retry_min;
    ro.retry_max = opts.retry_max;
    ro.ca_renew_before = cfg.ca_renew_before;
    ro.ca_overlap = cfg.ca_overlap;
    auto r = Rotator::open(*api, ro, cfg.zone_id);
    if (!r) {
      api.reset();
      http.reset();
      return fail(r.error());
    }
    rot.emplace(std::move(*r));
    return {};
  }

  // <export_dir>/<zone>.pem: the CA bundle (the CA in force, plus the next one during a CA
  // rollover) followed by one CRL per CA (LocalCa::update_crl), public data only, so 0644. One
  // file, replaced atomically, so a reader never sees CAs without their CRLs; nginx can use it
  // as both ssl_client_certificate and ssl_crl. Rewritten only when it differs. The CRL is
  // re-signed from the Rotator's state (or the state file while the zone cannot be opened);
  // when neither can be read the previous CRL is kept and left to lapse: the gatekeeper then
  // refuses the zone's certificates (closed) rather than trusting a retired one.
  Status export_bundle(TimePoint now, std::optional<TimePoint>& crl_next, std::optional<std::size_t>& in_crl,
                       std::optional<bool>& with_global) const {
    auto ca = LocalCa::load(cfg.ca_dir);
    if (!ca) return fail(ca.error());
    std::optional<RotationState> state;
    std::string crl_error;
    if (rot) {
      state = rot->state();
    } else if (!fs::exists(cfg.ca_dir / "state.json")) {
      state.emplace();  // nothing issued, nothing retired
    } else if (auto text = read_private_file(cfg.ca_dir / "state.json"); !text) {
      crl_error = text.error().message;
    } else if (auto st = decode_state(*text); !st) {
      crl_error = st.error().message;
    } else {
      state = std::move(*st);
    }
    if (state) {
      const auto entries = crl_entries(*state, now);
      if (auto st = ca->update_crl(entries, now); !st)
        crl_error = st.error().message;
      else
        in_crl = entries.size();
    }
    auto crl = ca->crl_pem();
    if (!crl) return fail(crl.error().context("CRL"));
    crl_next = crl_next_update(*crl);
    // The migration: the global origin-pull CA until ca_overlap after the first activation.
    // Unknown state (unreadable): not trusted (closed).
    std::string global;
    if (cfg.migrate_from_global && state && trusts_global_ca(*state, now)) {
      if (origin_pull_ca.empty()) {
        global = std::string(embedded::kOriginPullCaPem);
      } else if (auto text = read_public_file(origin_pull_ca); !text) {
        return fail(text.error().context("[aop] origin_pull_ca"));
      } else {
        global = std::move(*text);
      }
      if (!global.empty() && global.back() != '\n') global += '\n';
    }
    const std::string bundle = ca->cert_pem() + ca->next_cert_pem() + global + *crl;
    with_global = !global.empty();
    std::ifstream in(export_file, std::ios::binary);
    bool same = false;
    if (in) {
      std::ostringstream ss;
      ss << in.rdbuf();
      same = ss.str() == bundle;
    }
    if (!same) {
      std::error_code ec;
      fs::create_directories(export_file.parent_path(), ec);
      if (auto st = write_file_atomic(export_file, bundle, 0644); !st) return st;
    }
    if (!crl_error.empty()) return fail("CRL not re-signed: " + crl_error);
    return {};
  }
};

struct Manager::Zone {
  Zone(asio::io_context& io, AopZoneConfig c) : cfg(std::move(c)), timer(io) {}
  AopZoneConfig cfg;
  std::shared_ptr<Worker> worker;
  asio::steady_timer timer;
  bool busy = false;
  std::vector<std::function<void()>> queued;  // commands that arrived during a step
  std::optional<RotationState> state;         // as of the last step
  std::string setup_error;
  std::string export_error;
  unsigned setup_failures = 0;
  std::optional<TimePoint> next_at;
  std::optional<TimePoint> crl_next_update;  // of the exported CRLs
  std::size_t in_crl = 0;                    // serials the exported CRLs list
  bool exports_global = false;               // the exported bundle holds the global origin-pull CA
  std::uint64_t completed = 0, failed = 0;
};

struct Manager::Outcome {
  std::optional<RotationState> state;
  std::string setup_error;
  std::string export_error;
  std::optional<TimePoint> crl_next_update;
  std::optional<std::size_t> in_crl;
  std::optional<bool> with_global;
  TimePoint at{};  // the worker's clock at the step and the export
  std::optional<StepResult> step;
  json reply;  // commands
};

namespace {

bool unissued(const RotationState& s) { return s.phase == Phase::idle && !s.current && !s.force; }

json opt_string(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }
json time_or_null(TimePoint t) { return t == TimePoint{} ? json(nullptr) : json(format_utc(t)); }

json plan_json(const std::vector<PlannedCall>& plan) {
  json out = json::array();
  for (const auto& c : plan) {
    json j{{"method", c.method}, {"path", c.path}};
    if (!c.body.empty()) j["body"] = c.body;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

Manager::Manager(asio::io_context& io, ManagerOptions opts) : io_(io), opts_(std::move(opts)) {}

Manager::~Manager() {
  for (auto& [id, z] : zones_) z->timer.cancel();
  worker_.join();
}

fs::path Manager::export_file(const std::string& zone_id) const { return cfg_.export_dir / (zone_id + ".pem"); }

milliseconds Manager::jitter(milliseconds base) {
  // Up to a tenth of the wait, at most a minute: agents restarted together spread out.
  const auto span = std::min<milliseconds>(base / 10, std::chrono::minutes(1));
  if (span.count() <= 0) return base;
  return base + milliseconds(std::uniform_int_distribution<std::int64_t>(0, span.count())(rng_));
}

void Manager::configure(const AopConfig* cfg) {
  AopConfig next = cfg ? *cfg : AopConfig{};
  // A zone's worker holds both: a change reopens every zone (from its state file).
  const bool export_moved = next.export_dir != cfg_.export_dir || next.poll_interval != cfg_.poll_interval ||
                            next.origin_pull_ca != cfg_.origin_pull_ca;
  std::map<std::string, std::shared_ptr<Zone>> zones;
  for (const auto& zc : next.zones) {
    auto it = zones_.find(zc.zone_id);
    if (it != zones_.end() && it->second->cfg == zc && !export_moved) {
      zones.emplace(zc.zone_id, it->second);
      continue;
    }
    auto z = std::make_shared<Zone>(io_, zc);
    z->worker = std::make_shared<Worker>();
    z->worker->cfg = zc;
    z->worker->export_file = next.export_dir / (zc.zone_id + ".pem");
    z->worker->origin_pull_ca = next.origin_pull_ca;
    z->worker->opts = opts_;
    z->worker->poll_interval = next.poll_interval;
    zones.emplace(zc.zone_id, z);
  }
  for (auto& [id, z] : zones_) {
    auto it = zones.find(id);
    if (it == zones.end() || it->second != z) {
      // Stopped: a step in flight finishes on the worker (its state is persisted) and its
      // outcome finds the zone gone. The state file stays for a later configuration.
      z->timer.cancel();
      if (it == zones.end()) log::info("aop.zone_removed", {{"zone", id}});
    }
  }
  const bool fresh_start = zones_.empty();
  std::vector<std::shared_ptr<Zone>> started;
  for (auto& [id, z] : zones) {
    auto old = zones_.find(id);
    if (old == zones_.end() || old->second != z) started.push_back(z);
  }
  zones_ = std::move(zones);
  cfg_ = std::move(next);
  for (auto& z : started) {
    log::info("aop.zone_configured", {{"zone", z->cfg.zone_id},
                                      {"level", z->cfg.hostnames.empty() ? "zone" : "hostnames"},
                                      {"api_base", z->cfg.api_base}});
    const auto span = opts_.start_jitter.count();
    schedule(z, milliseconds(span > 0 ? std::uniform_int_distribution<std::int64_t>(0, span)(rng_) : 0));
  }
  (void)fresh_start;
}

void Manager::schedule(const std::shared_ptr<Zone>& z, milliseconds delay) {
  z->timer.expires_after(delay);
  std::weak_ptr<Zone> wz = z;
  z->timer.async_wait([this, wz](boost::system::error_code ec) {
    if (ec) return;
    if (auto zone = wz.lock()) run_step(zone);
  });
}

void Manager::run_step(const std::shared_ptr<Zone>& z) {
  if (z->busy) return;
  z->busy = true;
  z->timer.cancel();
  std::weak_ptr<Zone> wz = z;
  asio::post(worker_, [this, w = z->worker, wz] {
    Outcome out;
    const TimePoint now = std::chrono::system_clock::now();
    out.at = now;
    if (auto st = w->open(now); !st) {
      out.setup_error = st.error().message;
    } else {
      if (!unissued(w->rot->state())) out.step = w->rot->step(now);
      out.state = w->rot->state();
    }
    if (w->rot || fs::exists(w->cfg.ca_dir / "ca.pem"))
      if (auto st = w->export_bundle(now, out.crl_next_update, out.in_crl, out.with_global); !st)
        out.export_error = st.error().message;
    asio::post(io_, [this, wz, out = std::move(out)]() mutable {
      if (auto zone = wz.lock()) on_outcome(zone, std::move(out));
    });
  });
}

void Manager::on_outcome(const std::shared_ptr<Zone>& z, Outcome out) {
  z->busy = false;
  if (auto it = zones_.find(z->cfg.zone_id); it == zones_.end() || it->second != z) return;  // reconfigured
  const TimePoint now = std::chrono::system_clock::now();
  if (out.export_error != z->export_error && !out.export_error.empty())
    log::error("aop.export_failed", {{"zone", z->cfg.zone_id}, {"error", out.export_error}});
  z->export_error = out.export_error;
  if (out.crl_next_update) z->crl_next_update = out.crl_next_update;
  if (out.in_crl) z->in_crl = *out.in_crl;
  if (out.with_global) z->exports_global = *out.with_global;
  milliseconds delay{0};
  if (!out.setup_error.empty()) {
    ++z->setup_failures;
    if (out.setup_error != z->setup_error)
      log::error("aop.setup_failed", {{"zone", z->cfg.zone_id}, {"error", out.setup_error}});
    z->setup_error = out.setup_error;
    Seconds d = opts_.retry_min;
    for (unsigned i = 1; i < z->setup_failures && d < opts_.retry_max; ++i) d *= 2;
    delay = duration_cast<milliseconds>(std::min(d, opts_.retry_max));
  } else {
    z->setup_error.clear();
    z->setup_failures = 0;
    const std::optional<RotationState> before = z->state;
    z->state = out.state;
    const RotationState& s = *z->state;
    if (out.step) {
      const StepResult& r = *out.step;
      if (r.error) {
        ++z->failed;
        log::warn("aop.step_failed", {{"zone", z->cfg.zone_id},
                                      {"phase", to_string(s.phase)},
                                      {"kind", to_string(r.error->kind)},
                                      {"failures", s.failures},
                                      {"error", r.error->message}});
      } else if (r.changed) {
        log::info("aop.step", {{"zone", z->cfg.zone_id},
                               {"phase", to_string(s.phase)},
                               {"next_cert_id", s.next ? s.next->id : std::string()}});
      }
      const bool rotated = s.phase == Phase::idle && s.current &&
                           (!before || !before->current || before->current->id != s.current->id) && before &&
                           before->phase != Phase::idle;
      if (rotated) {
        ++z->completed;
        log::info("aop.rotated", {{"zone", z->cfg.zone_id},
                                  {"cert_id", s.current->id},
                                  {"previous_cert_id", s.previous_id},
                                  {"expires_on", format_utc(s.current->not_after)}});
      }
      delay = r.next_at > now ? duration_cast<milliseconds>(r.next_at - now) : milliseconds(0);
      z->next_at = r.next_at;
    }
    if (unissued(s)) z->next_at.reset();
  }
  auto queued = std::move(z->queued);
  z->queued.clear();
  for (auto& q : queued) q();
  if (z->busy) return;  // a queued command took the worker; it schedules when it is done
  // A revocation taking effect re-signs the CRL (the export after the step) at that time. Judged
  // at the export's time: one that took effect between the export and now is due at once.
  std::optional<milliseconds> revocation;
  if (z->state)
    if (auto at = next_bundle_change(*z->state, out.at))
      revocation = *at > now ? duration_cast<milliseconds>(*at - now) : milliseconds(0);
  if (z->state && unissued(*z->state) && z->setup_error.empty()) {
    // Nothing to do until `agentctl aop issue`; looked at again now and then (export, CRL).
    auto wait = jitter(duration_cast<milliseconds>(opts_.max_wait));
    if (revocation) wait = std::min(wait, *revocation + milliseconds(100));
    schedule(z, wait);
    return;
  }
  delay = std::min(delay, duration_cast<milliseconds>(opts_.max_wait));
  if (revocation) delay = std::min(delay, *revocation + milliseconds(100));
  schedule(z, delay.count() == 0 ? delay : jitter(delay));
}

bool Manager::handle(const std::string& cmd, const json& params, Reply& reply) {
  if (cmd != "aop-status" && cmd != "aop-issue" && cmd != "aop-rotate" && cmd != "aop-revoke") return false;
  const TimePoint now = std::chrono::system_clock::now();
  std::string zone;
  if (auto it = params.find("zone"); it != params.end() && !it->is_null()) {
    if (!it->is_string() || !valid_zone_id(it->get_ref<const std::string&>())) {
      reply({{"ok", false}, {"error", "\"zone\" must be a zone id (32 lower-case hex digits)"}});
      return true;
    }
    zone = it->get<std::string>();
  }
  if (cmd == "aop-status") {
    json zones = status(now);
    if (!zone.empty()) {
      json one = json::array();
      for (const auto& z : zones)
        if (z["zone_id"] == zone) one.push_back(z);
      if (one.empty()) {
        reply({{"ok", false}, {"error", "no [[aop.zone]] with zone_id " + zone}});
        return true;
      }
      zones = std::move(one);
    }
    reply({{"ok", true}, {"zones", std::move(zones)}});
    return true;
  }
  if (zones_.empty()) {
    reply({{"ok", false}, {"error", "no [[aop.zone]] is configured in the agent's config"}});
    return true;
  }
  if (zone.empty()) {
    if (zones_.size() != 1) {
      reply({{"ok", false},
             {"error", "several zones are configured: name one (agentctl aop " + cmd.substr(4) + " ZONE_ID)"}});
      return true;
    }
    zone = zones_.begin()->first;
  }
  auto it = zones_.find(zone);
  if (it == zones_.end()) {
    reply({{"ok", false}, {"error", "no [[aop.zone]] with zone_id " + zone}});
    return true;
  }
  bool dry_run = false;
  if (auto d = params.find("dry_run"); d != params.end()) {
    if (!d->is_boolean()) {
      reply({{"ok", false}, {"error", "\"dry_run\" must be true or false"}});
      return true;
    }
    dry_run = d->get<bool>();
  }
  bool ca = false;  // aop-rotate only: roll the zone's CA over too
  if (auto c = params.find("ca"); c != params.end()) {
    if (!c->is_boolean() || (cmd != "aop-rotate" && c->get<bool>())) {
      reply({{"ok", false}, {"error", "\"ca\" must be true or false, and only with aop-rotate"}});
      return true;
    }
    ca = c->get<bool>();
  }
  auto z = it->second;
  if (z->busy) {
    z->queued.push_back(
        [this, z, cmd, dry_run, ca, r = std::move(reply)]() mutable { command(z, cmd, dry_run, ca, std::move(r)); });
  } else {
    command(z, cmd, dry_run, ca, std::move(reply));
  }
  return true;
}

void Manager::command(const std::shared_ptr<Zone>& z, const std::string& cmd, bool dry_run, bool ca, Reply reply) {
  z->busy = true;
  z->timer.cancel();
  std::weak_ptr<Zone> wz = z;
  asio::post(worker_, [this, w = z->worker, wz, cmd, dry_run, ca, reply = std::move(reply)]() mutable {
    Outcome out;
    const TimePoint now = std::chrono::system_clock::now();
    const std::string action = cmd.substr(4);
    json rep{{"ok", false}, {"zone", w->cfg.zone_id}, {"action", action}, {"dry_run", dry_run}};
    if (auto st = w->open(now); !st) {
      out.setup_error = st.error().message;
      rep["error"] = "zone " + w->cfg.zone_id + " cannot be managed: " + st.error().message;
    } else {
      Rotator& rot = *w->rot;
      const RotationState& s = rot.state();
      if (action == "revoke") {
        if (dry_run) {
          rep["ok"] = true;
          rep["plan"] = plan_json(rot.plan_revoke());
        } else if (auto del = rot.revoke(now); !del) {
          rep["error"] = del.error().message;
        } else {
          rep["ok"] = true;
          rep["deleted"] = *del;
          log::warn("aop.revoked", {{"zone", w->cfg.zone_id}, {"deleted", json(*del).dump()}});
        }
      } else if (s.phase != Phase::idle) {
        rep["error"] = std::string("a rotation is under way (phase ") + to_string(s.phase) +
                       "); agentctl aop status shows its progress";
      } else if (action == "issue" && s.current) {
        rep["error"] = "zone already has certificate " + s.current->id + " (expires " +
                       format_utc(s.current->not_after) + "); agentctl aop rotate replaces it";
      } else if (action == "rotate" && !s.current) {
        rep["error"] = "zone has no certificate yet: agentctl aop issue makes the first one";
      } else if (ca && s.ca_rollover != CaRollover::none) {
        rep["error"] = std::string("a CA rollover is under way (") + to_string(s.ca_rollover) +
                       "); agentctl aop status shows its progress";
      } else if (dry_run) {
        rep["ok"] = true;
        rep["plan"] = plan_json(rot.plan_rotation(now));
      } else if (auto rq = ca ? rot.request_ca_rollover() : rot.request_rotation(); !rq) {
        rep["error"] = "could not record the request: " + rq.error().message;
      } else {
        rep["ok"] = true;
        rep["detail"] = action == "issue" ? "issuing the zone's first certificate; agentctl aop status shows progress"
                        : ca ? "CA rollover started (the new CA is trusted first, then the certificate rotates, "
                               "then the old CA goes); agentctl aop status shows progress"
                             : "rotation started; agentctl aop status shows progress";
        log::info("aop.requested", {{"zone", w->cfg.zone_id}, {"action", action}, {"ca", ca}});
      }
      out.state = rot.state();
    }
    out.reply = std::move(rep);
    asio::post(io_, [this, wz, out = std::move(out), reply = std::move(reply)]() mutable {
      json answer = std::move(out.reply);
      auto zone = wz.lock();
      if (!zone) {
        reply(std::move(answer));
        return;
      }
      zone->busy = false;
      if (out.state) zone->state = out.state;
      if (!out.setup_error.empty()) zone->setup_error = out.setup_error;
      reply(std::move(answer));
      if (auto it = zones_.find(zone->cfg.zone_id); it == zones_.end() || it->second != zone) return;
      auto queued = std::move(zone->queued);
      zone->queued.clear();
      for (auto& q : queued) q();
      if (!zone->busy) run_step(zone);  // the request is acted on at once; the step reschedules
    });
  });
}

json Manager::status(TimePoint now) const {
  json out = json::array();
  for (const auto& [id, z] : zones_) {
    json j{{"zone_id", id},
           {"level", z->cfg.hostnames.empty() ? "zone" : "hostnames"},
           {"hostnames", z->cfg.hostnames},
           {"api_base", z->cfg.api_base},
           {"ca_bundle", export_file(id).string()}};
    const RotationState* s = z->state ? &*z->state : nullptr;
    std::string state = "starting";
    if (!z->setup_error.empty())
      state = "setup_failed";
    else if (s)
      state = unissued(*s) ? "unissued" : to_string(s->phase);
    j["state"] = state;
    j["current_cert_id"] = s && s->current ? opt_string(s->current->id) : json(nullptr);
    j["previous_cert_id"] = s ? opt_string(s->previous_id) : json(nullptr);
    j["next_cert_id"] = s && s->next ? opt_string(s->next->id) : json(nullptr);
    j["expires_on"] = s && s->current ? json(format_utc(s->current->not_after)) : json(nullptr);
    j["renew_at"] = s && s->current ? json(format_utc(s->current->not_after - z->cfg.renew_before)) : json(nullptr);
    j["rotation_requested"] = s ? s->force : false;
    j["ca_rollover"] = s ? to_string(s->ca_rollover) : "none";
    j["ca_rollover_requested"] = s ? s->ca_force : false;
    j["ca_rollover_next_at"] = s && (s->ca_rollover == CaRollover::trusting || s->ca_rollover == CaRollover::dropping)
                                   ? time_or_null(s->ca_next_at)
                                   : json(nullptr);
    j["next_action_at"] = z->next_at && !z->busy ? time_or_null(*z->next_at) : json(nullptr);
    j["busy"] = z->busy;
    j["failures"] = s ? s->failures : 0u;
    std::string err = z->setup_error.empty() ? (s ? s->last_error : std::string()) : z->setup_error;
    j["last_error"] = opt_string(err);
    j["last_error_kind"] =
        z->setup_error.empty() ? (s ? opt_string(s->last_error_kind) : json(nullptr)) : json("setup");
    j["last_error_at"] = s && z->setup_error.empty() ? time_or_null(s->last_error_at) : json(nullptr);
    j["export_error"] = opt_string(z->export_error);
    j["crl_next_update"] = z->crl_next_update ? time_or_null(*z->crl_next_update) : json(nullptr);
    std::size_t pending = 0;
    if (s)
      for (const auto& r : s->revoked) pending += r.effective_at > now ? 1 : 0;
    j["revoked_in_crl"] = z->in_crl;            // as exported
    j["trusts_global_ca"] = z->exports_global;  // as exported
    j["revocations_pending"] = pending;
    j["rotations_completed"] = z->completed;
    j["steps_failed"] = z->failed;
    out.push_back(std::move(j));
  }
  return out;
}

std::vector<ManagerWarning> Manager::warnings(TimePoint now) const {
  std::vector<ManagerWarning> out;
  for (const auto& [id, z] : zones_) {
    const std::string who = "aop zone " + id + ": ";
    if (!z->setup_error.empty()) out.push_back({"aop.setup_failed", who + "cannot be managed: " + z->setup_error});
    if (!z->export_error.empty())
      out.push_back({"aop.export_failed", who + "CA bundle not exported: " + z->export_error});
    // update_crl re-signs with kCrlResignBelow (4 days) left; under 2 days it has been
    // failing for 2 days. Past nextUpdate the gatekeeper refuses every certificate of the zone.
    if (z->crl_next_update) {
      if (*z->crl_next_update <= now)
        out.push_back({"aop.crl_expired", who + "the exported CRL expired at " + format_utc(*z->crl_next_update) +
                                              ": the gatekeeper refuses every certificate of this zone until the "
                                              "agent re-signs it"});
      else if (*z->crl_next_update - now < kCrlResignBelow / 2)
        out.push_back({"aop.crl_expiring", who + "the exported CRL expires at " + format_utc(*z->crl_next_update) +
                                               " and is not re-signed; then the gatekeeper refuses every certificate "
                                               "of this zone"});
    }
    if (!z->state) continue;
    const RotationState& s = *z->state;
    if (s.failures > 0)
      out.push_back(
          {"aop.failing", who + to_string(s.phase) + " failing (" + std::to_string(s.failures) +
                              " in a row, retried with backoff; nothing is removed meanwhile): " + s.last_error});
    if (z->exports_global)
      out.push_back({"aop.global_ca_trusted",
                     who +
                         "the exported bundle still trusts Cloudflare's global origin-pull CA (any Cloudflare "
                         "customer's zone can reach the origin): until ca_overlap after the zone's first certificate "
                         "is active" +
                         (unissued(s) ? std::string(" (agentctl aop issue)") : std::string()),
                     false});
    if (unissued(s)) {
      out.push_back({"aop.unissued", who + "no certificate yet: agentctl aop issue makes the first one", false});
    } else if (s.current) {
      // Renewal starts renew_before ahead; half of that gone means it keeps failing.
      const auto overdue_at = s.current->not_after - z->cfg.renew_before / 2;
      if (now >= s.current->not_after)
        out.push_back({"aop.overdue", who + "certificate " + s.current->id + " EXPIRED at " +
                                          format_utc(s.current->not_after) + " and is not replaced"});
      else if (now >= overdue_at)
        out.push_back({"aop.overdue", who + "rotation overdue: certificate " + s.current->id + " expires at " +
                                          format_utc(s.current->not_after)});
    }
  }
  return out;
}

std::string Manager::metrics() const {
  if (zones_.empty()) return {};
  std::string m;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
    m.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ").append(name).append(" ");
    m.append(type).append("\n");
  };
  // Zone ids are 32 hex digits (checked by the config parser): no label escaping needed.
  family("originguard_aop_certificate_expiry_timestamp_seconds", "gauge",
         "When the zone's working origin-pull client certificate expires (absent before the first issue).");
  for (const auto& [id, z] : zones_)
    if (z->state && z->state->current)
      m += "originguard_aop_certificate_expiry_timestamp_seconds{zone=\"" + id + "\"} " +
           std::to_string(duration_cast<Seconds>(z->state->current->not_after.time_since_epoch()).count()) + "\n";
  family("originguard_aop_rotations_total", "counter",
         "Certificate rotation steps of this agent run by result: completed (a new certificate active and the old "
         "one deleted), failed (a step failed; retried with backoff).");
  for (const auto& [id, z] : zones_) {
    m += "originguard_aop_rotations_total{zone=\"" + id + "\",result=\"completed\"} " + std::to_string(z->completed) +
         "\n";
    m += "originguard_aop_rotations_total{zone=\"" + id + "\",result=\"failed\"} " + std::to_string(z->failed) + "\n";
  }
  family("originguard_aop_rotation_in_progress", "gauge",
         "1 while a certificate is being issued, uploaded, deployed, activated or its predecessor deleted.");
  for (const auto& [id, z] : zones_)
    m += "originguard_aop_rotation_in_progress{zone=\"" + id + "\"} " +
         (z->state && z->state->phase != Phase::idle ? "1" : "0") + "\n";
  family("originguard_aop_consecutive_failures", "gauge",
         "Failed steps since the last successful one (the zone's setup counts too).");
  for (const auto& [id, z] : zones_)
    m += "originguard_aop_consecutive_failures{zone=\"" + id + "\"} " +
         std::to_string(z->setup_failures + (z->state ? z->state->failures : 0u)) + "\n";
  return m;
}

}  // namespace og::aop
