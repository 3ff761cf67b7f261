#include "aop/ca.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <set>
#include <system_error>

#include "originguard/atomic_file.hpp"

namespace og::aop {
namespace fs = std::filesystem;

namespace ossl {

std::string bio_text(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace ossl

const char* to_string(KeyType k) { return k == KeyType::ecdsa_p256 ? "ecdsa-p256" : "rsa-2048"; }

namespace {

constexpr std::size_t kMaxPemBytes = std::size_t{64} * 1024;

Failure ssl_fail(std::string_view what) { return fail(std::string(what) + ": " + ossl::last_error()); }

Result<ossl::Pkey> generate_key(KeyType k) {
  EVP_PKEY* p = k == KeyType::ecdsa_p256 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                         : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
  if (!p) return ssl_fail("generate key");
  return ossl::Pkey(p);
}

TimePoint asn1_to_time(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return TimePoint{};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string to_hex(const unsigned char* p, std::size_t n) {
  constexpr char hex[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += hex[p[i] >> 4];
    s += hex[p[i] & 15];
  }
  return s;
}

Result<CertIdentity> identity_of(X509* x) {
  CertIdentity id;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(x, EVP_sha256(), md, &len) != 1) return ssl_fail("certificate digest");
  id.fingerprint_sha256 = to_hex(md, len);
  ossl::Bignum bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr));
  if (!bn) return ssl_fail("certificate serial");
  char* h = BN_bn2hex(bn.get());
  if (!h) return ssl_fail("certificate serial");
  id.serial_hex = h;
  OPENSSL_free(h);
  std::transform(id.serial_hex.begin(), id.serial_hex.end(), id.serial_hex.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  id.not_after = asn1_to_time(X509_get0_notAfter(x));
  return id;
}

Result<std::string> key_pem(EVP_PKEY* k) {
  ossl::Bio b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return ssl_fail("encode private key");
  return ossl::bio_text(b.get());
}

Result<std::string> cert_pem_of(X509* x) {
  ossl::Bio b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_X509(b.get(), x) != 1) return ssl_fail("encode certificate");
  return ossl::bio_text(b.get());
}

Status add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ossl::Extension ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) return ssl_fail(std::string("add extension ") + value);
  return {};
}

struct CertSpec {
  std::string cn;
  TimePoint not_before, not_after;
  bool ca = false;
};

