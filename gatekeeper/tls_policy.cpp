#include "tls_policy.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>

#include "originguard/log.hpp"
#include "sni.hpp"
#include "tls_libctx.hpp"

namespace og::gk {

const char* to_string(VerifyState v) {
  switch (v) {
    case VerifyState::none:
      return "NONE";
    case VerifyState::success:
      return "SUCCESS";
    case VerifyState::failed:
      return "FAILED";
  }
  return "?";
}

namespace {

int conn_index() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::time_t asn1_time_t(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return timegm(&tm);
}

// ---- callbacks on the starting context ------------------------------------------------

Sha256 session_context(const HostPolicy& host, const std::string& sni) {
  std::string id = host.cfg.label();
  id += '\0';
  id += sni;
  return sha256({reinterpret_cast<const std::uint8_t*>(id.data()), id.size()});
}

// OpenSSL keeps the SNI in a new session (SSL_SESSION_get0_hostname) only when a servername
// callback accepts it; without one, TLS 1.2 session-id sessions carried no SNI and admit()
// refused their resumption on the very host that made them. The host itself was chosen in
// the client-hello callback, which runs earlier.
int on_servername(SSL* /*ssl*/, int* /*alert*/, void* /*arg*/) { return SSL_TLSEXT_ERR_OK; }

int on_client_hello(SSL* ssl, int* alert, void* /*arg*/) {
  ConnTls* conn = conn_of(ssl);
  if (!conn || !conn->set) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  if (conn->client_hello_arrived) conn->client_hello_arrived();
  const unsigned char* ext = nullptr;
  std::size_t ext_len = 0;
  std::optional<std::string> sni;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &ext_len) == 1) {
    auto raw = parse_sni_extension({ext, ext_len});
    if (raw) sni = normalize_host(*raw);
    if (!sni) {
      conn->refusal = "malformed_sni";
      *alert = SSL_AD_DECODE_ERROR;
      return SSL_CLIENT_HELLO_ERROR;
    }
  }
  const HostPolicy* host = conn->set->select(sni ? std::optional<std::string_view>(*sni) : std::nullopt);
  if (!host) {
    conn->refusal = sni ? "unknown_sni" : "no_sni";
    conn->sni = sni.value_or("");
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_CLIENT_HELLO_ERROR;
  }
  conn->sni = sni.value_or("");
  conn->host = host;
  if (host->cfg.require_edge_ip && !conn->peer_is_edge) {
    conn->refusal = "not_edge_ip";
    host->stats.refused_edge_ip.fetch_add(1, std::memory_order_relaxed);
    *alert = SSL_AD_ACCESS_DENIED;
    return SSL_CLIENT_HELLO_ERROR;
  }
  // SSL_set_SSL_CTX swaps certificates, CA store, client CA names, session id context and
  // the certificate-verify callback (read from the SSL's context), but not what SSL_new
  // copied from the starting context: verify mode, per-certificate verify callback, verify
  // depth (X509_VERIFY_PARAM), max certificate list. Everything verification depends on is
  // set here for the chosen host, whatever the starting context was.
  if (SSL_set_SSL_CTX(ssl, host->ctx.get()) != host->ctx.get()) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  int mode = SSL_VERIFY_NONE;
  if (host->cfg.mtls != Mtls::off) {
    mode = SSL_VERIFY_PEER;
    if (host->cfg.mtls == Mtls::required && host->cfg.on_failure == OnFailure::alert)
      mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  SSL_set_verify(ssl, mode, nullptr);
  SSL_set_verify_depth(ssl, kMaxClientChainDepth);
  // Refused when its length is read: a junk chain costs no certificate parsing.
  SSL_set_max_cert_list(ssl, static_cast<long>(conn->set->config().max_client_chain_bytes));
  // Session id context per host and SNI: a session (id or ticket) resumes only under the name
  // it was made for; an offer made for another name is a cache miss and gets a full handshake.
  const Sha256 sid = session_context(*host, conn->sni);
  SSL_set_session_id_context(ssl, sid.data(), sid.size());
  if (!host->cfg.session_tickets) {
    SSL_set_options(ssl, SSL_OP_NO_TICKET);
    SSL_set_num_tickets(ssl, 0);  // TLS 1.3 would otherwise still send (stateful) tickets
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

int on_ticket_key(SSL* ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH], EVP_CIPHER_CTX* cctx,
                  EVP_MAC_CTX* hctx, int enc) {
  ConnTls* conn = conn_of(ssl);
  const HostPolicy* host = conn ? conn->host : nullptr;
  if (!host) return enc ? -1 : 0;
  // The host's own key only: a ticket minted for another host is "not found" → full handshake.
  if (!enc && std::memcmp(key_name, host->ticket_name.data(), 16) != 0) return 0;
  auto hmac = host->ticket_hmac;  // OSSL_PARAM wants non-const
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, hmac.data(), hmac.size()),
                         OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (enc) {
    std::memcpy(key_name, host->ticket_name.data(), 16);
    if (RAND_bytes(iv, 16) != 1) return -1;
    if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, host->ticket_aes.data(), iv) != 1) return -1;
  } else {
    if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, host->ticket_aes.data(), iv) != 1) return -1;
  }
  if (EVP_MAC_CTX_set_params(hctx, params) != 1) return -1;
  return 1;
}

