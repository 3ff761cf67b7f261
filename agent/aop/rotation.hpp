// The rotation of a zone's client certificate as a persisted state machine. Each call of
// step() makes at most one transition (issue, upload, one poll, activate, one delete) and
// writes the state file (JSON, atomically) before it returns, so a crash or restart anywhere
// resumes from the file instead of starting over:
//
//   idle --due--> [issue: key+cert from the local CA, identity recorded] --> uploading
//   uploading --POST (id recorded first thing)--> deploying
//     (resumed with an upload possibly sent but no id: list, adopt the certificate whose
//      fingerprint or serial matches, upload only if none does)
//   deploying --GET until "active"--> activating --PUT settings / hostnames--> retiring
//   retiring --the new one re-checked active, then DELETE the previous (and failed) ones--> idle
//
// Safety: the previous certificate is deleted only after the new one has been seen active in
// the same step; API errors only delay (exponential backoff, Retry-After honoured) and never
// remove anything. The dry run lists the calls the next steps would make and changes nothing.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "aop/ca.hpp"
#include "aop/cf_api.hpp"

namespace og::aop {

enum class Phase { idle, uploading, deploying, activating, retiring };
[[nodiscard]] const char* to_string(Phase p);

// The rollover of the zone's own CA, driven between client-certificate rotations:
//   none --due (CA within ca_renew_before of its expiry, or requested)--> start_rollover():
//     the bundle holds both CAs (the manager exports it after the step) --> trusting
//   trusting --ca_overlap later (every origin has reloaded the bundle)--> rotating: a client
//     certificate rotation, its certificate signed by the new CA
//   rotating --that rotation done--> dropping
//   dropping --ca_overlap later (the edge presents the new certificate only)--> finish_rollover():
//     the bundle holds the new CA only --> none
// No client certificate from the new CA is issued before ca_overlap has passed, and the old CA
// stays trusted until ca_overlap after the edge's certificate was replaced.
enum class CaRollover { none, trusting, rotating, dropping };
[[nodiscard]] const char* to_string(CaRollover c);

struct CertRecord {
  std::string id;  // the API's id ("" until the upload answered)
  std::string serial_hex;
  std::string fingerprint_sha256;
  TimePoint not_after{};
};

// A certificate the agent retired (deleted at the API by a rotation or `agentctl aop revoke`):
// listed in the zone's CRL from `effective_at` (the deletion confirmed plus ca_overlap, so the
// edge has stopped presenting it) until a day past its expiry (expired, it is refused anyway).
struct Revocation {
  std::string serial_hex;
  TimePoint not_after{};
  TimePoint effective_at{};
  bool operator==(const Revocation&) const = default;
};

struct RotationState {
  std::string zone_id;
  Phase phase = Phase::idle;
  std::optional<CertRecord> current;  // the working certificate (active, enabled)
  std::optional<CertRecord> next;     // the one being rolled out
  bool upload_sent = false;           // a POST for `next` may have reached the API
  std::vector<std::string> discard;   // ids of failed deployments, deleted when retiring
  std::vector<std::string> retire;    // ids still to delete in phase retiring
  std::string previous_id;            // the certificate the last completed rotation replaced
  bool force = false;                 // rotate on the next step whatever the expiry
  unsigned failures = 0;              // consecutive failed steps (0 = healthy)
  TimePoint not_before{};             // backoff: no API call before this
  std::string last_error;             // safe to show (no token)
  std::string last_error_kind;        // to_string(ApiErrorKind) or "local"
  TimePoint last_error_at{};
  CaRollover ca_rollover = CaRollover::none;
  TimePoint ca_next_at{};  // trusting, dropping: not before this
  bool ca_force = false;   // a CA rollover requested (agentctl aop rotate --ca)
  std::vector<Revocation> revoked;
  // The migration from the global origin-pull certificate: {} until the zone's first
  // activation, then that time plus ca_overlap (the edge has converged on the zone's own
  // certificate). The bundle trusts the global CA only before it (trusts_global_ca).
  TimePoint global_until{};
};

// Whether the zone's bundle still trusts the global origin-pull CA at `now` (given the zone's
// migrate_from_global): never again once global_until has passed, even after a revoke.
[[nodiscard]] bool trusts_global_ca(const RotationState& s, TimePoint now);

// What the CRL lists at `now`: the revocations in effect and not yet a day past expiry.
[[nodiscard]] std::vector<RevokedCert> crl_entries(const RotationState& s, TimePoint now);
// When the exported bundle must change next, if ever: a pending revocation takes effect (the
// CRL is re-signed), or the global CA's trust ends.
[[nodiscard]] std::optional<TimePoint> next_bundle_change(const RotationState& s, TimePoint now);

// One codec for the state file (version 1).
[[nodiscard]] std::string encode_state(const RotationState& s);
[[nodiscard]] Result<RotationState> decode_state(std::string_view json);

struct RotationOptions {
  std::filesystem::path state_file;
  std::filesystem::path ca_dir;
  CaOptions ca;
  KeyType key_type = KeyType::ecdsa_p256;
  std::string common_name = "originguard AOP client";
  Seconds cert_lifetime{Seconds(86400) * 90};
  Seconds renew_before{Seconds(86400) * 30};
  Seconds poll_interval{15};
  Seconds retry_min{30};
  Seconds retry_max{3600};
  Seconds ca_renew_before{Seconds(86400) * 365};  // roll the CA over this long before it expires
  Seconds ca_overlap{600};                        // both CAs trusted this long on each side
  bool dry_run = false;
};

struct StepResult {
  Phase phase = Phase::idle;      // after the step
  TimePoint next_at{};            // when step() has something to do next
  bool changed = false;           // a transition was made (and persisted)
  std::optional<ApiError> error;  // this step failed (state records it, backoff set)
  std::vector<PlannedCall> plan;  // dry run: the calls the coming steps would make
};

class Rotator {
 public:
  // Reads the state file (absent = a fresh idle state for the zone); a file for another zone,
  // or one that does not decode, is refused rather than overwritten.
  static Result<Rotator> open(CfApi& api, RotationOptions opts, const std::string& zone_id);