// A certificate for `subject_key` signed by `issuer_key` (self-signed when issuer is null).
Result<ossl::X509Ptr> build_cert(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key) {
  ossl::X509Ptr x(X509_new());
  if (!x || X509_set_version(x.get(), X509_VERSION_3) != 1) return ssl_fail("new certificate");
  // 127 random bits: positive, unique in practice, within RFC 5280's 20 octets.
  ossl::Bignum bn(BN_new());
  if (!bn || BN_rand(bn.get(), 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x.get())))
    return ssl_fail("certificate serial");
  if (!ASN1_TIME_set(X509_getm_notBefore(x.get()), std::chrono::system_clock::to_time_t(spec.not_before)) ||
      !ASN1_TIME_set(X509_getm_notAfter(x.get()), std::chrono::system_clock::to_time_t(spec.not_after)))
    return ssl_fail("certificate validity");
  X509_NAME* name = X509_get_subject_name(x.get());
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("originguard"), -1,
                                 -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1,
                                 -1, 0) != 1)
    return ssl_fail("certificate subject");
  X509* iss = issuer ? issuer : x.get();
  if (X509_set_issuer_name(x.get(), X509_get_subject_name(iss)) != 1) return ssl_fail("certificate issuer");
  if (X509_set_pubkey(x.get(), subject_key) != 1) return ssl_fail("certificate key");
  Status st;
  if (spec.ca) {
    if (!(st = add_ext(x.get(), iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"))) return fail(st.error());
    if (!(st = add_ext(x.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign"))) return fail(st.error());
  } else {
    if (!(st = add_ext(x.get(), iss, NID_basic_constraints, "critical,CA:FALSE"))) return fail(st.error());
    const char* ku =
        EVP_PKEY_is_a(subject_key, "RSA") ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature";
    if (!(st = add_ext(x.get(), iss, NID_key_usage, ku))) return fail(st.error());
    if (!(st = add_ext(x.get(), iss, NID_ext_key_usage, "clientAuth"))) return fail(st.error());
  }
  if (!(st = add_ext(x.get(), iss, NID_subject_key_identifier, "hash"))) return fail(st.error());
  if (issuer && !(st = add_ext(x.get(), iss, NID_authority_key_identifier, "keyid:always"))) return fail(st.error());
  if (X509_sign(x.get(), issuer_key, EVP_sha256()) <= 0) return ssl_fail("sign certificate");
  return x;
}

bool exists_nofollow(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

Status write_private(const fs::path& p, std::string_view data) { return write_file_atomic(p, data, 0600); }

std::string serial_hex_of(const ASN1_INTEGER* a) {
  ossl::Bignum bn(ASN1_INTEGER_to_BN(a, nullptr));
  if (!bn) return {};
  char* h = BN_bn2hex(bn.get());
  if (!h) return {};
  std::string s = h;
  OPENSSL_free(h);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::vector<ossl::X509Crl> parse_crls(std::string_view pem) {
  std::vector<ossl::X509Crl> out;
  ossl::Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  while (b)
    if (X509_CRL* c = PEM_read_bio_X509_CRL(b.get(), nullptr, nullptr, nullptr))
      out.emplace_back(c);
    else
      break;
  ERR_clear_error();
  return out;
}

ossl::Asn1Time asn1_time(TimePoint t) {
  return ossl::Asn1Time(ASN1_TIME_set(nullptr, std::chrono::system_clock::to_time_t(t)));
}

// Is `crl` still what update_crl() would publish for `ca`: its issuer, its signature, valid now
// with more than kCrlResignBelow left, listing exactly `want`?
bool crl_fits(X509_CRL* crl, X509* ca, const std::set<std::string>& want, TimePoint now) {
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0) return false;
  if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1) {
    ERR_clear_error();
    return false;
  }
  const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl);
  if (!next || asn1_to_time(X509_CRL_get0_lastUpdate(crl)) > now || asn1_to_time(next) - now <= kCrlResignBelow)
    return false;
  std::set<std::string> have;
  STACK_OF(X509_REVOKED)* revs = X509_CRL_get_REVOKED(crl);
  for (int i = 0; revs && i < sk_X509_REVOKED_num(revs); ++i)
    have.insert(serial_hex_of(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revs, i))));
  return have == want;
}

Result<std::string> sign_crl(X509* ca, EVP_PKEY* ca_key, const std::vector<RevokedCert>& revoked, TimePoint now) {
  ossl::X509Crl crl(X509_CRL_new());
  if (!crl || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca)) != 1)
    return ssl_fail("new CRL");
  // lastUpdate a little in the past, like the certificates: a gatekeeper whose clock is a
  // little behind must not find the CRL "not yet valid" (which refuses everyone).
  auto last = asn1_time(now - std::chrono::minutes(5));
  auto next = asn1_time(now + kCrlValidity);
  if (!last || !next || X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1)
    return ssl_fail("CRL validity");
  for (const auto& r : revoked) {
    BIGNUM* raw = nullptr;
    if (BN_hex2bn(&raw, r.serial_hex.c_str()) == 0) return fail("CRL: bad serial " + r.serial_hex);
    ossl::Bignum bn(raw);
    ossl::Asn1Integer serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    auto when = asn1_time(r.revoked_at);
    ossl::Revoked rev(X509_REVOKED_new());
    if (!serial || !when || !rev || X509_REVOKED_set_serialNumber(rev.get(), serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(rev.get(), when.get()) != 1 || X509_CRL_add0_revoked(crl.get(), rev.get()) != 1)
      return ssl_fail("CRL entry");
    (void)rev.release();  // the CRL owns it now
  }
  // crlNumber must grow with each CRL (RFC 5280 5.2.3): the signing time does.
  ossl::Asn1Integer number(ASN1_INTEGER_new());
  if (!number || ASN1_INTEGER_set_int64(number.get(), std::chrono::system_clock::to_time_t(now)) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1)
    return ssl_fail("CRL number");
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, ca, nullptr, nullptr, crl.get(), 0);
  ossl::Extension aki(X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!aki || X509_CRL_add_ext(crl.get(), aki.get(), -1) != 1) return ssl_fail("CRL authority key identifier");
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), ca_key, EVP_sha256()) <= 0) return ssl_fail("sign CRL");
  ossl::Bio b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_X509_CRL(b.get(), crl.get()) != 1) return ssl_fail("encode CRL");
  return ossl::bio_text(b.get());
}

}  // namespace