// A session lives for its host's session_timeout. OpenSSL takes the timeout from the context
// the connection started on (the dispatch context), not from the host's: set it on the session.
void apply_session_timeout(const ConnTls* conn, SSL_SESSION* sess) {
  if (conn && conn->host && sess)
    SSL_SESSION_set_timeout(sess, static_cast<long>(conn->host->cfg.session_timeout.count()));
}

// TLS 1.2 session ids: the same, when the session enters the cache.
int on_new_session(SSL* ssl, SSL_SESSION* sess) {
  apply_session_timeout(conn_of(ssl), sess);
  return 0;  // no reference kept
}

// Tickets carry the SNI they were issued for as app data (TLS 1.2 tickets do not keep the
// hostname reliably), checked again when the ticket comes back.
int on_ticket_generate(SSL* ssl, void*) {
  ConnTls* conn = conn_of(ssl);
  SSL_SESSION* sess = SSL_get0_session(ssl);
  if (!conn || !sess) return 0;
  apply_session_timeout(conn, sess);  // before the ticket (and its lifetime hint) is made
  std::string tag = "sni=" + conn->sni;
  return SSL_SESSION_set1_ticket_appdata(sess, tag.data(), tag.size());
}

// A decrypted ticket is only used when the session was made for the SNI now asked for.
SSL_TICKET_RETURN on_ticket_decrypted(SSL* ssl, SSL_SESSION* sess, const unsigned char*, std::size_t,
                                      SSL_TICKET_STATUS status, void*) {
  switch (status) {
    case SSL_TICKET_FATAL_ERR_MALLOC:
    case SSL_TICKET_FATAL_ERR_OTHER:
      return SSL_TICKET_RETURN_ABORT;
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW: {
      ConnTls* conn = conn_of(ssl);
      if (!conn || !sess || session_sni(sess) != conn->sni) return SSL_TICKET_RETURN_IGNORE_RENEW;
      return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
    }
    default:
      return SSL_TICKET_RETURN_IGNORE_RENEW;
  }
}

// ---- callback on each host context: chain verification with the verdict cache ----------

enum class ChainRule { ok, pin, subject };

// The host's rules beyond the CA: pins on the verified chain's hashes, then subject/SAN of the leaf.
ChainRule chain_rules(const HostPolicy& host, const std::vector<Sha256>& spki, const std::vector<Sha256>& cert,
                      X509* leaf, std::string& reason) {
  if (!pins_match(spki, cert, host.spki_pins, host.cert_pins)) {
    reason = "no certificate of the chain matches the host's pins";
    return ChainRule::pin;
  }
  if ((!host.cfg.client_cn.empty() || !host.cfg.client_san.empty()) &&
      !subject_match(subject_cn(leaf), dns_sans(leaf), host.cfg.client_cn, host.cfg.client_san)) {
    reason = "client certificate subject/SAN not allowed";
    return ChainRule::subject;
  }
  return ChainRule::ok;
}

