// The rotation state machine against the in-memory API double: first issue, rotation order,
// resume after a crash at every call, 429 storms, a bad token, failed deployments, dry run.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "aop/rotation.hpp"
#include "aop/verify_client.hpp"
#include "doubles/fake_cf.hpp"
#include "test_support.hpp"

namespace og::aop::test {
namespace {

using namespace std::chrono_literals;
using og::test::ok;

mode_t mode_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

class RotationTest : public ::testing::Test {
 protected:
  og::test::TempDir tmp;
  FakeCf cf;
  CfApi api{cf, kBase, kZone, kToken, {}};
  RotationOptions opts;
  TimePoint now = TimePoint(Seconds(1'800'000'000));

  RotationTest() {
    opts.state_file = tmp / "aop-state.json";
    opts.ca_dir = tmp / "ca";
    opts.poll_interval = 15s;
  }

  Rotator open() {
    auto r = Rotator::open(api, opts, kZone);
    EXPECT_TRUE(ok(r));
    return std::move(*r);
  }

  // Steps until nothing is due within the hour (the rotation finished); time jumps to each
  // step's next_at, so polls and backoffs cost nothing.
  void run(Rotator& rot, int max_steps = 200) {
    for (int i = 0; i < max_steps; ++i) {
      StepResult r = rot.step(now);
      if (r.phase == Phase::idle && r.next_at > now + 1h && !r.error) return;
      if (r.next_at > now) now = r.next_at;
    }
    FAIL() << "rotation did not finish in " << max_steps << " steps; phase " << to_string(rot.state().phase)
           << ", last error: " << rot.state().last_error;
  }

  // What the manager exports after a step: the CA bundle and the CRLs signed from the state.
  std::string exported(const Rotator& rot, TimePoint at) {
    auto ca = LocalCa::load(opts.ca_dir);
    EXPECT_TRUE(ok(ca));
    EXPECT_TRUE(ok(ca->update_crl(crl_entries(rot.state(), at), at)));
    return ca->cert_pem() + ca->next_cert_pem() + *ca->crl_pem();
  }

  RotationState saved() {
    auto text = og::test::read_file(opts.state_file);
    auto s = decode_state(text);
    EXPECT_TRUE(ok(s));
    return s ? *s : RotationState{};
  }
};

TEST_F(RotationTest, FirstIssueUploadsPollsEnablesAndKeepsNothingElse) {
  Rotator rot = open();
  cf.polls_until_active = 3;
  const TimePoint issued_at = now;
  run(rot);
  ASSERT_EQ(cf.live_ids().size(), 1u);
  const std::string id = cf.live_ids()[0];
  EXPECT_EQ(cf.certs[id].status, "active");
  EXPECT_TRUE(cf.enabled);
  const std::string zpath = std::string("/zones/") + kZone + "/origin_tls_client_auth";
  std::vector<std::string> want = {"POST " + zpath, "GET " + zpath + "/" + id, "GET " + zpath + "/" + id,
                                   "GET " + zpath + "/" + id, "PUT " + zpath + "/settings"};
  EXPECT_EQ(cf.calls, want);
  RotationState s = saved();
  EXPECT_EQ(s.phase, Phase::idle);
  ASSERT_TRUE(s.current);
  EXPECT_EQ(s.current->id, id);
  EXPECT_EQ(s.current->fingerprint_sha256, cf.certs[id].fingerprint);
  EXPECT_EQ(s.current->not_after, issued_at + opts.cert_lifetime);
  EXPECT_EQ(s.failures, 0u);
  // Modes: the CA directory 0700, every key and the state 0600; the client key is not kept.
  EXPECT_EQ(mode_of(opts.ca_dir), 0700u);
  EXPECT_EQ(mode_of(opts.ca_dir / "ca.key"), 0600u);
  EXPECT_EQ(mode_of(opts.state_file), 0600u);
  EXPECT_FALSE(std::filesystem::exists(rot.next_key_path()));
  EXPECT_TRUE(std::filesystem::exists(rot.current_cert_path()));
  // Nothing is due until renew_before ahead of expiry.
  StepResult r = rot.step(now);
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(r.next_at, s.current->not_after - opts.renew_before);
}

TEST_F(RotationTest, RotationKeepsTheOldCertificateUntilTheNewOneIsActive) {
  Rotator rot = open();
  run(rot);
  const std::string old_id = cf.live_ids().at(0);
  now += opts.cert_lifetime - opts.renew_before;  // due
  cf.polls_until_active = 4;
  cf.calls.clear();
  for (int i = 0; i < 50 && !(rot.state().phase == Phase::idle && rot.state().current->id != old_id); ++i) {
    StepResult r = rot.step(now);
    ASSERT_FALSE(r.error) << r.error->message;
    // Invariant at every step: the old certificate is live unless a newer one is active.
    bool old_live = cf.certs[old_id].status != "deleted";
    bool new_active = false;
    for (const auto& id : cf.live_ids())
      if (id != old_id && cf.certs[id].status == "active") new_active = true;
    EXPECT_TRUE(old_live || new_active) << "after step " << i;
    if (r.next_at > now) now = r.next_at;
  }
  ASSERT_EQ(cf.live_ids().size(), 1u);
  const std::string new_id = cf.live_ids()[0];
  EXPECT_NE(new_id, old_id);
  EXPECT_EQ(cf.certs[old_id].status, "deleted");
  // The delete comes after the enable, and after a check that the new one is active.
  const std::string zpath = std::string("/zones/") + kZone + "/origin_tls_client_auth";
  ASSERT_GE(cf.calls.size(), 3u);
  EXPECT_EQ(cf.calls[cf.calls.size() - 1], "DELETE " + zpath + "/" + old_id);
  EXPECT_EQ(cf.calls[cf.calls.size() - 2], "GET " + zpath + "/" + new_id);
  EXPECT_EQ(cf.calls[cf.calls.size() - 3], "PUT " + zpath + "/settings");
  EXPECT_EQ(saved().current->id, new_id);
}

// A crash (the process dies) right after the API acted on call k, before its answer was
// stored: the next process reopens the state file and finishes with exactly one new upload.
class CrashAtCall : public RotationTest, public ::testing::WithParamInterface<int> {};

TEST_P(CrashAtCall, ResumesWithoutADuplicateUpload) {
  {
    Rotator rot = open();
    run(rot);
  }
  const std::string old_id = cf.live_ids().at(0);
  now += opts.cert_lifetime;  // due (and the old one about to expire)
  cf.calls.clear();
  cf.polls_until_active = 2;
  cf.lose_response_at = GetParam();
  {
    Rotator rot = open();
    for (int i = 0; i < 50 && static_cast<int>(cf.calls.size()) <= GetParam(); ++i) {
      StepResult r = rot.step(now);
      if (r.phase == Phase::idle && !r.error && rot.state().current->id != old_id) break;
      if (r.next_at > now) now = r.next_at;
    }
  }  // the crash: the Rotator (process) is gone, only the state file is left
  cf.lose_response_at = -1;
  Rotator again = open();
  now += 1h;  // a restart ignores no backoff: jump past any
  run(again);
  ASSERT_EQ(cf.live_ids().size(), 1u) << "calls: " << testing::PrintToString(cf.calls);
  const std::string new_id = cf.live_ids()[0];
  EXPECT_NE(new_id, old_id);
  EXPECT_EQ(cf.count("POST "), 1) << "duplicate upload; calls: " << testing::PrintToString(cf.calls);
  EXPECT_EQ(cf.uploaded_fingerprints.size(), 2u);  // the first issue, then this rotation's one
  EXPECT_EQ(saved().current->id, new_id);
  EXPECT_EQ(saved().current->fingerprint_sha256, cf.certs[new_id].fingerprint);
  EXPECT_TRUE(cf.enabled);
}
// Calls of a rotation: POST, GET (pending), GET (active), PUT settings, GET (re-check), DELETE.
INSTANTIATE_TEST_SUITE_P(EveryCall, CrashAtCall, ::testing::Range(0, 6));

TEST_F(RotationTest, ReopeningAfterEveryStepFinishesTheSame) {
  for (int i = 0; i < 30; ++i) {
    Rotator rot = open();
    StepResult r = rot.step(now);
    if (r.phase == Phase::idle && r.next_at > now + 1h) break;
    if (r.next_at > now) now = r.next_at;
  }
  EXPECT_EQ(cf.count("POST "), 1);
  EXPECT_EQ(cf.live_ids().size(), 1u);
  EXPECT_EQ(saved().phase, Phase::idle);
}

// The CA rollover the agent drives (agentctl aop rotate --ca, or the CA near its expiry), with
// a fresh Rotator from the state file at every step (a restart anywhere): every certificate
// live at the API verifies against the bundle the gatekeeper trusts, at every step; the new CA
// is trusted ca_overlap before a certificate from it is uploaded; the old CA is dropped
// ca_overlap after the old certificate was deleted.
TEST_F(RotationTest, CaRolloverTrustsTheNewCaFirstRotatesUnderItThenDropsTheOld) {
  {
    Rotator rot = open();
    run(rot);
  }
  const std::string old_id = cf.live_ids().at(0);
  const std::string old_ca_pem = og::test::read_file(opts.ca_dir / "ca.pem");
  opts.ca_overlap = 10min;
  {
    Rotator rot = open();
    ASSERT_TRUE(ok(rot.request_ca_rollover()));
  }
  TimePoint trusted_at{}, new_uploaded_at{}, old_deleted_at{}, dropped_at{};
  std::vector<CaRollover> seen;
  for (int i = 0; i < 60 && dropped_at == TimePoint{}; ++i) {
    Rotator rot = open();
    StepResult r = rot.step(now);
    ASSERT_FALSE(r.error) << r.error->message;
    const std::string bundle = og::test::read_file(opts.ca_dir / "bundle.pem");
    const std::string with_crl = exported(rot, now);
    for (const auto& id : cf.live_ids()) {
      EXPECT_TRUE(verifies_as_client(cf.certs[id].pem, bundle, now)) << "step " << i << ": " << id << " not trusted";
      EXPECT_EQ(crl_verify_result(cf.certs[id].pem, with_crl, now), X509_V_OK) << "step " << i << ": " << id;
    }
    const CaRollover c = rot.state().ca_rollover;
    if (seen.empty() || seen.back() != c) seen.push_back(c);
    if (c == CaRollover::trusting && trusted_at == TimePoint{}) trusted_at = now;
    if (cf.count("POST ") == 2 && new_uploaded_at == TimePoint{}) new_uploaded_at = now;
    if (cf.certs[old_id].status == "deleted" && old_deleted_at == TimePoint{}) old_deleted_at = now;
    if (c == CaRollover::none && seen.size() > 1) dropped_at = now;
    if (r.next_at > now) now = r.next_at;
  }
  EXPECT_EQ(seen, (std::vector<CaRollover>{CaRollover::trusting, CaRollover::rotating, CaRollover::dropping,
                                           CaRollover::none}));
  ASSERT_NE(dropped_at, TimePoint{});
  EXPECT_GE(new_uploaded_at - trusted_at, opts.ca_overlap);
  EXPECT_GE(dropped_at - old_deleted_at, opts.ca_overlap);
  // One rotation (one upload), the old certificate deleted; the bundle is the new CA alone.
  EXPECT_EQ(cf.count("POST "), 2);
  ASSERT_EQ(cf.live_ids().size(), 1u);
  const std::string new_pem = cf.certs[cf.live_ids()[0]].pem;
  const std::string bundle = og::test::read_file(opts.ca_dir / "bundle.pem");
  EXPECT_EQ(bundle, og::test::read_file(opts.ca_dir / "ca.pem"));
  EXPECT_NE(bundle, old_ca_pem);
  EXPECT_TRUE(verifies_as_client(new_pem, bundle, now));
  EXPECT_FALSE(verifies_as_client(new_pem, old_ca_pem, now));
  EXPECT_FALSE(verifies_as_client(cf.certs[old_id].pem, bundle, now));
  EXPECT_FALSE(std::filesystem::exists(opts.ca_dir / "ca-next.key"));
  // Idle again, until the certificate's renewal.
  Rotator rot = open();
  StepResult r = rot.step(now);
  EXPECT_FALSE(r.changed);
  EXPECT_GT(r.next_at, now + 1h);
}

// The zone's CRL: a certificate deleted by a rotation enters it ca_overlap after its deletion
// (the edge has stopped presenting it), the working one never; kept across a restart; revoke
// adds the working one; an entry leaves a day after the certificate's expiry.
TEST_F(RotationTest, RetiredCertificatesEnterTheCrlAfterTheGraceNeverTheWorkingOne) {
  Rotator rot = open();
  run(rot);
  const std::string a_id = cf.live_ids().at(0);
  const CertRecord a = *rot.state().current;
  EXPECT_TRUE(rot.state().revoked.empty());
  now += opts.cert_lifetime - opts.renew_before;  // due
  TimePoint deleted_at{};
  for (int i = 0; i < 50 && deleted_at == TimePoint{}; ++i) {
    StepResult r = rot.step(now);
    ASSERT_FALSE(r.error) << r.error->message;
    // Until its deletion, the old certificate is not in the CRL.
    EXPECT_EQ(crl_verify_result(cf.certs[a_id].pem, exported(rot, now), now), X509_V_OK) << "step " << i;
    if (cf.certs[a_id].status == "deleted") {
      deleted_at = now;
      // The step that deleted it asks to be called back when the revocation takes effect.
      EXPECT_EQ(r.next_at, now + opts.ca_overlap);
    }
    if (r.next_at > now && deleted_at == TimePoint{}) now = r.next_at;
  }
  ASSERT_NE(deleted_at, TimePoint{});
  const CertRecord b = *rot.state().current;
  const std::string b_pem = cf.certs[b.id].pem;
  ASSERT_EQ(rot.state().revoked.size(), 1u);
  EXPECT_EQ(rot.state().revoked[0], (Revocation{a.serial_hex, a.not_after, deleted_at + opts.ca_overlap}));
  EXPECT_TRUE(crl_entries(rot.state(), deleted_at + opts.ca_overlap - 1s).empty());
  EXPECT_EQ(crl_verify_result(cf.certs[a_id].pem, exported(rot, deleted_at + opts.ca_overlap - 1s), now), X509_V_OK);
  now = deleted_at + opts.ca_overlap;
  EXPECT_EQ(crl_entries(rot.state(), now), (std::vector<RevokedCert>{{a.serial_hex, now}}));
  std::string pem = exported(rot, now);
  EXPECT_EQ(crl_verify_result(cf.certs[a_id].pem, pem, now), X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(crl_verify_result(b_pem, pem, now), X509_V_OK);
  // A restart keeps the list (state file), and the CRL is the same file.
  Rotator again = open();
  EXPECT_EQ(again.state().revoked, rot.state().revoked);
  EXPECT_EQ(exported(again, now + 1h), pem);
  // agentctl aop revoke: the working certificate goes into the CRL after the same grace.
  ASSERT_TRUE(again.revoke(now + 1h));
  ASSERT_EQ(again.state().revoked.size(), 2u);
  EXPECT_EQ(again.state().revoked[1], (Revocation{b.serial_hex, b.not_after, now + 1h + opts.ca_overlap}));
  EXPECT_EQ(crl_verify_result(b_pem, exported(again, now + 1h), now + 1h), X509_V_OK);
  pem = exported(again, now + 1h + opts.ca_overlap);
  EXPECT_EQ(crl_verify_result(b_pem, pem, now + 1h + opts.ca_overlap), X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(crl_serials(pem).at(0).second.size(), 2u);
  // A day past its expiry an entry leaves the CRL (an expired certificate is refused anyway).
  EXPECT_EQ(crl_entries(again.state(), a.not_after + 86400s - 1s).size(), 2u);
  EXPECT_EQ(crl_entries(again.state(), a.not_after + 86400s),
            (std::vector<RevokedCert>{{b.serial_hex, now + 1h + opts.ca_overlap}}));
}

TEST_F(RotationTest, CaRolloverStartedButNotRecordedIsCarriedOn) {
  {
    Rotator rot = open();
    run(rot);
  }
  // The agent stopped after start_rollover() and before the state file said so.
  {
    auto ca = LocalCa::load(opts.ca_dir);
    ASSERT_TRUE(ok(ca));
    ASSERT_TRUE(ok(ca->start_rollover(opts.ca, now)));
  }
  const std::string next_ca = og::test::read_file(opts.ca_dir / "ca-next.pem");
  Rotator rot = open();
  StepResult r = rot.step(now);
  EXPECT_EQ(rot.state().ca_rollover, CaRollover::trusting);
  EXPECT_EQ(r.next_at, now + opts.ca_overlap);
  EXPECT_EQ(og::test::read_file(opts.ca_dir / "ca-next.pem"), next_ca);  // the same new CA, not another
  run(rot);
  EXPECT_EQ(rot.state().ca_rollover, CaRollover::none);
  EXPECT_EQ(og::test::read_file(opts.ca_dir / "bundle.pem"), next_ca);
  EXPECT_EQ(cf.count("POST "), 2);
}

TEST_F(RotationTest, CaNearItsExpiryIsRolledOverAndRevokeWaitsForIt) {
  {
    Rotator rot = open();
    run(rot);
  }
  Rotator rot = open();
  StepResult r = rot.step(now);
  EXPECT_FALSE(r.changed);  // the CA has years left
  now += CaOptions{}.lifetime - opts.ca_renew_before;
  r = rot.step(now);
  ASSERT_FALSE(r.error) << r.error->message;
  EXPECT_EQ(rot.state().ca_rollover, CaRollover::trusting);
  auto rv = rot.revoke(now);
  ASSERT_FALSE(rv);
  EXPECT_NE(rv.error().message.find("CA rollover is under way"), std::string::npos) << rv.error().message;
  EXPECT_EQ(cf.count("DELETE "), 0);
}

TEST_F(RotationTest, RateLimitStormBacksOffHonouringRetryAfter) {
  Rotator rot = open();
  ASSERT_FALSE(rot.step(now).error);  // the issue step needs no API
  cf.rate_limit = 5;
  cf.retry_after = "120";
  for (int i = 0; i < 5; ++i) {
    StepResult r = rot.step(now);
    ASSERT_TRUE(r.error);
    EXPECT_EQ(r.error->kind, ApiErrorKind::transient);
    EXPECT_EQ(r.error->http_status, 429);
    EXPECT_EQ(r.error->retry_after, 120s);
    EXPECT_GE(r.next_at - now, 120s);  // never sooner than the server asked
    // Before not_before, a step makes no call at all.
    std::size_t calls_before = cf.calls.size();
    StepResult early = rot.step(r.next_at - 1s);
    EXPECT_FALSE(early.changed);
    EXPECT_EQ(cf.calls.size(), calls_before);
    now = r.next_at;
  }
  EXPECT_EQ(saved().failures, 5u);
  EXPECT_EQ(saved().last_error_kind, "transient");
  run(rot);
  EXPECT_EQ(cf.order.size(), 1u);  // POSTs refused with 429 stored nothing; one went through
  EXPECT_EQ(cf.live_ids().size(), 1u);
  EXPECT_EQ(saved().failures, 0u);
}

TEST_F(RotationTest, BackoffGrowsExponentiallyToRetryMax) {
  Rotator rot = open();
  ASSERT_FALSE(rot.step(now).error);  // the issue step
  cf.server_errors = 100;
  std::vector<Seconds> delays;
  for (int i = 0; i < 8; ++i) {
    StepResult r = rot.step(now);
    ASSERT_TRUE(r.error);
    EXPECT_EQ(r.error->kind, ApiErrorKind::transient);
    delays.push_back(std::chrono::duration_cast<Seconds>(r.next_at - now));
    now = r.next_at;
  }
  std::vector<Seconds> want = {30s, 60s, 120s, 240s, 480s, 960s, 1920s, 3600s};
  EXPECT_EQ(delays, want);
  EXPECT_EQ(cf.count("DELETE "), 0);
}

TEST_F(RotationTest, BadTokenIsReportedAndNothingIsDeleted) {
  Rotator rot = open();
  run(rot);
  const std::string old_id = cf.live_ids().at(0);
  now += opts.cert_lifetime;  // due
  cf.bad_token = true;
  cf.calls.clear();
  for (int i = 0; i < 10; ++i) {
    StepResult r = rot.step(now);
    if (r.error) {
      EXPECT_EQ(r.error->kind, ApiErrorKind::auth);
      EXPECT_EQ(r.error->http_status, 403);
      EXPECT_EQ(r.error->message.find(kToken), std::string::npos);
    }
    now = std::max(now, r.next_at);
  }
  EXPECT_EQ(cf.count("DELETE "), 0);
  EXPECT_EQ(cf.certs[old_id].status, "active");
  RotationState s = saved();
  EXPECT_EQ(s.current->id, old_id);
  EXPECT_EQ(s.last_error_kind, "auth");
  EXPECT_NE(s.last_error.find("SSL and Certificates"), std::string::npos) << s.last_error;
  EXPECT_EQ(og::test::read_file(opts.state_file).find(kToken), std::string::npos);
  EXPECT_GT(s.failures, 0u);
}

TEST_F(RotationTest, DeploymentTimeoutReuploadsAndDeletesTheDeadUpload) {
  Rotator rot = open();
  cf.deploy_outcome = "deployment_timed_out";
  run(rot);
  ASSERT_EQ(cf.order.size(), 2u);
  EXPECT_EQ(cf.certs[cf.order[0]].status, "deleted");
  EXPECT_EQ(cf.certs[cf.order[1]].status, "active");
  EXPECT_EQ(saved().current->id, cf.order[1]);
  // The same certificate was uploaded again (its key never left for anywhere else).
  EXPECT_EQ(cf.uploaded_fingerprints[0], cf.uploaded_fingerprints[1]);
}

TEST_F(RotationTest, NothingIsDeletedWhenTheNewCertificateIsNotActiveAtRetireTime) {
  Rotator rot = open();
  run(rot);
  const std::string old_id = cf.live_ids().at(0);
  now += opts.cert_lifetime;
  while (rot.state().phase != Phase::retiring) {
    StepResult r = rot.step(now);
    ASSERT_FALSE(r.error);
    now = std::max(now, r.next_at);
  }
  // Cloudflare reports the new one back in deployment (what a reverted deploy would look like).
  cf.certs[rot.state().next->id].status = "pending_deployment";
  cf.certs[rot.state().next->id].gets = -100;
  StepResult r = rot.step(now);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(cf.count("DELETE "), 0);
  EXPECT_EQ(cf.certs[old_id].status, "active");
  EXPECT_EQ(rot.state().phase, Phase::deploying);
}

TEST_F(RotationTest, DryRunListsTheCallsAndChangesNothing) {
  opts.dry_run = true;
  Rotator rot = open();
  StepResult r = rot.step(now);
  EXPECT_TRUE(cf.calls.empty());
  EXPECT_FALSE(std::filesystem::exists(opts.state_file));
  EXPECT_FALSE(std::filesystem::exists(opts.ca_dir));
  ASSERT_EQ(r.plan.size(), 4u);
  const std::string zpath = std::string("/zones/") + kZone + "/origin_tls_client_auth";
  EXPECT_EQ(r.plan[0].method + " " + r.plan[0].path, "POST " + zpath);
  EXPECT_EQ(r.plan[0].body.find("BEGIN"), std::string::npos);  // no key material in the plan
  EXPECT_NE(r.plan[0].body.find("<redacted>"), std::string::npos);
  EXPECT_EQ(r.plan[1].method, "GET");
  EXPECT_EQ(r.plan[2].method + " " + r.plan[2].path, "PUT " + zpath + "/settings");
  EXPECT_EQ(r.plan[2].body, R"({"enabled":true})");
}

TEST_F(RotationTest, DryRunOfADueRotationShowsTheDeleteOfTheOldCertificate) {
  {
    Rotator rot = open();
    run(rot);
  }
  const std::string old_id = cf.live_ids().at(0);
  now += opts.cert_lifetime;
  opts.dry_run = true;
  Rotator rot = open();
  cf.calls.clear();
  StepResult r = rot.step(now);
  EXPECT_TRUE(cf.calls.empty());
  ASSERT_FALSE(r.plan.empty());
  EXPECT_EQ(r.plan.back().method, "DELETE");
  EXPECT_TRUE(r.plan.back().path.ends_with(old_id));
}

TEST_F(RotationTest, PerHostnameUploadsToHostnameCertificatesAndAssociates) {
  CfApi host_api{cf, kBase, kZone, kToken, {"www.example.com", "api.example.com"}};
  auto rot = Rotator::open(host_api, opts, kZone);
  ASSERT_TRUE(ok(rot));
  run(*rot);
  const std::string hpath = std::string("/zones/") + kZone + "/origin_tls_client_auth/hostnames";
  EXPECT_EQ(cf.count("POST " + hpath + "/certificates"), 1);
  EXPECT_EQ(cf.count("PUT " + hpath), 1);
  EXPECT_FALSE(cf.enabled);  // the zone setting is not touched
  ASSERT_EQ(cf.associations.size(), 2u);
  EXPECT_EQ(cf.associations[0]["hostname"], "www.example.com");
  EXPECT_EQ(cf.associations[0]["cert_id"], rot->state().current->id);
  EXPECT_EQ(cf.associations[0]["enabled"], true);
}

TEST_F(RotationTest, StateFileOfAnotherZoneOrCorruptIsRefused) {
  RotationState s;
  s.zone_id = "ffffffffffffffffffffffffffffffff";
  og::test::write_file(opts.state_file, encode_state(s));
  ::chmod(opts.state_file.c_str(), 0600);
  EXPECT_FALSE(Rotator::open(api, opts, kZone).has_value());
  og::test::write_file(opts.state_file, "{\"version\":1,");
  EXPECT_FALSE(Rotator::open(api, opts, kZone).has_value());
}

// The migration from the global CA ends ca_overlap after the first activation, for good: later
// rotations and revoke do not move it; a state file from before the field existed, of a zone
// already activated, does not trust the global CA again.
TEST_F(RotationTest, GlobalCaTrustEndsCaOverlapAfterTheFirstActivation) {
  Rotator rot = open();
  EXPECT_TRUE(trusts_global_ca(rot.state(), now));
  TimePoint activated{};
  for (int i = 0; i < 50 && activated == TimePoint{}; ++i) {
    StepResult r = rot.step(now);
    ASSERT_FALSE(r.error) << r.error->message;
    if (rot.state().phase == Phase::retiring || (rot.state().phase == Phase::idle && rot.state().current))
      activated = now;
    else if (r.next_at > now)
      now = r.next_at;
  }
  ASSERT_NE(activated, TimePoint{});
  EXPECT_EQ(rot.state().global_until, activated + opts.ca_overlap);
  EXPECT_EQ(saved().global_until, activated + opts.ca_overlap);
  EXPECT_TRUE(trusts_global_ca(rot.state(), activated + opts.ca_overlap - 1s));
  EXPECT_FALSE(trusts_global_ca(rot.state(), activated + opts.ca_overlap));
  EXPECT_EQ(next_bundle_change(rot.state(), activated), activated + opts.ca_overlap);
  run(rot);
  now += opts.cert_lifetime;  // a rotation much later
  run(rot);
  ASSERT_TRUE(rot.revoke(now));
  EXPECT_EQ(rot.state().global_until, activated + opts.ca_overlap);
  EXPECT_FALSE(trusts_global_ca(open().state(), now));

  auto old = nlohmann::json::parse(encode_state(rot.state()));
  old.erase("global_until");
  auto decoded = decode_state(old.dump());
  ASSERT_TRUE(ok(decoded));
  EXPECT_FALSE(trusts_global_ca(*decoded, now)) << "an activated zone's old state file";
  RotationState fresh;
  fresh.zone_id = kZone;
  auto j = nlohmann::json::parse(encode_state(fresh));
  j.erase("global_until");
  decoded = decode_state(j.dump());
  ASSERT_TRUE(ok(decoded));
  EXPECT_TRUE(trusts_global_ca(*decoded, now)) << "a zone never issued";
}

TEST(RotationState, CodecRoundTripsAndRefusesInconsistentStates) {
  RotationState s;
  s.zone_id = kZone;
  s.phase = Phase::deploying;
  s.next = CertRecord{"abc123", "7f", std::string(64, 'a'), TimePoint(Seconds(1'900'000'000))};
  s.current = CertRecord{"def456", "1", std::string(64, 'b'), TimePoint(Seconds(1'850'000'000))};
  s.discard = {"x1"};
  s.failures = 3;
  s.not_before = TimePoint(Seconds(1'800'000'100));
  s.last_error = "HTTP 429: rate limited";
  s.last_error_kind = "transient";
  s.revoked = {{"7e", TimePoint(Seconds(1'850'000'000)), TimePoint(Seconds(1'800'000'600))}};
  auto back = decode_state(encode_state(s));
  ASSERT_TRUE(ok(back));
  EXPECT_EQ(encode_state(*back), encode_state(s));
  EXPECT_EQ(back->revoked, s.revoked);
  {
    auto bad = s;
    bad.revoked[0].serial_hex = "7e\n";  // would not be a serial
    EXPECT_FALSE(decode_state(encode_state(bad)).has_value());
  }
  s.next->id.clear();  // deploying without the uploaded id
  EXPECT_FALSE(decode_state(encode_state(s)).has_value());
  s.next->id = "../../etc";
  EXPECT_FALSE(decode_state(encode_state(s)).has_value());
}

}  // namespace
}  // namespace og::aop::test
