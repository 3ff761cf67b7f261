// The decoder/key-type view the gatekeeper's SSL_CTXs run in (tls_libctx): every handshake the
// gatekeeper can be asked for still completes through it, in memory, against a client in the
// default context: server keys ECDSA P-256, RSA-2048, RSA-PSS, Ed25519 and Ed448; TLS 1.3 and
// TLS 1.2 (GCM, CBC+HMAC, ChaCha20); groups X25519, X448, P-256 and ffdhe2048; a client
// certificate verified against a CA. (Resumption through the view: test_attack_matrix.)
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <memory>
#include <string>
#include <utility>

#include "tls_libctx.hpp"

namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
  void operator()(SSL* p) const { SSL_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Ctx = std::unique_ptr<SSL_CTX, Free>;
using Ssl = std::unique_ptr<SSL, Free>;

Key keygen(const std::string& type) {
  if (type == "EC") return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (type == "RSA") return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  if (type == "RSA-PSS") {
    EVP_PKEY* k = nullptr;
    EVP_PKEY_CTX* c = EVP_PKEY_CTX_new_from_name(nullptr, "RSA-PSS", nullptr);
    if (c && EVP_PKEY_keygen_init(c) == 1 && EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048) == 1) EVP_PKEY_generate(c, &k);
    EVP_PKEY_CTX_free(c);
    return Key(k);
  }
  return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, type.c_str()));
}

// A certificate for key, named cn, signed by (issuer, issuer_key) or self-signed.
Cert certify(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca) {
  static long serial = 0;
  Cert c(X509_new());
  X509_set_version(c.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.get()), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), 3600);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(c.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(c.get(), key);
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer ? issuer : c.get(), c.get(), nullptr, nullptr, 0);
  X509_EXTENSION* bc = X509V3_EXT_conf_nid(nullptr, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  X509_add_ext(c.get(), bc, -1);
  X509_EXTENSION_free(bc);
  EVP_PKEY* signer = issuer_key ? issuer_key : key;
  const bool digestless = EVP_PKEY_is_a(signer, "ED25519") || EVP_PKEY_is_a(signer, "ED448");
  EXPECT_GT(X509_sign(c.get(), signer, digestless ? nullptr : EVP_sha256()), 0);
  return c;
}

// The certificate parsed again in the view, as SSL_CTX_use_certificate_chain_file does.
Cert in_view(X509* c) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(c, &der);
  X509* out = X509_new_ex(og::gk::tls_libctx(), nullptr);
  const unsigned char* p = der;
  if (!d2i_X509(&out, &p, len)) out = nullptr;  // d2i freed it
  OPENSSL_free(der);
  EXPECT_NE(out, nullptr);
  EXPECT_NE(out ? X509_get0_pubkey(out) : nullptr, nullptr);
  return Cert(out);
}

// A client and a server SSL joined by a memory BIO pair.
std::pair<Ssl, Ssl> connect(SSL_CTX* cctx, SSL_CTX* sctx) {
  Ssl client(SSL_new(cctx)), server(SSL_new(sctx));
  BIO *c2s = nullptr, *s2c = nullptr;
  EXPECT_EQ(BIO_new_bio_pair(&c2s, 0, &s2c, 0), 1);
  SSL_set_bio(client.get(), c2s, c2s);
  SSL_set_bio(server.get(), s2c, s2c);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  return {std::move(client), std::move(server)};
}

// Drives both ends over memory BIOs until both finish or one fails.
bool handshake(SSL* client, SSL* server) {
  for (int i = 0; i < 64; ++i) {
    const int c = SSL_do_handshake(client);
    const int s = SSL_do_handshake(server);
    if (c == 1 && s == 1) return true;
    const int ce = SSL_get_error(client, c), se = SSL_get_error(server, s);
    if ((c != 1 && ce != SSL_ERROR_WANT_READ) || (s != 1 && se != SSL_ERROR_WANT_READ)) return false;
  }
  return false;
}

struct Case {
  const char* server_key;
  int version;         // TLS1_3_VERSION or TLS1_2_VERSION
  const char* cipher;  // TLS 1.2 cipher list, or nullptr
  const char* group;   // TLS 1.2 also checks the EC client certificate's curve against these
};

class GkTlsLibctx : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    ca_key_ = keygen("RSA").release();
    ca_ = certify(ca_key_, "test CA", nullptr, nullptr, true).release();
    client_key_ = keygen("EC").release();
    client_ = certify(client_key_, "edge", ca_, ca_key_, false).release();
  }
  static void TearDownTestSuite() {
    X509_free(client_);
    EVP_PKEY_free(client_key_);
    X509_free(ca_);
    EVP_PKEY_free(ca_key_);
  }
  static inline EVP_PKEY* ca_key_ = nullptr;
  static inline X509* ca_ = nullptr;
  static inline EVP_PKEY* client_key_ = nullptr;
  static inline X509* client_ = nullptr;
};

TEST(GkTlsLibctxView, ExposesOnlyTheSpkiDecoders) {
  ASSERT_NE(og::gk::tls_libctx(), nullptr);
  // The default provider has 40 decoders in OpenSSL 3.0; the view keeps the DER
  // SubjectPublicKeyInfo ones for EC, RSA, RSA-PSS, Ed25519, Ed448 and the generic SPKI step.
  EXPECT_EQ(og::gk::tls_libctx_decoder_count(), 6);
}

