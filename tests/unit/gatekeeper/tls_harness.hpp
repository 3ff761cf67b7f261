// Test doubles for the gatekeeper's TLS code, in one place: a PKI made with OpenSSL at test
// time (keys, certificates, chains, CRLs; PEM files in a temporary directory), and real
// OpenSSL handshakes between a client and a server SSL joined by a memory BIO pair: either two
// plain contexts (connect + handshake) or a client against a PolicySet, driven as the
// gatekeeper drives a connection (dispatch context, ConnTls attached, admit() after).
#pragma once

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ssl_util.hpp"
#include "tls_policy.hpp"

namespace og::gk::test {

namespace fs = std::filesystem;
using SessionPtr = std::unique_ptr<SSL_SESSION, Deleter<SSL_SESSION_free>>;

// ---- PKI ------------------------------------------------------------------------------

inline EvpPkeyPtr keygen(const std::string& type) {
  if (type == "EC") return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (type == "RSA") return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  if (type == "RSA-PSS") {
    EVP_PKEY* k = nullptr;
    EVP_PKEY_CTX* c = EVP_PKEY_CTX_new_from_name(nullptr, "RSA-PSS", nullptr);
    if (c && EVP_PKEY_keygen_init(c) == 1 && EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048) == 1) EVP_PKEY_generate(c, &k);
    EVP_PKEY_CTX_free(c);
    return EvpPkeyPtr(k);
  }
  return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, type.c_str()));
}

struct CertOptions {
  bool ca = false;
  std::time_t not_before = std::time(nullptr) - 60;
  std::time_t not_after = std::time(nullptr) + 86400;
  std::vector<std::string> dns;  // subjectAltName DNS entries
};

// A certificate for key, named cn, signed by (issuer, issuer_key) or self-signed.
inline X509Ptr certify(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                       const CertOptions& o = {}) {
  static std::atomic<long> serial{0};
  X509Ptr c(X509_new());
  X509_set_version(c.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.get()), ++serial);
  ASN1_TIME_set(X509_getm_notBefore(c.get()), o.not_before);
  ASN1_TIME_set(X509_getm_notAfter(c.get()), o.not_after);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(c.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(c.get(), key);
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer ? issuer : c.get(), c.get(), nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    ASSERT_NE(e, nullptr) << value;
    X509_add_ext(c.get(), e, -1);
    X509_EXTENSION_free(e);
  };
  add(NID_basic_constraints, o.ca ? "critical,CA:TRUE" : "CA:FALSE");
  if (o.ca) add(NID_key_usage, "critical,keyCertSign,cRLSign");
  if (!o.dns.empty()) {
    std::string san;
    for (const auto& d : o.dns) san += (san.empty() ? "DNS:" : ",DNS:") + d;
    add(NID_subject_alt_name, san);
  }
  EVP_PKEY* signer = issuer_key ? issuer_key : key;
  const bool digestless = EVP_PKEY_is_a(signer, "ED25519") || EVP_PKEY_is_a(signer, "ED448");
  EXPECT_GT(X509_sign(c.get(), signer, digestless ? nullptr : EVP_sha256()), 0);
  return c;
}

inline CertOptions ca_options() {
  CertOptions o;
  o.ca = true;
  return o;
}

inline X509Ptr certify(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca) {
  return certify(key, cn, issuer, issuer_key, ca ? ca_options() : CertOptions{});
}

// A CRL of `ca` revoking `revoked`, valid from last_update until next_update (0: none).
inline X509CrlPtr make_crl(X509* ca, EVP_PKEY* ca_key, const std::vector<X509*>& revoked, std::time_t last_update,
                           std::time_t next_update) {
  X509CrlPtr crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca));
  ASN1_TIME* t = ASN1_TIME_set(nullptr, last_update);
  X509_CRL_set1_lastUpdate(crl.get(), t);
  if (next_update) {
    ASN1_TIME_set(t, next_update);
    X509_CRL_set1_nextUpdate(crl.get(), t);
  }
  for (X509* x : revoked) {
    X509_REVOKED* r = X509_REVOKED_new();
    X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(x));
    ASN1_TIME_set(t, last_update);
    X509_REVOKED_set_revocationDate(r, t);
    X509_CRL_add0_revoked(crl.get(), r);
  }
  ASN1_TIME_free(t);
  X509_CRL_sort(crl.get());
  EXPECT_GT(X509_CRL_sign(crl.get(), ca_key, EVP_sha256()), 0);
  return crl;
}

