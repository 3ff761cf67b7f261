// One generation of TLS policy: an SSL_CTX per [[host]]. Connections start on the default
// host's context (else the first host's); its client-hello callback picks the host by SNI
// (no/unknown SNI → refused unless default_host), switches the SSL to that host's context
// and verify mode, and owns session resumption (ticket keys per host; a session whose
// hostname differs from the SNI is not resumed). Immutable once built; a reload builds a new
// generation and old connections keep theirs through a shared_ptr.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "host_match.hpp"
#include "originguard/cidr.hpp"
#include "ssl_util.hpp"
#include "verdict_cache.hpp"

namespace og::gk {

namespace embedded {
// Cloudflare's global origin-pull CA (gatekeeper/data/origin-pull-ca.pem), the default client_ca.
extern const std::string_view kOriginPullCaPem;
}  // namespace embedded

// Wall-clock seconds for validity decisions (chain verification and the verdict cache use the
// same instant); tests pass a fake one.
using WallClock = std::function<std::time_t()>;
[[nodiscard]] WallClock system_wall_clock();

// Client chains: at most this many intermediates between the leaf and a trusted CA (OpenSSL's
// verify depth). The origin-pull chain has none (leaf, then the CA).
inline constexpr int kMaxClientChainDepth = 5;

enum class VerifyState : std::uint8_t { none, success, failed };
[[nodiscard]] const char* to_string(VerifyState v);  // nginx's $ssl_client_verify words

struct HostStats {
  std::atomic<std::uint64_t> handshakes_ok{0};
  std::atomic<std::uint64_t> refused_no_cert{0};
  std::atomic<std::uint64_t> refused_verify{0};
  std::atomic<std::uint64_t> refused_pin{0};
  std::atomic<std::uint64_t> refused_subject{0};
  std::atomic<std::uint64_t> refused_edge_ip{0};
  std::atomic<std::uint64_t> verdict_cache_hits{0};
  std::atomic<std::int64_t> active{0};  // open connections of the host, across generations
};

// Per-host counters that outlive a policy generation, keyed by the host's first name: a reload
// hands each new HostPolicy the counters of the host it replaces, so they do not restart from
// zero and connections of the old and new generation count together.
class HostStatsRegistry {
 public:
  [[nodiscard]] std::shared_ptr<HostStats> acquire(const std::string& key);
  // Forgets hosts that `set` no longer has (their old policies keep their counters alive).
  void retain_only(const class PolicySet& set);
  [[nodiscard]] std::size_t size() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<HostStats>, std::less<>> by_key_;
};

class HostPolicy {
 public:
  HostConfig cfg;
  std::size_t index = 0;
  SslCtxPtr ctx;
  SslCtxPtr upstream_ctx;  // client context when upstream_tls
  std::array<unsigned char, 16> ticket_name{};
  std::array<unsigned char, 32> ticket_aes{};
  std::array<unsigned char, 32> ticket_hmac{};
  std::vector<Sha256> spki_pins, cert_pins;
  bool global_ca = false;  // the client CAs include the global origin-pull CA shared by all zones
  // An "aop:" host whose bundle holds the global origin-pull CA (a zone's migration): a leaf it
  // issued directly is accepted without a CRL (we have none for it); every other leaf still needs
  // its CA's CRL.
  X509Ptr crl_exempt_issuer;
  std::vector<std::time_t> cert_not_after;
  // nextUpdate of each CRL (nullopt: it has none; 0: unreadable). After it, X509_verify_cert
  // refuses every chain ("CRL has expired"), and so must the verdict cache.
  std::vector<std::pair<std::filesystem::path, std::optional<std::time_t>>> crl_next_update;
  std::time_t crls_valid_until = std::numeric_limits<std::time_t>::max();  // the earliest of them
  WallClock clock;
  mutable VerdictCache cache{1024};
  // Shared with the registry and the host's policies of other generations. A reference, so
  // `host->stats.handshakes_ok.fetch_add(...)` reads the same on a const HostPolicy.
  std::shared_ptr<HostStats> stats_owner;
  HostStats& stats;
  HostPolicy(std::size_t cache_entries, std::shared_ptr<HostStats> shared_stats)
      : cache(cache_entries), stats_owner(std::move(shared_stats)), stats(*stats_owner) {}
  HostPolicy(const HostPolicy&) = delete;
  HostPolicy& operator=(const HostPolicy&) = delete;
  // Key of the host's counters in a HostStatsRegistry.
  [[nodiscard]] std::string stats_key() const { return cfg.label(); }
};

// Per-connection TLS facts, attached to the SSL as ex_data (owned by the connection).
struct ConnTls {
  const class PolicySet* set = nullptr;
  const HostPolicy* host = nullptr;
  std::string sni;            // normalised SNI as sent (empty: none)
  bool peer_is_edge = false;  // source address is in the edge range snapshot
  VerifyState verify = VerifyState::none;
  std::string verify_reason;
  bool verdict_cached = false;
  std::string refusal;  // why the handshake was refused in a callback (for the log)
  // Called when a complete ClientHello is in (before it is judged): the connection's
  // client_hello_timeout gives way to its handshake_timeout.
  std::function<void()> client_hello_arrived;
};

[[nodiscard]] ConnTls* conn_of(const SSL* ssl);
// The normalised SNI a session was established for ("" for none).
[[nodiscard]] std::string session_sni(SSL_SESSION* sess);
void attach(SSL* ssl, ConnTls* conn);

// Whether the client failed its host's certificate policy (a failure mode applies).
[[nodiscard]] bool client_refused(const ConnTls& c);

// Verifies a client chain again outside a handshake (an established connection held to a new
// policy generation): the host's CA store and CRLs, the context's depth, pins, subject/SAN, as
// the handshake's callback does, without the verdict cache. `reason` says why on failure.
// mtls = "off" or no certificate: none.
[[nodiscard]] VerifyState verify_client_chain(const HostPolicy& host, X509* leaf, STACK_OF(X509) * untrusted,
                                              std::string& reason);

// After a failed handshake: names the refusals OpenSSL makes itself from the host's limits
// ("client_chain_too_large": a client Certificate message over max_client_chain_bytes, refused
// before a certificate was parsed), in conn.refusal, and counts them for the host. `err` is
// the OpenSSL error that ended the handshake. False when it was none of those.
bool explain_handshake_error(const SSL* ssl, unsigned long err, ConnTls& conn);

// What a connection does once its handshake has completed.
enum class Admission : std::uint8_t {
  serve,          // proxy it
  refuse_client,  // the client failed its host's certificate policy: the host's on_failure applies
  drop,           // closed without a response (conn.refusal says why)
};
// Decides for a completed handshake. A resumed session must have been made for the SNI now
// asked for (else refusal "cross_host_resumption"); its stored verify result is the verdict.
[[nodiscard]] Admission admit(SSL* ssl, ConnTls& conn);

// Pin rule: some certificate of the verified chain (leaf, intermediates or root) has a listed
// SPKI or certificate hash. No pins configured: true.
[[nodiscard]] bool pins_match(const std::vector<Sha256>& chain_spki, const std::vector<Sha256>& chain_cert,
                              const std::vector<Sha256>& spki_pins, const std::vector<Sha256>& cert_pins);
// Subject rule: any listed CN equals the leaf CN, or any listed name is one of its DNS SANs
// (case-insensitive). Nothing configured: true.
[[nodiscard]] bool subject_match(const std::string& cn, const std::vector<std::string>& sans,
                                 const std::vector<std::string>& want_cn, const std::vector<std::string>& want_san);

// Verdict cache key: SHA-256 over the DER of the leaf and then each untrusted certificate as
// presented. nullopt when anything cannot be encoded or hashed (the cache is then skipped:
// an all-zero key would be shared by every such chain).
[[nodiscard]] std::optional<Sha256> chain_key(X509* leaf, STACK_OF(X509) * untrusted);

// Base64 SHA-256 pin (as written in config) to bytes.
[[nodiscard]] std::optional<Sha256> decode_pin(std::string_view b64);

class PolicySet {
 public:
  // Loads every certificate, key, CA and CRL; the error names the host and the file. Host
  // counters come from `stats` (kept across reloads); without it each host gets fresh ones.
  static Result<std::shared_ptr<const PolicySet>> build(const GatekeeperConfig& cfg, HostStatsRegistry& stats,
                                                        const WallClock& clock);
  static Result<std::shared_ptr<const PolicySet>> build(const GatekeeperConfig& cfg, HostStatsRegistry& stats);
  static Result<std::shared_ptr<const PolicySet>> build(const GatekeeperConfig& cfg);

  [[nodiscard]] const GatekeeperConfig& config() const { return cfg_; }
  // The context every connection starts on (SSL_new).
  [[nodiscard]] SSL_CTX* dispatch_ctx() const { return dispatch_.get(); }
  [[nodiscard]] const std::vector<std::unique_ptr<HostPolicy>>& hosts() const { return hosts_; }
  // `name` normalised; falls back to default_host when configured.
  [[nodiscard]] const HostPolicy* select(std::optional<std::string_view> name) const;
  // Exact policy for a name (no default fallback): used for the HTTP Host check.
  [[nodiscard]] const HostPolicy* find(std::string_view name) const;
  [[nodiscard]] const HostTable& table() const { return table_; }
  // Every host has require_edge_ip: a source outside the edge snapshot can be refused at
  // accept, before any TLS work (no host would serve it).
  [[nodiscard]] bool every_host_requires_edge_ip() const { return every_host_requires_edge_ip_; }

 private:
  GatekeeperConfig cfg_;
  SslCtxPtr dispatch_;
  std::vector<std::unique_ptr<HostPolicy>> hosts_;
  HostTable table_;
  const HostPolicy* default_ = nullptr;
  bool every_host_requires_edge_ip_ = false;
};

}  // namespace og::gk
