#include "aop/rotation.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <system_error>

#include "originguard/atomic_file.hpp"

namespace og::aop {
namespace fs = std::filesystem;
using nlohmann::json;

const char* to_string(Phase p) {
  switch (p) {
    case Phase::idle:
      return "idle";
    case Phase::uploading:
      return "uploading";
    case Phase::deploying:
      return "deploying";
    case Phase::activating:
      return "activating";
    case Phase::retiring:
      return "retiring";
  }
  return "unknown";
}

const char* to_string(CaRollover c) {
  switch (c) {
    case CaRollover::none:
      return "none";
    case CaRollover::trusting:
      return "trusting";
    case CaRollover::rotating:
      return "rotating";
    case CaRollover::dropping:
      return "dropping";
  }
  return "unknown";
}

namespace {

constexpr CaRollover kCaSteps[] = {CaRollover::none, CaRollover::trusting, CaRollover::rotating, CaRollover::dropping};
constexpr Phase kPhases[] = {Phase::idle, Phase::uploading, Phase::deploying, Phase::activating, Phase::retiring};

std::int64_t secs(TimePoint t) { return std::chrono::duration_cast<Seconds>(t.time_since_epoch()).count(); }
TimePoint from_secs(std::int64_t v) { return TimePoint(Seconds(v)); }

json encode_cert(const CertRecord& c) {
  return {{"id", c.id},
          {"serial", c.serial_hex},
          {"fingerprint_sha256", c.fingerprint_sha256},
          {"not_after", secs(c.not_after)}};
}

bool hex_string(const std::string& s, std::size_t max) {
  if (s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Result<CertRecord> decode_cert(const json& j) {
  if (!j.is_object()) return fail("certificate record is not an object");
  CertRecord c;
  try {
    c.id = j.at("id").get<std::string>();
    c.serial_hex = j.at("serial").get<std::string>();
    c.fingerprint_sha256 = j.at("fingerprint_sha256").get<std::string>();
    c.not_after = from_secs(j.at("not_after").get<std::int64_t>());
  } catch (const json::exception& e) {
    return fail(std::string("certificate record: ") + e.what());
  }
  if (!c.id.empty() && !valid_remote_id(c.id)) return fail("certificate record: bad id");
  if (!hex_string(c.serial_hex, 64) || c.fingerprint_sha256.size() != 64 || !hex_string(c.fingerprint_sha256, 64))
    return fail("certificate record: bad serial or fingerprint");
  return c;
}

Result<std::vector<std::string>> decode_ids(const json& j) {
  if (!j.is_array()) return fail("id list is not an array");
  std::vector<std::string> out;
  for (const auto& e : j) {
    if (!e.is_string() || !valid_remote_id(e.get_ref<const std::string&>())) return fail("bad id in list");
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::string normalise_serial(const std::string& s) {
  std::string out;
  for (char c : s)
    if (c != ':') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::size_t nz = out.find_first_not_of('0');
  return nz == std::string::npos ? std::string("0") : out.substr(nz);
}

bool same_cert(const RemoteCert& r, const CertRecord& c) {
  if (!r.certificate.empty()) {
    auto id = identify_pem(r.certificate);
    return id && id->fingerprint_sha256 == c.fingerprint_sha256;
  }
  return !r.serial_number.empty() && normalise_serial(r.serial_number) == normalise_serial(c.serial_hex);
}

json encode_revocation(const Revocation& r) {
  return {{"serial", r.serial_hex}, {"not_after", secs(r.not_after)}, {"effective_at", secs(r.effective_at)}};
}

Result<std::vector<Revocation>> decode_revocations(const json& j) {
  if (!j.is_array()) return fail("revoked is not an array");
  std::vector<Revocation> out;
  for (const auto& e : j) {
    if (!e.is_object()) return fail("revoked: entry is not an object");
    Revocation r;
    r.serial_hex = e.at("serial").get<std::string>();
    if (r.serial_hex.empty() || !hex_string(r.serial_hex, 64)) return fail("revoked: bad serial");
    r.not_after = from_secs(e.at("not_after").get<std::int64_t>());
    r.effective_at = from_secs(e.at("effective_at").get<std::int64_t>());
    out.push_back(std::move(r));
  }
  return out;
}

// An expired certificate is refused without the CRL; a day's margin covers a gatekeeper whose
// clock is behind.
constexpr Seconds kCrlKeepPastExpiry{86400};

}  // namespace

std::vector<RevokedCert> crl_entries(const RotationState& s, TimePoint now) {
  std::vector<RevokedCert> out;
  for (const auto& r : s.revoked)
    if (r.effective_at <= now && r.not_after + kCrlKeepPastExpiry > now) out.push_back({r.serial_hex, r.effective_at});
  return out;
}

std::optional<TimePoint> next_bundle_change(const RotationState& s, TimePoint now) {
  std::optional<TimePoint> out;
  for (const auto& r : s.revoked)
    if (r.effective_at > now && (!out || r.effective_at < *out)) out = r.effective_at;
  if (s.global_until > now && (!out || s.global_until < *out)) out = s.global_until;
  return out;
}

bool trusts_global_ca(const RotationState& s, TimePoint now) {
  return s.global_until == TimePoint{} || now < s.global_until;
}

std::string encode_state(const RotationState& s) {
  json j = {{"version", 1},
            {"zone_id", s.zone_id},
            {"phase", to_string(s.phase)},
            {"current", s.current ? encode_cert(*s.current) : json(nullptr)},
            {"next", s.next ? encode_cert(*s.next) : json(nullptr)},
            {"upload_sent", s.upload_sent},
            {"discard", s.discard},
            {"retire", s.retire},
            {"previous_id", s.previous_id},
            {"force", s.force},
            {"failures", s.failures},
            {"not_before", secs(s.not_before)},
            {"last_error", s.last_error},
            {"last_error_kind", s.last_error_kind},
            {"last_error_at", secs(s.last_error_at)},
            {"ca_rollover", to_string(s.ca_rollover)},
            {"ca_next_at", secs(s.ca_next_at)},
            {"ca_force", s.ca_force}};
  j["global_until"] = secs(s.global_until);
  j["revoked"] = json::array();
  for (const auto& r : s.revoked) j["revoked"].push_back(encode_revocation(r));
  return j.dump(2) + "\n";
}

Result<RotationState> decode_state(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return fail("not a JSON object");
  RotationState s;
  try {
    if (j.at("version").get<int>() != 1) return fail("unsupported version");
    s.zone_id = j.at("zone_id").get<std::string>();
    std::string phase = j.at("phase").get<std::string>();
    bool known = false;
    for (Phase p : kPhases)
      if (phase == to_string(p)) {
        s.phase = p;
        known = true;
      }
    if (!known) return fail("unknown phase " + quote_untrusted(phase));
    for (auto [key, slot] : {std::pair{"current", &s.current}, std::pair{"next", &s.next}}) {
      const json& c = j.at(key);
      if (c.is_null()) continue;
      auto rec = decode_cert(c);
      if (!rec) return fail(rec.error().context(key));
      *slot = std::move(*rec);
    }
    s.upload_sent = j.at("upload_sent").get<bool>();
    auto d = decode_ids(j.at("discard"));
    if (!d) return fail(d.error().context("discard"));
    s.discard = std::move(*d);
    auto r = decode_ids(j.at("retire"));
    if (!r) return fail(r.error().context("retire"));
    s.retire = std::move(*r);
    // Added after version 1 shipped: optional.
    if (auto p = j.find("previous_id"); p != j.end()) {
      s.previous_id = p->get<std::string>();
      if (!s.previous_id.empty() && !valid_remote_id(s.previous_id)) return fail("previous_id: bad id");
    }
    s.force = j.at("force").get<bool>();
    s.failures = j.at("failures").get<unsigned>();
    s.not_before = from_secs(j.at("not_before").get<std::int64_t>());
    s.last_error = j.at("last_error").get<std::string>();
    s.last_error_kind = j.at("last_error_kind").get<std::string>();
    s.last_error_at = from_secs(j.at("last_error_at").get<std::int64_t>());
    // Added after version 1 shipped (the CA rollover): optional.
    if (auto c = j.find("ca_rollover"); c != j.end()) {
      const std::string step = c->get<std::string>();
      bool found = false;
      for (CaRollover k : kCaSteps)
        if (step == to_string(k)) {
          s.ca_rollover = k;
          found = true;
        }
      if (!found) return fail("unknown ca_rollover " + quote_untrusted(step));
    }
    if (auto c = j.find("ca_next_at"); c != j.end()) s.ca_next_at = from_secs(c->get<std::int64_t>());
    if (auto c = j.find("ca_force"); c != j.end()) s.ca_force = c->get<bool>();
    // Added after version 1 shipped (the CRL, the migration from the global CA): optional.
    if (auto c = j.find("revoked"); c != j.end()) {
      auto rev = decode_revocations(*c);
      if (!rev) return fail(rev.error());
      s.revoked = std::move(*rev);
    }
    if (auto c = j.find("global_until"); c != j.end()) {
      s.global_until = from_secs(c->get<std::int64_t>());
    } else if (s.current || !s.previous_id.empty() || s.phase == Phase::retiring) {
      // A state file from before the migration existed, of a zone activated already: the
      // global CA is not trusted again.
      s.global_until = from_secs(1);
    }
  } catch (const json::exception& e) {
    return fail(e.what());
  }
  // A phase past idle is meaningless without the certificate it rolls out.
  if (s.phase != Phase::idle && !s.next) return fail(std::string("phase ") + to_string(s.phase) + " without next");
  if ((s.phase == Phase::deploying || s.phase == Phase::activating || s.phase == Phase::retiring) && s.next->id.empty())
    return fail(std::string("phase ") + to_string(s.phase) + " without the uploaded id");
  return s;
}

Result<Rotator> Rotator::open(CfApi& api, RotationOptions opts, const std::string& zone_id) {
  RotationState s;
  s.zone_id = zone_id;
  std::error_code ec;
  if (fs::exists(opts.state_file, ec)) {
    auto text = read_private_file(opts.state_file);
    if (!text) return fail(text.error());
    auto st = decode_state(*text);
    if (!st) return fail(st.error().context(opts.state_file.string()));
    if (st->zone_id != zone_id)
      return fail(opts.state_file.string() + ": belongs to zone " + quote_untrusted(st->zone_id) + ", not " + zone_id);
    s = std::move(*st);
  }
  remove_stale_temps(opts.state_file);
  return Rotator(api, std::move(opts), std::move(s));
}

Status Rotator::persist() { return write_file_atomic(opts_.state_file, encode_state(s_), 0600); }

Status Rotator::request_rotation() {
  s_.force = true;
  s_.not_before = TimePoint{};
  return persist();
}

Status Rotator::request_ca_rollover() {
  s_.ca_force = true;
  s_.not_before = TimePoint{};
  return persist();
}

std::vector<PlannedCall> Rotator::plan_revoke() const {
  std::vector<PlannedCall> out;
  for (const auto& id : s_.discard) out.push_back(api_.plan_remove(id));
  if (s_.current && !s_.current->id.empty()) out.push_back(api_.plan_remove(s_.current->id));
  return out;
}

ApiResult<std::vector<std::string>> Rotator::revoke(TimePoint now) {
  if (s_.phase != Phase::idle)
    return ApiError{ApiErrorKind::rejected,
                    std::string("a rotation is under way (phase ") + to_string(s_.phase) +
                        "): revoke when it is done, or it would delete what it rolls out",
                    0,
                    Seconds(0),
                    {}};
  if (s_.ca_rollover != CaRollover::none)
    return ApiError{ApiErrorKind::rejected,
                    std::string("a CA rollover is under way (") + to_string(s_.ca_rollover) +
                        "): revoke when it is done, or it would issue again",
                    0,
                    Seconds(0),
                    {}};
  std::vector<std::string> deleted;
  auto remove = [&](const std::string& id) -> std::optional<ApiError> {
    auto del = api_.remove(id);
    if (!del && del.error().http_status != 404) {
      (void)failed(del.error(), now);
      return del.error();
    }
    deleted.push_back(id);
    return std::nullopt;
  };
  while (!s_.discard.empty()) {
    if (auto e = remove(s_.discard.front())) return *e;
    s_.discard.erase(s_.discard.begin());
    (void)persist();
  }
  if (s_.current && !s_.current->id.empty()) {
    if (auto e = remove(s_.current->id)) return *e;
    retire_cert(*s_.current, now);
  }
  s_.previous_id = s_.current ? s_.current->id : std::string();
  s_.current.reset();
  s_.force = false;
  s_.failures = 0;
  s_.not_before = TimePoint{};
  s_.last_error.clear();
  s_.last_error_kind.clear();
  std::error_code ec;
  fs::remove(current_cert_path(), ec);
  if (auto st = persist(); !st)
    return ApiError{ApiErrorKind::transient, "persist state: " + st.error().message, 0, Seconds(0), {}};
  return deleted;
}

bool Rotator::due(TimePoint now) const {
  return s_.force || !s_.current || s_.current->not_after - opts_.renew_before <= now;
}

void Rotator::retire_cert(const CertRecord& c, TimePoint now) {
  // Never the certificate being rolled out: a failed deployment re-uploads that same one.
  if (s_.next && s_.next->serial_hex == c.serial_hex) return;
  std::erase_if(s_.revoked, [&](const Revocation& r) {
    return r.serial_hex == c.serial_hex || r.not_after + kCrlKeepPastExpiry <= now;
  });
  s_.revoked.push_back({c.serial_hex, c.not_after, now + opts_.ca_overlap});
}

StepResult Rotator::ok(TimePoint next_at) {
  StepResult r;
  r.changed = true;
  s_.failures = 0;
  s_.not_before = TimePoint{};
  if (auto st = persist(); !st) {
    // The transition happened (maybe at the API) but is not on disk: the next step redoes it,
    // which every phase tolerates (upload adopts by fingerprint, the rest is idempotent).
    r.error = ApiError{ApiErrorKind::transient, "persist state: " + st.error().message, 0, Seconds(0), {}};
  }
  r.phase = s_.phase;
  r.next_at = next_at;
  return r;
}

StepResult Rotator::failed(ApiError e, TimePoint now) {
  ++s_.failures;
  Seconds delay = opts_.retry_min;
  for (unsigned i = 1; i < s_.failures && delay < opts_.retry_max; ++i) delay *= 2;
  delay = std::min(delay, opts_.retry_max);
  delay = std::max(delay, e.retry_after);
  s_.not_before = now + delay;
  s_.last_error = e.message;
  s_.last_error_kind = to_string(e.kind);
  s_.last_error_at = now;
  (void)persist();  // best effort: the error is returned either way
  StepResult r;
  r.phase = s_.phase;
  r.next_at = s_.not_before;
  r.error = std::move(e);
  return r;
}

StepResult Rotator::local_failure(const Error& e, TimePoint now) {
  ApiError ae{ApiErrorKind::transient, e.message, 0, Seconds(0), {}};
  StepResult r = failed(ae, now);
  s_.last_error_kind = "local";
  (void)persist();
  return r;
}

std::vector<PlannedCall> Rotator::plan(TimePoint now, bool assume_due) const {
  std::vector<PlannedCall> out;
  std::string new_id = s_.next && !s_.next->id.empty() ? s_.next->id : "<new id>";
  auto retire_list = [&] {
    std::vector<std::string> ids = s_.phase == Phase::retiring ? s_.retire : s_.discard;
    if (s_.phase != Phase::retiring && s_.current && !s_.current->id.empty()) ids.push_back(s_.current->id);
    for (const auto& id : ids) out.push_back(api_.plan_remove(id));
  };
  switch (s_.phase) {
    case Phase::idle:
      if (!assume_due && !due(now)) return out;
      [[fallthrough]];
    case Phase::uploading:
      if (s_.phase == Phase::uploading && s_.upload_sent) out.push_back(api_.plan_list());
      out.push_back(api_.plan_upload());
      [[fallthrough]];
    case Phase::deploying:
      out.push_back(api_.plan_get(new_id));
      [[fallthrough]];
    case Phase::activating:
      out.push_back(api_.plan_activate(new_id));
      [[fallthrough]];
    case Phase::retiring:
      out.push_back(api_.plan_get(new_id));
      retire_list();
  }
  return out;
}

StepResult Rotator::step(TimePoint now) {
  StepResult r = step_once(now);
  // A revocation that takes effect earlier needs the CRL re-signed then (the manager's export).
  if (auto at = next_bundle_change(s_, now); at && *at < r.next_at) r.next_at = *at;
  return r;
}

StepResult Rotator::step_once(TimePoint now) {
  if (opts_.dry_run) {
    StepResult r;
    r.phase = s_.phase;
    r.plan = plan(now);
    r.next_at = now;
    return r;
  }
  if (now < s_.not_before) {
    StepResult r;
    r.phase = s_.phase;
    r.next_at = s_.not_before;
    return r;
  }
  switch (s_.phase) {
    case Phase::idle:
      if (auto r = ca_step(now)) return std::move(*r);
      return do_issue(now);
    case Phase::uploading:
      return do_upload(now);
    case Phase::deploying:
      return do_poll(now);
    case Phase::activating:
      return do_activate(now);
    case Phase::retiring:
      return do_retire(now);
  }
  return {};
}

std::optional<StepResult> Rotator::ca_step(TimePoint now) {
  auto wait = [&](TimePoint until) {
    StepResult r;
    r.phase = s_.phase;
    r.next_at = until;
    return r;
  };
  switch (s_.ca_rollover) {
    case CaRollover::none: {
      if (!s_.current) return std::nullopt;  // nothing issued yet: nothing to roll over to
      // load, not create: a CA gone from under an issued certificate is an error to show, not
      // a reason to trust a new CA alone.
      auto ca = LocalCa::load(opts_.ca_dir);
      if (!ca) return local_failure(ca.error(), now);
      // A rollover the state file does not know of was started when the agent stopped
      // between start_rollover() and the state write: carried on from its start.
      const bool adopt = ca->rollover_in_progress();
      if (!adopt && !s_.ca_force && ca->identity().not_after - opts_.ca_renew_before > now) return std::nullopt;
      if (auto st = ca->start_rollover(opts_.ca, now); !st) return local_failure(st.error(), now);
      s_.ca_force = false;
      s_.ca_rollover = CaRollover::trusting;
      s_.ca_next_at = now + opts_.ca_overlap;
      return ok(s_.ca_next_at);
    }
    case CaRollover::trusting:
      if (now < s_.ca_next_at) return wait(s_.ca_next_at);
      s_.ca_rollover = CaRollover::rotating;
      s_.force = true;  // issue_client() signs with the new CA from now on
      return ok(now);
    case CaRollover::rotating:
      if (s_.force) return std::nullopt;  // the rotation's issue step comes next
      s_.ca_rollover = CaRollover::dropping;
      s_.ca_next_at = now + opts_.ca_overlap;
      return ok(s_.ca_next_at);
    case CaRollover::dropping: {
      if (now < s_.ca_next_at) return wait(s_.ca_next_at);
      auto ca = LocalCa::load(opts_.ca_dir);
      if (!ca) return local_failure(ca.error(), now);
      // Done already when the agent stopped between finish_rollover() and the state write.
      if (ca->rollover_in_progress())
        if (auto st = ca->finish_rollover(); !st) return local_failure(st.error(), now);
      s_.ca_rollover = CaRollover::none;
      s_.ca_next_at = TimePoint{};
      return ok(now);
    }
  }
  return std::nullopt;
}

StepResult Rotator::do_issue(TimePoint now) {
  if (!due(now)) {
    StepResult r;
    r.phase = s_.phase;
    r.next_at = s_.current->not_after - opts_.renew_before;
    return r;
  }
  auto ca = LocalCa::open_or_create(opts_.ca_dir, opts_.ca, now);
  if (!ca) return local_failure(ca.error(), now);
  auto cert = ca->issue_client(opts_.common_name, opts_.key_type, opts_.cert_lifetime, now);
  if (!cert) return local_failure(cert.error(), now);
  // Key and certificate on disk before the state names them: a resumed upload needs both.
  Status st = write_file_atomic(next_key_path(), cert->key_pem, 0600);
  OPENSSL_cleanse(cert->key_pem.data(), cert->key_pem.size());
  if (!st) return local_failure(st.error(), now);
  if (!(st = write_file_atomic(next_cert_path(), cert->cert_pem, 0600))) return local_failure(st.error(), now);
  s_.next = CertRecord{"", cert->id.serial_hex, cert->id.fingerprint_sha256, cert->id.not_after};
  s_.upload_sent = false;
  s_.force = false;
  s_.phase = Phase::uploading;
  return ok(now);
}

StepResult Rotator::do_upload(TimePoint now) {
  if (s_.upload_sent) {
    // The last POST may have reached the API without its answer reaching the state file.
    auto listed = api_.list();
    if (!listed) return failed(listed.error(), now);
    for (const auto& r : *listed) {
      if (same_cert(r, *s_.next)) {
        s_.next->id = r.id;
        s_.phase = Phase::deploying;
        return ok(now);
      }
    }
  }
  auto key = read_private_file(next_key_path());
  auto cert = read_private_file(next_cert_path());
  if (!key || !cert) {
    // Nothing of ours is at the API (listed above when a POST may have gone out): start over.
    s_.next.reset();
    s_.upload_sent = false;
    s_.phase = Phase::idle;
    s_.force = true;
    return ok(now);
  }
  auto id = identify_pem(*cert);
  if (!id || id->fingerprint_sha256 != s_.next->fingerprint_sha256) {
    OPENSSL_cleanse(key->data(), key->size());
    return local_failure(Error{next_cert_path().string() + ": not the certificate the state file records"}, now);
  }
  s_.upload_sent = true;
  if (auto st = persist(); !st) {
    OPENSSL_cleanse(key->data(), key->size());
    return local_failure(st.error(), now);
  }
  auto up = api_.upload(*cert, *key);
  OPENSSL_cleanse(key->data(), key->size());
  if (!up) return failed(up.error(), now);
  s_.next->id = up->id;
  s_.phase = Phase::deploying;
  return ok(now);
}

StepResult Rotator::do_poll(TimePoint now) {
  auto got = api_.get(s_.next->id);
  bool gone = !got && got.error().http_status == 404;
  if (!got && !gone) return failed(got.error(), now);
  const std::string status = gone ? std::string("deleted") : got->status;
  if (status == "active") {
    s_.phase = Phase::activating;
    return ok(now);
  }
  if (status == "initializing" || status == "pending_deployment" || status.empty()) {
    StepResult r;
    r.phase = s_.phase;
    r.next_at = now + opts_.poll_interval;
    return r;
  }
  // deployment_timed_out, deleted, pending_deletion...: this upload will not become active.
  // Upload the same certificate again; the dead one is deleted when retiring.
  if (!gone) s_.discard.push_back(s_.next->id);
  s_.last_error = "certificate " + s_.next->id + " went to status " + status + " instead of active";
  s_.last_error_kind = "deployment";
  s_.last_error_at = now;
  s_.next->id.clear();
  s_.upload_sent = false;
  s_.phase = Phase::uploading;
  return ok(now);
}

StepResult Rotator::do_activate(TimePoint now) {
  auto r = api_.activate(s_.next->id);
  if (!r) return failed(r.error(), now);
  // The first activation: the edge presents the zone's certificate within ca_overlap, after
  // which the global origin-pull CA leaves the bundle for good (persisted below).
  if (s_.global_until == TimePoint{}) s_.global_until = now + opts_.ca_overlap;
  s_.retire = s_.discard;
  if (s_.current && !s_.current->id.empty() && s_.current->id != s_.next->id) s_.retire.push_back(s_.current->id);
  s_.discard.clear();
  s_.phase = Phase::retiring;
  return ok(now);
}

StepResult Rotator::do_retire(TimePoint now) {
  if (!s_.retire.empty()) {
    // The one rule that keeps the edge working: nothing is deleted unless the new certificate
    // is active right now.
    auto got = api_.get(s_.next->id);
    if (!got) return failed(got.error(), now);
    if (got->status != "active") {
      s_.phase = Phase::deploying;
      return failed(ApiError{ApiErrorKind::bad_response,
                             "certificate " + s_.next->id + " is " + got->status + ", not active: nothing deleted",
                             0,
                             Seconds(0),
                             {}},
                    now);
    }
    const std::string id = s_.retire.front();
    auto del = api_.remove(id);
    if (!del && del.error().http_status != 404) return failed(del.error(), now);
    s_.retire.erase(s_.retire.begin());
    if (!s_.retire.empty()) return ok(now);
  }
  std::error_code ec;
  fs::rename(next_cert_path(), current_cert_path(), ec);
  // The client key is at Cloudflare now, which needs it; the local copy is no longer needed.
  fs::remove(next_key_path(), ec);
  s_.previous_id = s_.current ? s_.current->id : std::string();
  // Its deletion was confirmed above (or it was never uploaded): into the CRL after the grace.
  if (s_.current) retire_cert(*s_.current, now);
  s_.current = s_.next;
  s_.next.reset();
  s_.upload_sent = false;
  s_.phase = Phase::idle;
  s_.last_error.clear();
  s_.last_error_kind.clear();
  // During a CA rollover the next step is the rollover's (see ca_step).
  return ok(s_.ca_rollover == CaRollover::rotating ? now : s_.current->not_after - opts_.renew_before);
}

}  // namespace og::aop