// A key and its certificate, plus the chain a client sends after it.
struct Identity {
  EvpPkeyPtr key;
  X509Ptr cert;
  std::vector<X509*> chain;  // not owned
};

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> n{0};
    path_ = fs::temp_directory_path() / ("og-gk-tls-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline void write_certs(const fs::path& file, const std::vector<X509*>& certs) {
  BioPtr b(BIO_new_file(file.c_str(), "w"));
  ASSERT_TRUE(b) << file;
  for (X509* c : certs) ASSERT_EQ(PEM_write_bio_X509(b.get(), c), 1);
}
inline void write_key(const fs::path& file, EVP_PKEY* key) {
  BioPtr b(BIO_new_file(file.c_str(), "w"));
  ASSERT_TRUE(b) << file;
  ASSERT_EQ(PEM_write_bio_PrivateKey(b.get(), key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  b.reset();
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);  // the gatekeeper demands it
}
inline void write_crl(const fs::path& file, X509_CRL* crl) {
  BioPtr b(BIO_new_file(file.c_str(), "w"));
  ASSERT_TRUE(b) << file;
  ASSERT_EQ(PEM_write_bio_X509_CRL(b.get(), crl), 1);
}

// ---- handshakes over a memory BIO pair ------------------------------------------------

// A client and a server SSL joined by a memory BIO pair.
inline std::pair<SslPtr, SslPtr> connect(SSL_CTX* cctx, SSL_CTX* sctx) {
  SslPtr client(SSL_new(cctx)), server(SSL_new(sctx));
  BIO *c2s = nullptr, *s2c = nullptr;
  EXPECT_EQ(BIO_new_bio_pair(&c2s, 0, &s2c, 0), 1);
  SSL_set_bio(client.get(), c2s, c2s);
  SSL_set_bio(server.get(), s2c, s2c);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  return {std::move(client), std::move(server)};
}

// What one side of a handshake ended with.
struct SideResult {
  bool done = false;
  bool failed = false;
  unsigned long code = 0;  // the first error when it failed
  int reason = 0;          // its ERR_GET_REASON
  std::string error;       // its text
  int alert = -1;          // the last alert it received (SSL_AD_*), -1: none
  int alert_sent = -1;     // the last alert it sent
};

namespace detail {
inline int side_index() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}
inline void note_alert(const SSL* ssl, int where, int ret) {
  auto* r = static_cast<SideResult*>(SSL_get_ex_data(ssl, side_index()));
  if (!r) return;
  if ((where & SSL_CB_READ_ALERT) == SSL_CB_READ_ALERT) r->alert = ret & 0xff;
  if ((where & SSL_CB_WRITE_ALERT) == SSL_CB_WRITE_ALERT) r->alert_sent = ret & 0xff;
}
// One SSL_do_handshake step; false once the side failed.
inline void step(SSL* ssl, SideResult& r) {
  if (r.done || r.failed) return;
  ERR_clear_error();
  const int n = SSL_do_handshake(ssl);
  if (n == 1) {
    r.done = true;
    return;
  }
  const int e = SSL_get_error(ssl, n);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
  r.failed = true;
  const unsigned long code = ERR_peek_error();
  r.code = code;
  r.reason = ERR_GET_REASON(code);
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  r.error = code ? buf : "SSL_get_error " + std::to_string(e);
  ERR_clear_error();
}
}  // namespace detail

// Drives both ends until both finish or neither can move; a failed side's alert is still
// delivered to the other (which then fails too).
inline void drive(SSL* client, SSL* server, SideResult& c, SideResult& s) {
  SSL_set_ex_data(client, detail::side_index(), &c);
  SSL_set_ex_data(server, detail::side_index(), &s);
  SSL_set_info_callback(client, detail::note_alert);
  SSL_set_info_callback(server, detail::note_alert);
  for (int i = 0; i < 200 && !(c.done && s.done) && !(c.failed && s.failed); ++i) {
    detail::step(client, c);
    detail::step(server, s);
    if ((c.failed && s.done) || (s.failed && c.done)) break;
  }
  // A side that finished first (the TLS 1.3 client, before the server judged its certificate)
  // reads the other's alert.
  char byte;
  if (c.done && s.failed) (void)SSL_read(client, &byte, 1);
  if (s.done && c.failed) (void)SSL_read(server, &byte, 1);
  ERR_clear_error();
  SSL_set_ex_data(client, detail::side_index(), nullptr);
  SSL_set_ex_data(server, detail::side_index(), nullptr);
}