int on_verify_chain(X509_STORE_CTX* sctx, void* arg) {
  const auto* host = static_cast<const HostPolicy*>(arg);
  SSL* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  ConnTls* conn = ssl ? conn_of(ssl) : nullptr;
  if (!conn) return 0;
  const std::optional<Sha256> key = chain_key(X509_STORE_CTX_get0_cert(sctx), X509_STORE_CTX_get0_untrusted(sctx));
  const std::time_t now = host->clock();
  // X509_verify_cert checks validity at the instant the cache entries are judged by.
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(sctx), now);
  if (key && host->cache.lookup(*key, now)) {
    host->stats.verdict_cache_hits.fetch_add(1, std::memory_order_relaxed);
    conn->verify = VerifyState::success;
    conn->verdict_cached = true;
    X509_STORE_CTX_set_error(sctx, X509_V_OK);
    return 1;
  }
  bool ok = X509_verify_cert(sctx) == 1;
  std::string reason;
  if (!ok) {
    reason = X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx));
    host->stats.refused_verify.fetch_add(1, std::memory_order_relaxed);
  } else {
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(sctx);
    std::time_t not_before = 0, not_after = std::numeric_limits<std::time_t>::max();
    std::vector<Sha256> spki, cert;
    for (int i = 0; i < sk_X509_num(chain); ++i) {
      X509* x = sk_X509_value(chain, i);
      not_before = std::max(not_before, asn1_time_t(X509_get0_notBefore(x)));
      not_after = std::min(not_after, asn1_time_t(X509_get0_notAfter(x)));
      if (!host->spki_pins.empty())
        if (auto h = spki_sha256(x)) spki.push_back(*h);
      if (!host->cert_pins.empty())
        if (auto h = cert_sha256(x)) cert.push_back(*h);
    }
    switch (chain_rules(*host, spki, cert, X509_STORE_CTX_get0_cert(sctx), reason)) {
      case ChainRule::ok:
        break;
      case ChainRule::pin:
        ok = false;
        host->stats.refused_pin.fetch_add(1, std::memory_order_relaxed);
        break;
      case ChainRule::subject:
        ok = false;
        host->stats.refused_subject.fetch_add(1, std::memory_order_relaxed);
        break;
    }
    if (ok && key)
      host->cache.insert(*key, not_before, std::min(not_after, host->crls_valid_until));
    else if (!ok)
      X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
  }
  conn->verify = ok ? VerifyState::success : VerifyState::failed;
  conn->verify_reason = reason;
  if (ok) return 1;
  // The alert failure mode fails the handshake here; the others finish it and answer after.
  return host->cfg.on_failure == OnFailure::alert ? 0 : 1;
}