Result<CertIdentity> identify_pem(std::string_view pem) {
  if (pem.size() > kMaxPemBytes) return fail("certificate larger than " + std::to_string(kMaxPemBytes) + " bytes");
  ossl::Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::X509Ptr x(b ? PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!x) {
    ERR_clear_error();
    return fail("not a PEM certificate");
  }
  return identity_of(x.get());
}

std::optional<TimePoint> crl_next_update(std::string_view pem) {
  std::optional<TimePoint> out;
  for (const auto& c : parse_crls(pem)) {
    const ASN1_TIME* t = X509_CRL_get0_nextUpdate(c.get());
    const TimePoint next = t ? asn1_to_time(t) : TimePoint{};  // none or unreadable: as expired
    if (!out || next < *out) out = next;
  }
  return out;
}

Status check_private_dir(const fs::path& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return fail_errno(dir.string());
  if (!S_ISDIR(st.st_mode)) return fail(dir.string() + ": not a directory (symlinks are refused)");
  if ((st.st_mode & 077) != 0)
    return fail(dir.string() + ": mode " + std::to_string((st.st_mode >> 6) & 7) +
                std::to_string((st.st_mode >> 3) & 7) + std::to_string(st.st_mode & 7) +
                " lets others in; expected 0700");
  if (st.st_uid != ::geteuid())
    return fail(dir.string() + ": owned by uid " + std::to_string(st.st_uid) + ", expected uid " +
                std::to_string(::geteuid()));
  return {};
}

Result<std::string> read_private_file(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ELOOP) return fail(file.string() + ": is a symlink (refused)");
    return fail_errno(file.string());
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_errno("stat " + file.string());
  if (!S_ISREG(st.st_mode)) return fail(file.string() + ": not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(file.string() + ": mode " + mode + " lets others read it; expected 0600 or stricter");
  }
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return fail(file.string() + ": owned by uid " + std::to_string(st.st_uid) + ", expected root or uid " +
                std::to_string(::geteuid()));
  if (st.st_size > static_cast<off_t>(kMaxPemBytes)) return fail(file.string() + ": larger than 64 KiB");
  std::string out(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read " + file.string());
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return out;
}

Result<std::unique_ptr<LocalCa::Pair>> LocalCa::load_pair(const fs::path& dir, std::string_view stem) {
  auto key_text = read_private_file(dir / (std::string(stem) + ".key"));
  if (!key_text) return fail(key_text.error());
  auto p = std::make_unique<Pair>();
  {
    ossl::Bio b(BIO_new_mem_buf(key_text->data(), static_cast<int>(key_text->size())));
    p->key.reset(b ? PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr) : nullptr);
    OPENSSL_cleanse(key_text->data(), key_text->size());
    if (!p->key) return ssl_fail((dir / (std::string(stem) + ".key")).string() + ": not a PEM private key");
  }
  fs::path cert_path = dir / (std::string(stem) + ".pem");
  auto cert_text = read_private_file(cert_path);
  if (!cert_text) return fail(cert_text.error());
  ossl::Bio b(BIO_new_mem_buf(cert_text->data(), static_cast<int>(cert_text->size())));
  p->cert.reset(b ? PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!p->cert) return ssl_fail(cert_path.string() + ": not a PEM certificate");
  if (X509_check_private_key(p->cert.get(), p->key.get()) != 1)
    return ssl_fail(cert_path.string() + ": does not match " + std::string(stem) + ".key");
  return p;
}