// Whether both ends finished (the shape tls_libctx_test wants).
inline bool handshake(SSL* client, SSL* server) {
  SideResult c, s;
  drive(client, server, c, s);
  return c.done && s.done;
}

// A client context: TLS `version` only, optionally a certificate (and chain).
struct ClientOptions {
  int version = TLS1_3_VERSION;
  const Identity* id = nullptr;
  bool tickets = true;  // false: SSL_OP_NO_TICKET (TLS 1.2 session ids only)
};
inline SslCtxPtr client_ctx(const ClientOptions& o) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_min_proto_version(ctx.get(), o.version);
  SSL_CTX_set_max_proto_version(ctx.get(), o.version);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT);
  if (!o.tickets) SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  if (o.id) {
    EXPECT_EQ(SSL_CTX_use_certificate(ctx.get(), o.id->cert.get()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx.get(), o.id->key.get()), 1);
    for (X509* c : o.id->chain) {
      X509_up_ref(c);
      EXPECT_EQ(SSL_CTX_add0_chain_cert(ctx.get(), c), 1);
    }
  }
  return ctx;
}

// One connection through a PolicySet, as serve_connection runs it (without sockets).
struct GkConn {
  SideResult client, server;
  ConnTls conn;                        // the server's facts after the handshake (host, sni, verify...)
  std::optional<Admission> admission;  // admit()'s verdict when the handshake completed
  bool resumed = false;                // the server resumed a session
  long verify_result = X509_V_OK;      // the server's SSL_get_verify_result
  bool peer_cert = false;              // the server has a client certificate
  SessionPtr session;                  // the client's session, to offer again
  [[nodiscard]] bool served() const { return admission == Admission::serve; }
};

struct ConnectOptions {
  std::optional<std::string> sni;  // nullopt: no server_name extension
  SSL_SESSION* offer = nullptr;    // a session to resume
  bool peer_is_edge = false;
};

inline GkConn gk_connect(const PolicySet& set, SSL_CTX* cctx, const ConnectOptions& o) {
  GkConn r;
  SslPtr client(SSL_new(cctx)), server(SSL_new(set.dispatch_ctx()));
  BIO *c2s = nullptr, *s2c = nullptr;
  EXPECT_EQ(BIO_new_bio_pair(&c2s, 0, &s2c, 0), 1);
  SSL_set_bio(client.get(), c2s, c2s);
  SSL_set_bio(server.get(), s2c, s2c);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  if (o.sni)  // SSL_set_tlsext_host_name, without its C cast
    SSL_ctrl(client.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(o.sni->c_str()));
  if (o.offer) SSL_set_session(client.get(), o.offer);
  r.conn.set = &set;
  r.conn.peer_is_edge = o.peer_is_edge;
  attach(server.get(), &r.conn);
  drive(client.get(), server.get(), r.client, r.server);
  if (r.server.failed) explain_handshake_error(server.get(), r.server.code, r.conn);
  if (r.client.done && r.server.done) {
    r.admission = admit(server.get(), r.conn);
    r.resumed = SSL_session_reused(server.get()) == 1;
    r.verify_result = SSL_get_verify_result(server.get());
    r.peer_cert = SSL_get0_peer_certificate(server.get()) != nullptr;
    // Application data both ways: the client takes in TLS 1.3 tickets on its read.
    char buf[8];
    EXPECT_EQ(SSL_write(server.get(), "s", 1), 1);
    EXPECT_EQ(SSL_read(client.get(), buf, sizeof buf), 1);
    EXPECT_EQ(SSL_write(client.get(), "c", 1), 1);
    EXPECT_EQ(SSL_read(server.get(), buf, sizeof buf), 1);
    r.session.reset(SSL_get1_session(client.get()));
    // close_notify both ways: a session of a connection freed without one is not resumable.
    SSL_shutdown(server.get());
    SSL_shutdown(client.get());
  }
  attach(server.get(), nullptr);
  ERR_clear_error();
  return r;
}

// A wall clock the test moves.
struct FakeClock {
  std::shared_ptr<std::time_t> now = std::make_shared<std::time_t>(std::time(nullptr));
  [[nodiscard]] WallClock fn() const {
    return [t = now] { return *t; };
  }
  void advance(std::time_t s) const { *now += s; }
};

}  // namespace og::gk::test