// The host whose store this is (set for "aop:" hosts whose bundle holds the global CA).
int store_host_index() {
  static const int idx = X509_STORE_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

// Verification steps of such a host: a leaf issued directly by the global origin-pull CA has no
// CRL from us ("unable to get certificate CRL"); that one error, for that one issuer (the very
// certificate in the store, so a look-alike CA with its name is refused for its signature), is
// not an error. Any other leaf, a zone CA's included, still needs its CRL.
int on_verify_step(int ok, X509_STORE_CTX* sctx) {
  if (ok || X509_STORE_CTX_get_error(sctx) != X509_V_ERR_UNABLE_TO_GET_CRL || X509_STORE_CTX_get_error_depth(sctx) != 0)
    return ok;
  const auto* host =
      static_cast<const HostPolicy*>(X509_STORE_get_ex_data(X509_STORE_CTX_get0_store(sctx), store_host_index()));
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(sctx);
  if (!host || !host->crl_exempt_issuer || !chain || sk_X509_num(chain) != 2 ||
      X509_cmp(sk_X509_value(chain, 1), host->crl_exempt_issuer.get()) != 0)
    return ok;
  X509_STORE_CTX_set_error(sctx, X509_V_OK);
  return 1;
}

// ---- building -------------------------------------------------------------------------

Status add_ca_certs(X509_STORE* store, STACK_OF(X509_NAME) * names, const std::vector<X509Ptr>& certs) {
  for (const auto& c : certs) {
    if (X509_STORE_add_cert(store, c.get()) != 1) return fail("X509_STORE_add_cert: " + take_ssl_errors());
    // Owned until the list takes it (a failed push would otherwise leak it).
    X509NamePtr n(X509_NAME_dup(X509_get_subject_name(c.get())));
    if (!n || sk_X509_NAME_push(names, n.get()) == 0) return fail("client CA name list: out of memory");
    (void)n.release();
  }
  return {};
}

Result<std::unique_ptr<HostPolicy>> build_host(const GatekeeperConfig& g, const HostConfig& h, std::size_t index,
                                               std::shared_ptr<HostStats> stats, WallClock clock) {
  // "gatekeeper.toml:12: [[host]] a.test: cert /x.pem: ..." (file and line of the [[host]] table).
  auto where = [&](const std::string& what) {
    return g.path + ":" + std::to_string(h.line) + ": [[host]] " + h.label() + ": " + what;
  };
  auto p = std::make_unique<HostPolicy>(g.verdict_cache_entries, std::move(stats));
  p->cfg = h;
  p->index = index;
  p->clock = std::move(clock);
  p->ctx.reset(SSL_CTX_new_ex(tls_libctx(), nullptr, TLS_server_method()));
  SSL_CTX* ctx = p->ctx.get();
  if (!ctx) return fail(where("SSL_CTX_new: " + take_ssl_errors()));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (!g.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, g.ciphers.c_str()) != 1)
    return fail(where("ciphers \"" + g.ciphers + "\": " + take_ssl_errors()));
  if (!g.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, g.ciphersuites.c_str()) != 1)
    return fail(where("ciphersuites \"" + g.ciphersuites + "\": " + take_ssl_errors()));
  for (std::size_t i = 0; i < h.certs.size(); ++i) {
    auto certs = load_certs_file(h.certs[i]);
    if (!certs) return fail(where("cert " + certs.error().message));
    if (SSL_CTX_use_certificate_chain_file(ctx, h.certs[i].c_str()) != 1)
      return fail(where("cert " + h.certs[i].string() + ": " + take_ssl_errors()));
    auto key = load_key_file(h.keys[i]);
    if (!key) return fail(where("key " + key.error().message));
    if (SSL_CTX_use_PrivateKey(ctx, key->get()) != 1 || SSL_CTX_check_private_key(ctx) != 1)
      return fail(where("key " + h.keys[i].string() + " does not match cert " + h.certs[i].string() + " (" +
                        take_ssl_errors() + ")"));
    p->cert_not_after.push_back(asn1_time_t(X509_get0_notAfter((*certs)[0].get())));
  }
  // What a connection starting here has before the client hello; on_client_hello sets it
  // again for the host it picks.
  SSL_CTX_set_max_cert_list(ctx, static_cast<long>(g.max_client_chain_bytes));
  // Session id context before the client hello; on_client_hello sets one per host and SNI.
  Sha256 sid = sha256({reinterpret_cast<const std::uint8_t*>(h.names.front().data()), h.names.front().size()});
  SSL_CTX_set_session_id_context(ctx, sid.data(), SSL_MAX_SID_CTX_LENGTH);
  if (RAND_bytes(p->ticket_name.data(), 16) != 1 || RAND_bytes(p->ticket_aes.data(), 32) != 1 ||
      RAND_bytes(p->ticket_hmac.data(), 32) != 1)
    return fail(where("RAND_bytes: " + take_ssl_errors()));

  if (h.upstream_tls) {
    p->upstream_ctx.reset(SSL_CTX_new_ex(tls_libctx(), nullptr, TLS_client_method()));
    SSL_CTX* u = p->upstream_ctx.get();
    if (!u) return fail(where("upstream SSL_CTX_new: " + take_ssl_errors()));
    SSL_CTX_set_min_proto_version(u, TLS1_2_VERSION);
    SSL_CTX_set_verify(u, SSL_VERIFY_PEER, nullptr);
    const bool loaded = h.upstream_ca.empty() ? SSL_CTX_set_default_verify_paths(u) == 1
                                              : SSL_CTX_load_verify_locations(u, h.upstream_ca.c_str(), nullptr) == 1;
    if (!loaded)
      return fail(where("upstream_ca " +
                        (h.upstream_ca.empty() ? std::string("(system store)") : h.upstream_ca.string()) + ": " +
                        take_ssl_errors()));
  }
  if (h.mtls != Mtls::off) {
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    X509NameStackPtr names(sk_X509_NAME_new_null());
    if (!names) return fail(where("client_ca: out of memory"));
    auto global = g.origin_pull_ca.empty() ? load_certs_pem(embedded::kOriginPullCaPem, "embedded origin-pull CA")
                                           : load_certs_file(g.origin_pull_ca);
    if (!global) return fail(where("origin_pull_ca " + global.error().message));
    // The host's own CAs, read once; without client_ca the host trusts `global`, which is also
    // compared with an aop bundle's CAs below (so it is not moved from).
    Result<std::vector<X509Ptr>> own = h.client_ca.empty() ? std::vector<X509Ptr>{} : load_certs_file(h.client_ca);
    if (!own)
      return fail(where("client_ca " + own.error().message +
                        (h.client_ca_aop_zone.empty()
                             ? std::string()
                             : " (aop:" + h.client_ca_aop_zone +
                                   ": the agent writes it once that zone is in its [[aop.zone]]; [gatekeeper] aop_dir "
                                   "must be the agent's [aop] export_dir)")));
    const std::vector<X509Ptr>& cas = h.client_ca.empty() ? *global : *own;
    if (auto st = add_ca_certs(store, names.get(), cas); !st) return fail(where("client_ca: " + st.error().message));
    SSL_CTX_set_client_CA_list(ctx, names.release());  // takes ownership
    p->global_ca = h.client_ca.empty();
    if (!h.client_ca_aop_zone.empty()) {
      // The agent adds the global CA to the zone's bundle until the zone's own certificate is
      // active (docs/AOP.md, the migration). Recognised by the whole certificate, not its name.
      for (const auto& ca : cas)
        for (const auto& gl : *global)
          if (X509_cmp(ca.get(), gl.get()) == 0 && X509_up_ref(ca.get()) == 1) {
            p->crl_exempt_issuer.reset(ca.get());
            p->global_ca = true;
          }
      if (p->crl_exempt_issuer) {
        X509_STORE_set_ex_data(store, store_host_index(), p.get());
        X509_STORE_set_verify_cb(store, on_verify_step);
      }
    }
    // client_ca = "aop:<zone>": the agent's bundle carries one CRL per zone CA after the CAs
    // (certificates it retired). Required: a bundle without them is refused (the host does not
    // load; on a reload the previous policy stays), and with CRL checking a zone certificate
    // whose CA has no valid CRL (missing, signed by another key, expired) is refused.
    std::vector<std::filesystem::path> crl_files = h.crls;
    if (!h.client_ca_aop_zone.empty()) crl_files.insert(crl_files.begin(), h.client_ca);
    for (const auto& f : crl_files) {
      auto crls = load_crls_file(f);
      if (!crls)
        return fail(where("crl " + crls.error().message +
                          (f == h.client_ca && !h.client_ca_aop_zone.empty()
                               ? " (aop:" + h.client_ca_aop_zone +
                                     ": the agent's bundle must carry the zone's CRL; is the agent older than the "
                                     "gatekeeper?)"
                               : std::string())));
      for (auto& c : *crls) {
        if (X509_STORE_add_crl(store, c.get()) != 1) return fail(where("crl " + f.string() + ": " + take_ssl_errors()));
        std::optional<std::time_t> next;
        // An unreadable nextUpdate is 0: cached verdicts are never used (fail closed).
        if (const ASN1_TIME* t = X509_CRL_get0_nextUpdate(c.get())) next = asn1_time_t(t);
        p->crl_next_update.emplace_back(f, next);
        if (next) p->crls_valid_until = std::min(p->crls_valid_until, *next);
      }
    }
    // CRLs are checked for the leaf; a configured CRL that does not cover the leaf's issuer
    // fails verification ("unable to get certificate CRL") rather than passing silently.
    if (!crl_files.empty()) X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    SSL_CTX_set_cert_verify_callback(ctx, on_verify_chain, p.get());
    SSL_CTX_set_verify_depth(ctx, kMaxClientChainDepth);
    for (const auto& pin : h.pin_spki_sha256) p->spki_pins.push_back(*decode_pin(pin));
    for (const auto& pin : h.pin_cert_sha256) p->cert_pins.push_back(*decode_pin(pin));
  }
  return p;
}

}  // namespace