Result<std::unique_ptr<LocalCa::Pair>> LocalCa::create_pair(const fs::path& dir, std::string_view stem,
                                                            const CaOptions& opts, TimePoint now) {
  auto key = generate_key(opts.key_type);
  if (!key) return fail(key.error());
  CertSpec spec;
  spec.cn = opts.name + " " + format_utc(now);
  spec.not_before = now - std::chrono::minutes(5);  // tolerate small clock skew at the edge
  spec.not_after = now + opts.lifetime;
  spec.ca = true;
  auto cert = build_cert(spec, key->get(), nullptr, key->get());
  if (!cert) return fail(cert.error());
  auto kp = key_pem(key->get());
  if (!kp) return fail(kp.error());
  auto cp = cert_pem_of(cert->get());
  if (!cp) return fail(cp.error());
  // Key first: a crash before the certificate is written leaves no usable half (open_or_create
  // makes a fresh pair when the certificate is missing).
  Status st = write_private(dir / (std::string(stem) + ".key"), *kp);
  OPENSSL_cleanse(kp->data(), kp->size());
  if (!st) return fail(st.error());
  if (!(st = write_private(dir / (std::string(stem) + ".pem"), *cp))) return fail(st.error());
  auto p = std::make_unique<Pair>();
  p->key = std::move(*key);
  p->cert = std::move(*cert);
  return p;
}

Result<LocalCa> LocalCa::open_or_create(const fs::path& dir, const CaOptions& opts, TimePoint now) {
  std::error_code ec;
  if (!exists_nofollow(dir)) {
    if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return fail_errno("mkdir " + dir.string());
  }
  if (auto st = check_private_dir(dir); !st) return fail(st.error());
  remove_stale_temps(dir / "ca.key");
  remove_stale_temps(dir / "ca.pem");
  if (!exists_nofollow(dir / "ca.pem") && !exists_nofollow(dir / "ca-next.pem")) {
    auto pair = create_pair(dir, "ca", opts, now);
    if (!pair) return fail(pair.error().context("create CA in " + dir.string()));
    LocalCa ca(dir, std::move(*pair), nullptr);
    if (auto st = ca.write_bundle(); !st) return fail(st.error());
    return ca;
  }
  return load(dir);
}

Result<LocalCa> LocalCa::load(const fs::path& dir) {
  if (auto st = check_private_dir(dir); !st) return fail(st.error());
  // A finish_rollover interrupted between its two renames: the key moved, the certificate not.
  if (!exists_nofollow(dir / "ca-next.key") && exists_nofollow(dir / "ca-next.pem")) {
    if (::rename((dir / "ca-next.pem").c_str(), (dir / "ca.pem").c_str()) != 0)
      return fail_errno("complete rollover in " + dir.string());
  }
  auto cur = load_pair(dir, "ca");
  if (!cur) return fail(cur.error());
  std::unique_ptr<Pair> next;
  if (exists_nofollow(dir / "ca-next.pem")) {
    auto n = load_pair(dir, "ca-next");
    if (!n) return fail(n.error());
    next = std::move(*n);
  }
  LocalCa ca(dir, std::move(*cur), std::move(next));
  if (auto st = ca.write_bundle(); !st) return fail(st.error());
  return ca;
}

std::string LocalCa::cert_pem() const {
  auto p = cert_pem_of(cur_->cert.get());
  return p ? *p : std::string();
}

std::string LocalCa::next_cert_pem() const {
  if (!next_) return {};
  auto p = cert_pem_of(next_->cert.get());
  return p ? *p : std::string();
}

