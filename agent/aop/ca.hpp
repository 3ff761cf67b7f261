// The zone's local CA: the gatekeeper trusts it, it signs the client certificates the edge
// presents. Keys are generated here and never leave the machine (except the client key, which
// Cloudflare's upload API requires).
//
// Layout of ca_dir (mode 0700, owned by the agent's user):
//   ca.key  ca.pem             the CA in force (key mode 0600)
//   ca-next.key ca-next.pem    a rollover's new CA, present between start and finish
//   bundle.pem                 what the gatekeeper trusts: ca.pem, plus ca-next.pem during a rollover
//   crl.pem                    one CRL per CA of the bundle (update_crl), re-signed only when needed
// Every file is written atomically (temp + fsync + rename), keys with mode 0600 from the start.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aop/ossl.hpp"
#include "originguard/duration.hpp"
#include "originguard/result.hpp"

namespace og::aop {

enum class KeyType { ecdsa_p256, rsa_2048 };
[[nodiscard]] const char* to_string(KeyType k);

using TimePoint = std::chrono::system_clock::time_point;

// A certificate's identity as the rotation records it.
struct CertIdentity {
  std::string serial_hex;          // lower-case hex, no leading zeros
  std::string fingerprint_sha256;  // lower-case hex of the DER's SHA-256
  TimePoint not_after;
};

struct IssuedCert {
  std::string key_pem;  // PKCS#8
  std::string cert_pem;
  CertIdentity id;
};

// The earliest nextUpdate of the CRLs in `pem` (nullopt: no CRL in it).
[[nodiscard]] std::optional<TimePoint> crl_next_update(std::string_view pem);

// Identity of a PEM certificate (first one in the text); untrusted input is fine.
[[nodiscard]] Result<CertIdentity> identify_pem(std::string_view pem);

// Refuses a directory that is not a directory, is group/other accessible, or is owned by
// anyone but the effective user; refuses a symlink.
[[nodiscard]] Status check_private_dir(const std::filesystem::path& dir);
// Reads a secret file: refused unless it is a regular file (not a symlink) with no group/other
// permission bits, owned by root or the effective user. The file's content never appears in
// an error.
[[nodiscard]] Result<std::string> read_private_file(const std::filesystem::path& file);

// A certificate the zone's CRL lists: retired at the API and past its grace.
struct RevokedCert {
  std::string serial_hex;  // lower-case hex, no leading zeros
  TimePoint revoked_at;
  bool operator==(const RevokedCert&) const = default;
};

// The CRLs' validity: nextUpdate is this far ahead; update_crl() re-signs once less than
// kCrlResignBelow remains, so an agent that cannot re-sign has days (warned) before the
// gatekeeper refuses every certificate of the zone (an expired CRL fails closed).
inline constexpr Seconds kCrlValidity{Seconds(86400) * 7};
inline constexpr Seconds kCrlResignBelow{Seconds(86400) * 4};

struct CaOptions {
  KeyType key_type = KeyType::ecdsa_p256;
  Seconds lifetime{Seconds(86400) * 3650};  // the CA's validity (10 years)
  std::string name = "originguard AOP CA";  // subject CN prefix
};

class LocalCa {
 public:
  // Loads the CA in `dir`, or creates it (directory 0700, key 0600) when the directory has
  // no CA yet. An existing directory or key with loose permissions is refused, never fixed.
  static Result<LocalCa> open_or_create(const std::filesystem::path& dir, const CaOptions& opts, TimePoint now);
  // Loads an existing CA only (a missing one is an error).
  static Result<LocalCa> load(const std::filesystem::path& dir);

  // A client key and certificate (clientAuth, `lifetime` from `now`), signed by the newest CA
  // (the rollover's new one while a rollover is under way), never beyond that CA's expiry.
  [[nodiscard]] Result<IssuedCert> issue_client(std::string_view common_name, KeyType key_type, Seconds lifetime,
                                                TimePoint now) const;

  // Rollover, step 1: a new CA next to the old one; bundle.pem holds both, so the gatekeeper
  // (reloaded) trusts certificates from either during the overlap. Idempotent while under way.
  [[nodiscard]] Status start_rollover(const CaOptions& opts, TimePoint now);
  // Rollover, step 2: the new CA becomes ca.key/ca.pem, the old one is removed, bundle.pem
  // holds the new CA only. Call once no certificate from the old CA is in use.
  [[nodiscard]] Status finish_rollover();
  [[nodiscard]] bool rollover_in_progress() const { return next_ != nullptr; }

  // crl.pem: one CRL per CA in the bundle (both during a rollover, each signed by its CA, even
  // when empty), listing `revoked`. Re-signed only when the CAs, the list, or a CRL's validity
  // (less than kCrlResignBelow left, or lastUpdate ahead of `now`) call for it, so that the
  // exported bundle (and the gatekeeper's reload) changes only then. Serials are 127-bit random,
  // so every CRL lists the whole set: a serial in the other CA's CRL matches nothing there.
  [[nodiscard]] Status update_crl(const std::vector<RevokedCert>& revoked, TimePoint now) const;
  // The PEM text of crl.pem ("" when absent) and the earliest nextUpdate in it (nullopt: none).
  [[nodiscard]] Result<std::string> crl_pem() const;
  [[nodiscard]] std::filesystem::path crl_path() const { return dir_ / "crl.pem"; }

  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  [[nodiscard]] std::filesystem::path bundle_path() const { return dir_ / "bundle.pem"; }
  [[nodiscard]] std::string cert_pem() const;       // the CA in force
  [[nodiscard]] std::string next_cert_pem() const;  // "" without a rollover
  [[nodiscard]] CertIdentity identity() const;

 private:
  struct Pair {
    ossl::Pkey key;
    ossl::X509Ptr cert;
  };
  LocalCa(std::filesystem::path dir, std::unique_ptr<Pair> cur, std::unique_ptr<Pair> next)
      : dir_(std::move(dir)), cur_(std::move(cur)), next_(std::move(next)) {}
  static Result<std::unique_ptr<Pair>> load_pair(const std::filesystem::path& dir, std::string_view stem);
  static Result<std::unique_ptr<Pair>> create_pair(const std::filesystem::path& dir, std::string_view stem,
                                                   const CaOptions& opts, TimePoint now);
  [[nodiscard]] Status write_bundle() const;

  std::filesystem::path dir_;
  std::unique_ptr<Pair> cur_;
  std::unique_ptr<Pair> next_;
};

}  // namespace og::aop