std::optional<Sha256> decode_pin(std::string_view b64) {
  if (b64.size() != 44) return std::nullopt;
  std::array<unsigned char, 33> buf{};
  if (EVP_DecodeBlock(buf.data(), reinterpret_cast<const unsigned char*>(b64.data()), 44) != 33) return std::nullopt;
  Sha256 out{};
  std::copy_n(buf.begin(), 32, out.begin());
  return out;
}

std::optional<Sha256> chain_key(X509* leaf, STACK_OF(X509) * untrusted) {
  using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
  MdCtxPtr md(EVP_MD_CTX_new());
  if (!md || !leaf || EVP_DigestInit_ex(md.get(), sha256_md(), nullptr) != 1) return std::nullopt;
  auto add = [&](X509* x) {
    unsigned char* der = nullptr;
    const int n = i2d_X509(x, &der);
    if (n <= 0) return false;
    const bool ok = EVP_DigestUpdate(md.get(), der, static_cast<std::size_t>(n)) == 1;
    OPENSSL_free(der);
    return ok;
  };
  if (!add(leaf)) return std::nullopt;
  for (int i = 0; untrusted && i < sk_X509_num(untrusted); ++i)
    if (!add(sk_X509_value(untrusted, i))) return std::nullopt;
  Sha256 out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(md.get(), out.data(), &len) != 1 || len != out.size()) return std::nullopt;
  return out;
}