CertIdentity LocalCa::identity() const {
  auto id = identity_of(cur_->cert.get());
  return id ? *id : CertIdentity{};
}

Status LocalCa::write_bundle() const {
  std::string bundle = cert_pem() + next_cert_pem();
  // Rewritten only when it changes: a watcher (the gatekeeper's reload) sees real changes only.
  auto old = read_private_file(bundle_path());
  if (old && *old == bundle) return {};
  return write_file_atomic(bundle_path(), bundle, 0600);
}

Result<IssuedCert> LocalCa::issue_client(std::string_view common_name, KeyType key_type, Seconds lifetime,
                                         TimePoint now) const {
  const Pair& signer = next_ ? *next_ : *cur_;
  TimePoint ca_end = asn1_to_time(X509_get0_notAfter(signer.cert.get()));
  if (ca_end <= now) return fail("the CA in " + dir_.string() + " has expired; roll it over first");
  auto key = generate_key(key_type);
  if (!key) return fail(key.error());
  CertSpec spec;
  spec.cn = std::string(common_name);
  spec.not_before = now - std::chrono::minutes(5);
  spec.not_after = std::min(now + lifetime, ca_end);
  auto cert = build_cert(spec, key->get(), signer.cert.get(), signer.key.get());
  if (!cert) return fail(cert.error());
  IssuedCert out;
  auto kp = key_pem(key->get());
  if (!kp) return fail(kp.error());
  out.key_pem = std::move(*kp);
  auto cp = cert_pem_of(cert->get());
  if (!cp) return fail(cp.error());
  out.cert_pem = std::move(*cp);
  auto id = identity_of(cert->get());
  if (!id) return fail(id.error());
  out.id = std::move(*id);
  return out;
}

Status LocalCa::update_crl(const std::vector<RevokedCert>& revoked, TimePoint now) const {
  std::set<std::string> want;
  for (const auto& r : revoked) want.insert(r.serial_hex);
  std::vector<const Pair*> cas{cur_.get()};
  if (next_) cas.push_back(next_.get());
  if (exists_nofollow(crl_path())) {
    auto old = read_private_file(crl_path());
    if (!old) return fail(old.error());
    auto crls = parse_crls(*old);
    bool fits = crls.size() == cas.size();
    for (std::size_t i = 0; fits && i < cas.size(); ++i) fits = crl_fits(crls[i].get(), cas[i]->cert.get(), want, now);
    if (fits) return {};
  }
  std::string text;
  for (const Pair* ca : cas) {
    auto pem = sign_crl(ca->cert.get(), ca->key.get(), revoked, now);
    if (!pem) return fail(pem.error().context("CRL of the CA in " + dir_.string()));
    text += *pem;
  }
  return write_private(crl_path(), text);
}

Result<std::string> LocalCa::crl_pem() const {
  if (!exists_nofollow(crl_path())) return std::string();
  return read_private_file(crl_path());
}

Status LocalCa::start_rollover(const CaOptions& opts, TimePoint now) {
  if (next_) return {};
  auto pair = create_pair(dir_, "ca-next", opts, now);
  if (!pair) return fail(pair.error().context("create the new CA in " + dir_.string()));
  next_ = std::move(*pair);
  return write_bundle();
}

Status LocalCa::finish_rollover() {
  if (!next_) return fail("no CA rollover under way in " + dir_.string());
  // Key, then certificate: load() completes the second rename after a crash between them.
  if (::rename((dir_ / "ca-next.key").c_str(), (dir_ / "ca.key").c_str()) != 0)
    return fail_errno("rename ca-next.key in " + dir_.string());
  if (::rename((dir_ / "ca-next.pem").c_str(), (dir_ / "ca.pem").c_str()) != 0)
    return fail_errno("rename ca-next.pem in " + dir_.string());
  cur_ = std::move(next_);
  return write_bundle();
}

}  // namespace og::aop
