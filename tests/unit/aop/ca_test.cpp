// The local CA: creation with private modes, refusal of loose modes/owners/symlinks, client
// certificates that verify as TLS clients, and the rollover bundle.
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aop/ca.hpp"
#include "aop/verify_client.hpp"
#include "originguard/atomic_file.hpp"
#include "test_support.hpp"

namespace og::aop::test {
namespace {

using namespace std::chrono_literals;
using og::test::ok;
using og::test::refused;

const TimePoint kNow = TimePoint(Seconds(1'800'000'000));

mode_t mode_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

TEST(LocalCa, CreatedOnFirstUseWithPrivateModesAndLoadedAfterwards) {
  og::test::TempDir tmp;
  auto dir = tmp / "zone" / "ca";
  auto ca = LocalCa::open_or_create(dir, {}, kNow);
  ASSERT_TRUE(ok(ca));
  EXPECT_EQ(mode_of(dir), 0700u);
  EXPECT_EQ(mode_of(dir / "ca.key"), 0600u);
  EXPECT_EQ(mode_of(dir / "ca.pem"), 0600u);
  EXPECT_EQ(og::test::read_file(dir / "bundle.pem"), ca->cert_pem());
  EXPECT_NE(og::test::read_file(dir / "ca.key").find("BEGIN PRIVATE KEY"), std::string::npos);
  // The second open loads the same CA instead of making another.
  auto again = LocalCa::open_or_create(dir, {}, kNow + 1h);
  ASSERT_TRUE(ok(again));
  EXPECT_EQ(again->identity().fingerprint_sha256, ca->identity().fingerprint_sha256);
  EXPECT_FALSE(again->rollover_in_progress());
}

TEST(LocalCa, IssuedClientCertificateVerifiesAsTlsClientOnlyWithinItsLifetime) {
  og::test::TempDir tmp;
  auto ca = LocalCa::open_or_create(tmp / "ca", {}, kNow);
  ASSERT_TRUE(ok(ca));
  for (KeyType kt : {KeyType::ecdsa_p256, KeyType::rsa_2048}) {
    auto c = ca->issue_client("originguard AOP client", kt, Seconds(86400) * 90, kNow);
    ASSERT_TRUE(ok(c));
    EXPECT_NE(c->key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
    EXPECT_EQ(c->id.not_after, kNow + Seconds(86400) * 90);
    EXPECT_EQ(c->id.fingerprint_sha256.size(), 64u);
    auto again = identify_pem(c->cert_pem);
    ASSERT_TRUE(ok(again));
    EXPECT_EQ(again->serial_hex, c->id.serial_hex);
    EXPECT_TRUE(verifies_as_client(c->cert_pem, ca->cert_pem(), kNow + 1h)) << to_string(kt);
    EXPECT_FALSE(verifies_as_client(c->cert_pem, ca->cert_pem(), kNow + Seconds(86400) * 91));
    // clientAuth only: not usable as a server certificate.
    auto x = parse(c->cert_pem);
    EXPECT_EQ(X509_check_purpose(x.get(), X509_PURPOSE_SSL_CLIENT, 0), 1);
    EXPECT_NE(X509_check_purpose(x.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
    EXPECT_EQ(X509_check_ca(x.get()), 0);
  }
  // Two issues, two serials.
  auto a = ca->issue_client("x", KeyType::ecdsa_p256, 1h, kNow);
  auto b = ca->issue_client("x", KeyType::ecdsa_p256, 1h, kNow);
  EXPECT_NE(a->id.serial_hex, b->id.serial_hex);
}

TEST(LocalCa, ClientLifetimeNeverOutlivesTheCa) {
  og::test::TempDir tmp;
  CaOptions o;
  o.lifetime = Seconds(86400) * 10;
  auto ca = LocalCa::open_or_create(tmp / "ca", o, kNow);
  ASSERT_TRUE(ok(ca));
  auto c = ca->issue_client("x", KeyType::ecdsa_p256, Seconds(86400) * 90, kNow);
  ASSERT_TRUE(ok(c));
  EXPECT_EQ(c->id.not_after, ca->identity().not_after);
  EXPECT_TRUE(refused(ca->issue_client("x", KeyType::ecdsa_p256, 1h, kNow + Seconds(86400) * 11)));
}

TEST(LocalCa, RefusesLooseModesSymlinksAndForeignOwners) {
  og::test::TempDir tmp;
  auto dir = tmp / "ca";
  ASSERT_TRUE(ok(LocalCa::open_or_create(dir, {}, kNow)));
  // A key readable by others.
  ASSERT_EQ(::chmod((dir / "ca.key").c_str(), 0640), 0);
  auto r = LocalCa::load(dir);
  ASSERT_TRUE(refused(r));
  EXPECT_NE(r.error().message.find("0640"), std::string::npos) << r.error().message;
  EXPECT_TRUE(refused(LocalCa::open_or_create(dir, {}, kNow)));  // never "fixed" silently
  ASSERT_EQ(::chmod((dir / "ca.key").c_str(), 0600), 0);
  ASSERT_TRUE(ok(LocalCa::load(dir)));
  // A directory others can enter.
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  EXPECT_TRUE(refused(LocalCa::load(dir)));
  ASSERT_EQ(::chmod(dir.c_str(), 0700), 0);
  // A key that is a symlink (to a file with a fine mode).
  std::filesystem::rename(dir / "ca.key", tmp / "real.key");
  std::filesystem::create_symlink(tmp / "real.key", dir / "ca.key");
  r = LocalCa::load(dir);
  ASSERT_TRUE(refused(r));
  EXPECT_NE(r.error().message.find("symlink"), std::string::npos) << r.error().message;
  std::filesystem::remove(dir / "ca.key");
  std::filesystem::rename(tmp / "real.key", dir / "ca.key");
  // A key owned by someone else (only root can make one).
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown((dir / "ca.key").c_str(), 4242, 4242), 0);
    r = LocalCa::load(dir);
    ASSERT_TRUE(refused(r));
    EXPECT_NE(r.error().message.find("owned by uid 4242"), std::string::npos) << r.error().message;
    ASSERT_EQ(::chown((dir / "ca.key").c_str(), 0, 0), 0);
    ASSERT_EQ(::chown(dir.c_str(), 4242, 4242), 0);
    EXPECT_TRUE(refused(LocalCa::load(dir)));
  }
}

TEST(LocalCa, KeyNotMatchingItsCertificateIsRefused) {
  og::test::TempDir tmp;
  ASSERT_TRUE(ok(LocalCa::open_or_create(tmp / "a", {}, kNow)));
  ASSERT_TRUE(ok(LocalCa::open_or_create(tmp / "b", {}, kNow)));
  std::filesystem::copy_file(tmp / "b" / "ca.key", tmp / "a" / "ca.key",
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_TRUE(refused(LocalCa::load(tmp / "a")));
}

TEST(LocalCa, RolloverTrustsBothCasDuringTheOverlapThenOnlyTheNewOne) {
  og::test::TempDir tmp;
  auto dir = tmp / "ca";
  auto ca = LocalCa::open_or_create(dir, {}, kNow);
  ASSERT_TRUE(ok(ca));
  auto old_client = ca->issue_client("c", KeyType::ecdsa_p256, Seconds(86400) * 90, kNow);
  ASSERT_TRUE(ok(old_client));
  ASSERT_TRUE(ok(ca->start_rollover({}, kNow + 1h)));
  EXPECT_TRUE(ca->rollover_in_progress());
  EXPECT_EQ(mode_of(dir / "ca-next.key"), 0600u);
  std::string bundle = og::test::read_file(ca->bundle_path());
  EXPECT_EQ(bundle, ca->cert_pem() + ca->next_cert_pem());
  // New certificates come from the new CA; both old and new verify against the bundle.
  auto new_client = ca->issue_client("c", KeyType::ecdsa_p256, Seconds(86400) * 90, kNow + 1h);
  ASSERT_TRUE(ok(new_client));
  EXPECT_TRUE(verifies_as_client(old_client->cert_pem, bundle, kNow + 2h));
  EXPECT_TRUE(verifies_as_client(new_client->cert_pem, bundle, kNow + 2h));
  EXPECT_FALSE(verifies_as_client(new_client->cert_pem, ca->cert_pem(), kNow + 2h));
  // A restart in the overlap sees the rollover.
  auto reloaded = LocalCa::load(dir);
  ASSERT_TRUE(ok(reloaded));
  EXPECT_TRUE(reloaded->rollover_in_progress());
  ASSERT_TRUE(ok(ca->start_rollover({}, kNow + 3h)));  // idempotent
  EXPECT_EQ(og::test::read_file(ca->bundle_path()), bundle);
  // Finish: only the new CA is trusted.
  ASSERT_TRUE(ok(ca->finish_rollover()));
  std::string after = og::test::read_file(ca->bundle_path());
  EXPECT_FALSE(verifies_as_client(old_client->cert_pem, after, kNow + 2h));
  EXPECT_TRUE(verifies_as_client(new_client->cert_pem, after, kNow + 2h));
  EXPECT_FALSE(std::filesystem::exists(dir / "ca-next.key"));
  EXPECT_EQ(mode_of(dir / "ca.key"), 0600u);
  auto final_ca = LocalCa::load(dir);
  ASSERT_TRUE(ok(final_ca));
  EXPECT_FALSE(final_ca->rollover_in_progress());
  EXPECT_TRUE(verifies_as_client(new_client->cert_pem, final_ca->cert_pem(), kNow + 2h));
}

TEST(LocalCa, RolloverInterruptedBetweenItsRenamesCompletesOnLoad) {
  og::test::TempDir tmp;
  auto dir = tmp / "ca";
  auto ca = LocalCa::open_or_create(dir, {}, kNow);
  ASSERT_TRUE(ok(ca));
  ASSERT_TRUE(ok(ca->start_rollover({}, kNow)));
  std::string next_pem = ca->next_cert_pem();
  // The crash: the key was renamed, the certificate not.
  std::filesystem::rename(dir / "ca-next.key", dir / "ca.key");
  auto loaded = LocalCa::load(dir);
  ASSERT_TRUE(ok(loaded));
  EXPECT_FALSE(loaded->rollover_in_progress());
  EXPECT_EQ(loaded->cert_pem(), next_pem);
  EXPECT_EQ(og::test::read_file(dir / "bundle.pem"), next_pem);
}

// crl.pem: one CRL per CA of the bundle, each signed by its CA, listing the retired serials;
// re-signed when the list or the CAs change or when less than kCrlResignBelow is left, and
// otherwise left byte for byte (the exported bundle, and the gatekeeper's reload, change only
// then).
TEST(LocalCa, CrlOnePerCaListsTheRevokedAndIsResignedOnlyWhenNeeded) {
  og::test::TempDir tmp;
  auto dir = tmp / "ca";
  auto ca = LocalCa::open_or_create(dir, {}, kNow);
  ASSERT_TRUE(ok(ca));
  auto a = ca->issue_client("a", KeyType::ecdsa_p256, Seconds(86400) * 90, kNow);
  auto b = ca->issue_client("b", KeyType::ecdsa_p256, Seconds(86400) * 90, kNow);
  ASSERT_TRUE(ok(a) && ok(b));
  auto exported = [&] { return ca->cert_pem() + ca->next_cert_pem() + *ca->crl_pem(); };
  EXPECT_EQ(*ca->crl_pem(), "");
  // Without a CRL the leaf is refused under CRL checking (fail closed).
  EXPECT_EQ(crl_verify_result(a->cert_pem, ca->cert_pem(), kNow + 1h), X509_V_ERR_UNABLE_TO_GET_CRL);

  ASSERT_TRUE(ok(ca->update_crl({}, kNow)));
  EXPECT_EQ(mode_of(ca->crl_path()), 0600u);
  const std::string empty = *ca->crl_pem();
  ASSERT_EQ(crl_serials(empty).size(), 1u);
  EXPECT_TRUE(crl_serials(empty)[0].second.empty());
  EXPECT_EQ(crl_next_update(empty), kNow + kCrlValidity);
  EXPECT_EQ(crl_verify_result(a->cert_pem, exported(), kNow + 1h), X509_V_OK);
  ASSERT_TRUE(ok(ca->update_crl({}, kNow + 1h)));
  EXPECT_EQ(*ca->crl_pem(), empty) << "re-signed without a reason";

  ASSERT_TRUE(ok(ca->update_crl({{a->id.serial_hex, kNow + 2h}}, kNow + 2h)));
  const std::string one = *ca->crl_pem();
  EXPECT_NE(one, empty);
  EXPECT_EQ(crl_serials(one)[0].second, std::vector<std::string>{a->id.serial_hex});
  EXPECT_EQ(crl_verify_result(a->cert_pem, exported(), kNow + 3h), X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(crl_verify_result(b->cert_pem, exported(), kNow + 3h), X509_V_OK);
  // A restart: the same list, the same file.
  auto reloaded = LocalCa::load(dir);
  ASSERT_TRUE(ok(reloaded));
  ASSERT_TRUE(ok(reloaded->update_crl({{a->id.serial_hex, kNow + 2h}}, kNow + 1h * 30)));
  EXPECT_EQ(*reloaded->crl_pem(), one);
  // With less than kCrlResignBelow left it is re-signed, ahead of its nextUpdate.
  const TimePoint later = kNow + 2h + kCrlValidity - kCrlResignBelow + 1min;
  ASSERT_TRUE(ok(reloaded->update_crl({{a->id.serial_hex, kNow + 2h}}, later)));
  EXPECT_NE(*reloaded->crl_pem(), one);
  EXPECT_EQ(crl_next_update(*reloaded->crl_pem()), later + kCrlValidity);
  // An expired CRL refuses everyone (what the gatekeeper does, and why the agent re-signs early).
  EXPECT_EQ(crl_verify_result(b->cert_pem, ca->cert_pem() + one, kNow + 2h + kCrlValidity + 1s),
            X509_V_ERR_CRL_HAS_EXPIRED);

  // A CA rollover: a CRL for each CA, the new one's too (empty lists would do as well).
  ASSERT_TRUE(ok(ca->start_rollover({}, later)));
  auto c = ca->issue_client("c", KeyType::ecdsa_p256, Seconds(86400) * 90, later);
  ASSERT_TRUE(ok(c));
  ASSERT_TRUE(ok(ca->update_crl({{a->id.serial_hex, kNow + 2h}}, later)));
  auto two = crl_serials(*ca->crl_pem());
  ASSERT_EQ(two.size(), 2u);
  EXPECT_NE(two[0].first, two[1].first) << "both CRLs from one CA";
  EXPECT_EQ(crl_verify_result(a->cert_pem, exported(), later + 1h), X509_V_ERR_CERT_REVOKED);
  EXPECT_EQ(crl_verify_result(b->cert_pem, exported(), later + 1h), X509_V_OK);
  EXPECT_EQ(crl_verify_result(c->cert_pem, exported(), later + 1h), X509_V_OK);
  ASSERT_TRUE(ok(ca->finish_rollover()));
  ASSERT_TRUE(ok(ca->update_crl({}, later + 1h)));
  EXPECT_EQ(crl_serials(*ca->crl_pem()).size(), 1u);
  EXPECT_EQ(crl_verify_result(c->cert_pem, exported(), later + 2h), X509_V_OK);
  EXPECT_NE(crl_verify_result(b->cert_pem, exported(), later + 2h), X509_V_OK);
}

// A crl.pem replaced by one another key signed (same issuer name) is not kept: re-signed.
TEST(LocalCa, CrlSignedByAnotherKeyIsReplaced) {
  og::test::TempDir tmp;
  auto ca = LocalCa::open_or_create(tmp / "ca", {}, kNow);
  auto other = LocalCa::open_or_create(tmp / "other", {}, kNow);
  ASSERT_TRUE(ok(ca) && ok(other));
  ASSERT_TRUE(ok(other->update_crl({}, kNow)));
  // The other CA was created in the same second: the same subject name, another key.
  ASSERT_EQ(X509_NAME_cmp(X509_get_subject_name(parse(ca->cert_pem()).get()),
                          X509_get_subject_name(parse(other->cert_pem()).get())),
            0);
  auto a = ca->issue_client("a", KeyType::ecdsa_p256, Seconds(86400) * 90, kNow);
  ASSERT_TRUE(ok(a));
  // As the gatekeeper sees a bundle with the wrong CRL: refused, not accepted.
  EXPECT_NE(crl_verify_result(a->cert_pem, ca->cert_pem() + *other->crl_pem(), kNow + 1h), X509_V_OK);
  ASSERT_TRUE(ok(og::write_file_atomic(ca->crl_path(), *other->crl_pem(), 0600)));
  ASSERT_TRUE(ok(ca->update_crl({}, kNow + 1h)));
  EXPECT_NE(*ca->crl_pem(), *other->crl_pem());
  EXPECT_EQ(crl_verify_result(a->cert_pem, ca->cert_pem() + *ca->crl_pem(), kNow + 1h), X509_V_OK);
}

TEST(PrivateFile, ModesAndTypes) {
  og::test::TempDir tmp;
  auto f = tmp / "secret";
  og::test::write_file(f, "value");
  ASSERT_EQ(::chmod(f.c_str(), 0600), 0);
  EXPECT_TRUE(ok(read_private_file(f)));
  ASSERT_EQ(::chmod(f.c_str(), 0400), 0);
  EXPECT_TRUE(ok(read_private_file(f)));
  for (mode_t m : {0604, 0660, 0644, 0666}) {
    ASSERT_EQ(::chmod(f.c_str(), m), 0);
    auto r = read_private_file(f);
    ASSERT_TRUE(refused(r)) << std::oct << m;
    EXPECT_EQ(r.error().message.find("value"), std::string::npos);
  }
  EXPECT_TRUE(refused(read_private_file(tmp.path())));  // a directory
  EXPECT_TRUE(refused(read_private_file(tmp / "absent")));
}

TEST(IdentifyPem, RefusesWhatIsNotACertificate) {
  EXPECT_TRUE(refused(identify_pem("")));
  EXPECT_TRUE(refused(identify_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")));
  EXPECT_TRUE(refused(identify_pem(std::string(70000, 'A'))));
}

}  // namespace
}  // namespace og::aop::test