TEST_P(GkTlsLibctx, HandshakeAndDataThroughTheView) {
  const Case& tc = GetParam();
  Key server_key = keygen(tc.server_key);
  ASSERT_TRUE(server_key);
  Cert server_cert = in_view(certify(server_key.get(), "a.test", ca_, ca_key_, false).get());

  Ctx sctx(SSL_CTX_new_ex(og::gk::tls_libctx(), nullptr, TLS_server_method()));
  ASSERT_TRUE(sctx);
  ASSERT_EQ(SSL_CTX_use_certificate(sctx.get(), server_cert.get()), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(sctx.get(), server_key.get()), 1);
  // The key (default context) and the certificate's key (decoded in the view) still compare.
  ASSERT_EQ(SSL_CTX_check_private_key(sctx.get()), 1);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(sctx.get()), ca_);
  SSL_CTX_set_verify(sctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_min_proto_version(sctx.get(), tc.version);
  SSL_CTX_set_max_proto_version(sctx.get(), tc.version);
  if (tc.cipher) {
    ASSERT_EQ(SSL_CTX_set_cipher_list(sctx.get(), tc.cipher), 1);
  }
  ASSERT_EQ(SSL_CTX_set1_groups_list(sctx.get(), tc.group), 1);

  Ctx cctx(SSL_CTX_new(TLS_client_method()));  // the peer stays in the default context
  ASSERT_EQ(SSL_CTX_use_certificate(cctx.get(), client_), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(cctx.get(), client_key_), 1);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx.get()), ca_);
  SSL_CTX_set_verify(cctx.get(), SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_max_proto_version(cctx.get(), tc.version);
  if (tc.cipher) {
    ASSERT_EQ(SSL_CTX_set_cipher_list(cctx.get(), tc.cipher), 1);
  }
  ASSERT_EQ(SSL_CTX_set1_groups_list(cctx.get(), tc.group), 1);

  auto [client, server] = connect(cctx.get(), sctx.get());
  ASSERT_TRUE(handshake(client.get(), server.get())) << ERR_error_string(ERR_get_error(), nullptr);

  EXPECT_EQ(SSL_version(server.get()), tc.version);
  EXPECT_EQ(SSL_get_verify_result(server.get()), X509_V_OK);
  X509* peer = SSL_get0_peer_certificate(server.get());
  ASSERT_NE(peer, nullptr);
  EXPECT_NE(X509_get0_pubkey(peer), nullptr);
  EXPECT_EQ(X509_cmp(peer, client_), 0);

  const std::string ping = "ping", pong = "pong";
  char buf[16];
  ASSERT_EQ(SSL_write(client.get(), ping.data(), 4), 4);
  ASSERT_EQ(SSL_read(server.get(), buf, sizeof buf), 4);
  EXPECT_EQ(std::string(buf, 4), ping);
  ASSERT_EQ(SSL_write(server.get(), pong.data(), 4), 4);
  ASSERT_EQ(SSL_read(client.get(), buf, sizeof buf), 4);
  EXPECT_EQ(std::string(buf, 4), pong);
}

TEST_P(GkTlsLibctx, RefusesAClientCertFromAnotherCa) {
  const Case& tc = GetParam();
  Key server_key = keygen(tc.server_key);
  Cert server_cert = certify(server_key.get(), "a.test", nullptr, nullptr, false);
  Key other_ca_key = keygen("EC");
  Cert other_ca = certify(other_ca_key.get(), "other zone CA", nullptr, nullptr, true);
  Key other_key = keygen("EC");
  Cert other = certify(other_key.get(), "other zone", other_ca.get(), other_ca_key.get(), false);

  Ctx sctx(SSL_CTX_new_ex(og::gk::tls_libctx(), nullptr, TLS_server_method()));
  ASSERT_EQ(SSL_CTX_use_certificate(sctx.get(), server_cert.get()), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(sctx.get(), server_key.get()), 1);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(sctx.get()), ca_);
  SSL_CTX_set_verify(sctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_min_proto_version(sctx.get(), tc.version);
  if (tc.cipher) {
    ASSERT_EQ(SSL_CTX_set_cipher_list(sctx.get(), tc.cipher), 1);
  }
  Ctx cctx(SSL_CTX_new(TLS_client_method()));
  ASSERT_EQ(SSL_CTX_use_certificate(cctx.get(), other.get()), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(cctx.get(), other_key.get()), 1);
  SSL_CTX_set_max_proto_version(cctx.get(), tc.version);
  if (tc.cipher) {
    ASSERT_EQ(SSL_CTX_set_cipher_list(cctx.get(), tc.cipher), 1);
  }

  auto [client, server] = connect(cctx.get(), sctx.get());
  EXPECT_FALSE(handshake(client.get(), server.get()));
  EXPECT_EQ(SSL_get_verify_result(server.get()), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  ERR_clear_error();
}

INSTANTIATE_TEST_SUITE_P(Matrix, GkTlsLibctx,
                         ::testing::Values(Case{"EC", TLS1_3_VERSION, nullptr, "X25519"},
                                           Case{"EC", TLS1_3_VERSION, nullptr, "P-256"},
                                           Case{"RSA", TLS1_3_VERSION, nullptr, "ffdhe2048"},
                                           Case{"ED25519", TLS1_3_VERSION, nullptr, "X25519"},
                                           Case{"ED448", TLS1_3_VERSION, nullptr, "X448"},
                                           Case{"RSA-PSS", TLS1_3_VERSION, nullptr, "X25519"},
                                           Case{"EC", TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", "P-256"},
                                           Case{"EC", TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA256", "X25519:P-256"},
                                           Case{"RSA", TLS1_2_VERSION, "ECDHE-RSA-AES256-SHA384", "X25519:P-256"},
                                           Case{"RSA", TLS1_2_VERSION, "ECDHE-RSA-CHACHA20-POLY1305", "P-256"}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           std::string n = std::string(i.param.server_key) +
                                           (i.param.version == TLS1_3_VERSION ? "_tls13_" : "_tls12_") +
                                           (i.param.cipher ? i.param.cipher : "default") + "_" + i.param.group;
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