std::string session_sni(SSL_SESSION* sess) {
  void* data = nullptr;
  std::size_t len = 0;
  if (SSL_SESSION_get0_ticket_appdata(sess, &data, &len) == 1 && data && len >= 4 &&
      std::string_view(static_cast<const char*>(data), 4) == "sni=")
    return std::string(static_cast<const char*>(data) + 4, len - 4);
  const char* h = SSL_SESSION_get0_hostname(sess);
  return normalize_host(h ? h : "").value_or("");
}

ConnTls* conn_of(const SSL* ssl) { return static_cast<ConnTls*>(SSL_get_ex_data(ssl, conn_index())); }
void attach(SSL* ssl, ConnTls* conn) { SSL_set_ex_data(ssl, conn_index(), conn); }

bool client_refused(const ConnTls& c) {
  if (!c.host || c.host->cfg.mtls == Mtls::off) return false;
  if (c.verify == VerifyState::failed) return true;
  return c.host->cfg.mtls == Mtls::required && c.verify != VerifyState::success;
}

bool explain_handshake_error(const SSL* ssl, unsigned long err, ConnTls& conn) {
  if (!conn.refusal.empty() || !conn.host) return false;
  if (ERR_GET_LIB(err) == ERR_LIB_SSL && ERR_GET_REASON(err) == SSL_R_EXCESSIVE_MESSAGE_SIZE &&
      SSL_get_state(ssl) == TLS_ST_SR_CERT) {
    conn.refusal = "client_chain_too_large";
    conn.host->stats.refused_verify.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  return false;
}

Admission admit(SSL* ssl, ConnTls& conn) {
  if (!conn.host) {
    conn.refusal = "no_host";
    return Admission::drop;
  }
  if (SSL_session_reused(ssl)) {
    // Belt and braces next to the per-host session id context and ticket keys.
    if (session_sni(SSL_get0_session(ssl)) != conn.sni) {
      conn.refusal = "cross_host_resumption";
      return Admission::drop;
    }
    if (conn.host->cfg.mtls != Mtls::off && SSL_get0_peer_certificate(ssl))
      conn.verify = SSL_get_verify_result(ssl) == X509_V_OK ? VerifyState::success : VerifyState::failed;
  }
  return client_refused(conn) ? Admission::refuse_client : Admission::serve;
}

WallClock system_wall_clock() {
  return [] { return std::time(nullptr); };
}

bool pins_match(const std::vector<Sha256>& chain_spki, const std::vector<Sha256>& chain_cert,
                const std::vector<Sha256>& spki_pins, const std::vector<Sha256>& cert_pins) {
  if (spki_pins.empty() && cert_pins.empty()) return true;
  auto any = [](const std::vector<Sha256>& have, const std::vector<Sha256>& want) {
    return std::any_of(have.begin(), have.end(),
                       [&](const Sha256& h) { return std::find(want.begin(), want.end(), h) != want.end(); });
  };
  return any(chain_spki, spki_pins) || any(chain_cert, cert_pins);
}

bool subject_match(const std::string& cn, const std::vector<std::string>& sans, const std::vector<std::string>& want_cn,
                   const std::vector<std::string>& want_san) {
  if (want_cn.empty() && want_san.empty()) return true;
  for (const auto& w : want_cn)
    if (!cn.empty() && iequals(cn, w)) return true;
  for (const auto& w : want_san)
    for (const auto& s : sans)
      if (iequals(s, w)) return true;
  return false;
}

std::shared_ptr<HostStats> HostStatsRegistry::acquire(const std::string& key) {
  std::lock_guard lock(mu_);
  auto& slot = by_key_[key];
  if (!slot) slot = std::make_shared<HostStats>();
  return slot;
}

void HostStatsRegistry::retain_only(const PolicySet& set) {
  std::lock_guard lock(mu_);
  std::erase_if(by_key_, [&](const auto& kv) {
    return std::none_of(set.hosts().begin(), set.hosts().end(),
                        [&](const auto& h) { return h->stats_key() == kv.first; });
  });
}

std::size_t HostStatsRegistry::size() const {
  std::lock_guard lock(mu_);
  return by_key_.size();
}

Result<std::shared_ptr<const PolicySet>> PolicySet::build(const GatekeeperConfig& cfg) {
  HostStatsRegistry fresh;
  return build(cfg, fresh);
}

Result<std::shared_ptr<const PolicySet>> PolicySet::build(const GatekeeperConfig& cfg, HostStatsRegistry& stats) {
  return build(cfg, stats, system_wall_clock());
}

Result<std::shared_ptr<const PolicySet>> PolicySet::build(const GatekeeperConfig& cfg, HostStatsRegistry& stats,
                                                          const WallClock& clock) {
  auto set = std::make_shared<PolicySet>();
  set->cfg_ = cfg;
  for (std::size_t i = 0; i < cfg.hosts.size(); ++i) {
    auto h = build_host(cfg, cfg.hosts[i], i, stats.acquire(cfg.hosts[i].label()), clock);
    if (!h) return fail(h.error());
    for (const auto& n : cfg.hosts[i].names) set->table_.add(n, i);
    set->hosts_.push_back(std::move(*h));
  }
  if (!cfg.default_host.empty()) {
    for (const auto& h : set->hosts_)
      if (std::find(h->cfg.names.begin(), h->cfg.names.end(), cfg.default_host) != h->cfg.names.end())
        set->default_ = h.get();
  }
  // Every host context can start a connection: it carries the client-hello callback that
  // picks the host by SNI and the session/ticket callbacks (which act on the starting
  // context). Connections start on the default host's (else the first host's) context, so
  // for that host, often the only one, no context switch (and certificate copy) is needed.
  for (const auto& h : set->hosts_) {
    SSL_CTX* c = h->ctx.get();
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_timeout(c, static_cast<long>(h->cfg.session_timeout.count()));
    SSL_CTX_sess_set_new_cb(c, on_new_session);
    SSL_CTX_set_client_hello_cb(c, on_client_hello, nullptr);
    SSL_CTX_callback_ctrl(c, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,  // SSL_CTX_set_tlsext_servername_callback
                          reinterpret_cast<void (*)()>(on_servername));
    SSL_CTX_set_tlsext_ticket_key_evp_cb(c, on_ticket_key);
    SSL_CTX_set_session_ticket_cb(c, on_ticket_generate, on_ticket_decrypted, nullptr);
  }
  if (set->hosts_.empty()) return fail("no [[host]]");
  set->every_host_requires_edge_ip_ =
      std::all_of(set->hosts_.begin(), set->hosts_.end(), [](const auto& h) { return h->cfg.require_edge_ip; });
  SSL_CTX* start = (set->default_ ? set->default_ : set->hosts_.front().get())->ctx.get();
  SSL_CTX_up_ref(start);
  set->dispatch_.reset(start);
  return std::shared_ptr<const PolicySet>(std::move(set));
}

const HostPolicy* PolicySet::select(std::optional<std::string_view> name) const {
  if (name)
    if (auto i = table_.find(*name)) return hosts_[*i].get();
  return default_;
}

const HostPolicy* PolicySet::find(std::string_view name) const {
  auto i = table_.find(name);
  return i ? hosts_[*i].get() : nullptr;
}

VerifyState verify_client_chain(const HostPolicy& host, X509* leaf, STACK_OF(X509) * untrusted, std::string& reason) {
  if (host.cfg.mtls == Mtls::off || !leaf) return VerifyState::none;
  using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
  StoreCtxPtr ctx(X509_STORE_CTX_new_ex(tls_libctx(), nullptr));
  // As libssl sets up a server's verification of a client: the host's store (CA, CRLs and
  // their flags), the "ssl_client" purpose, the context's parameters (depth).
  if (!ctx || X509_STORE_CTX_init(ctx.get(), SSL_CTX_get_cert_store(host.ctx.get()), leaf, untrusted) != 1 ||
      X509_STORE_CTX_set_default(ctx.get(), "ssl_client") != 1 ||
      X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(ctx.get()), SSL_CTX_get0_param(host.ctx.get())) != 1) {
    reason = "cannot set up verification: " + take_ssl_errors();
    return VerifyState::failed;
  }
  // The instant the handshake's verification and the verdict cache use.
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), host.clock());
  if (X509_verify_cert(ctx.get()) != 1) {
    reason = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
    ERR_clear_error();
    return VerifyState::failed;
  }
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
  std::vector<Sha256> spki, cert;
  for (int i = 0; i < sk_X509_num(chain); ++i) {
    X509* x = sk_X509_value(chain, i);
    if (auto h = spki_sha256(x)) spki.push_back(*h);
    if (auto h = cert_sha256(x)) cert.push_back(*h);
  }
  return chain_rules(host, spki, cert, leaf, reason) == ChainRule::ok ? VerifyState::success : VerifyState::failed;
}

}  // namespace og::gk