  StepResult step(TimePoint now);
  // Ask for a rotation on the next step (agentctl aop rotate), persisted.
  [[nodiscard]] Status request_rotation();
  // Ask for a CA rollover (and with it a rotation) on the next step (agentctl aop rotate --ca).
  [[nodiscard]] Status request_ca_rollover();
  // agentctl aop revoke: deletes the working certificate (and failed uploads) at the API, one
  // DELETE per call, persisting after each; the zone is then unissued. Only when idle (a
  // rotation under way is refused as "local"). Returns the ids deleted.
  ApiResult<std::vector<std::string>> revoke(TimePoint now);
  // The calls a rotation requested now would make (dry run of agentctl aop issue/rotate).
  [[nodiscard]] std::vector<PlannedCall> plan_rotation(TimePoint now) const { return plan(now, true); }
  // The calls revoke() would make (dry run).
  [[nodiscard]] std::vector<PlannedCall> plan_revoke() const;
  [[nodiscard]] bool due_at(TimePoint now) const { return due(now); }
  [[nodiscard]] const RotationOptions& options() const { return opts_; }

  [[nodiscard]] const RotationState& state() const { return s_; }
  [[nodiscard]] std::filesystem::path next_key_path() const { return opts_.ca_dir / "client-next.key"; }
  [[nodiscard]] std::filesystem::path next_cert_path() const { return opts_.ca_dir / "client-next.pem"; }
  [[nodiscard]] std::filesystem::path current_cert_path() const { return opts_.ca_dir / "client.pem"; }

 private:
  Rotator(CfApi& api, RotationOptions opts, RotationState s) : api_(api), opts_(std::move(opts)), s_(std::move(s)) {}
  [[nodiscard]] bool due(TimePoint now) const;
  [[nodiscard]] std::vector<PlannedCall> plan(TimePoint now, bool assume_due = false) const;
  [[nodiscard]] Status persist();
  StepResult ok(TimePoint next_at);
  StepResult failed(ApiError e, TimePoint now);
  StepResult local_failure(const Error& e, TimePoint now);
  // Records the retirement of `c` (deleted at the API now), unless it is the one rolled out.
  void retire_cert(const CertRecord& c, TimePoint now);
  StepResult step_once(TimePoint now);

  std::optional<StepResult> ca_step(TimePoint now);
  StepResult do_issue(TimePoint now);
  StepResult do_upload(TimePoint now);
  StepResult do_poll(TimePoint now);
  StepResult do_activate(TimePoint now);
  StepResult do_retire(TimePoint now);

  CfApi& api_;
  RotationOptions opts_;
  RotationState s_;
};

}  // namespace og::aop
