// The OpenSSL library context the gatekeeper's SSL_CTXs run in.
//
// OpenSSL 3.0 decodes the public key of every certificate it parses (the client's, on every
// mTLS handshake) through OSSL_DECODER_CTX_new_for_pkey, which enumerates and tests every
// decoder and key manager the loaded providers offer: 40 and 18 in the default provider, for
// PEM, MSBLOB, PVK, private keys, parameters and key types a TLS certificate never holds. That
// search was a fifth of a handshake's CPU in profiles (nginx pays it too). The context returned
// here reaches the default provider's algorithms through a thin provider that passes every
// operation through unchanged, except that its decoders are the DER SubjectPublicKeyInfo ones
// for certificate key types (EC, RSA, RSA-PSS, Ed25519, Ed448) and its key managers EC, X25519,
// X448, DH, RSA, RSA-PSS, Ed25519, Ed448 and HMAC.
//
// Private keys, client CAs and CRLs are still loaded in the default context (a key is exported
// to the view once, on first use). Certificate chains given to SSL_CTX_use_certificate_chain_file
// and an upstream trust store are read through the view, so a certificate of another key type
// (DSA, SM2) has no usable key there and fails to load or to verify.
//
// Only on OpenSSL 3.0.x without FIPS mode and with no provider other than default/base active;
// otherwise (or if it cannot be built) tls_libctx() returns nullptr: the default context.
// Everything created with the view (SSL_CTXs, keys exported to it) must be freed before exit:
// OPENSSL_cleanup releases the view first.
#pragma once

#include <openssl/types.h>

namespace og::gk {

// Process-wide, created on first use, thread-safe. nullptr means OpenSSL's default context.
OSSL_LIB_CTX* tls_libctx();

// How many decoders the view exposes (0 when the default context is in use): for tests.
int tls_libctx_decoder_count();

// Makes tls_libctx() the calling thread's default library context while it lives (nothing
// when the view is not in use), and restores the previous one. libssl parses some things in
// the default context whatever the SSL_CTX's is: OpenSSL 3.0 serialises and parses the session
// again (d2i_SSL_SESSION, no library context) for every stateless ticket it issues or
// decrypts, and with it the client's certificate, whose key then went through the full
// decoder search: a quarter of the CPU with session_tickets on. Each worker thread holds one.
class TlsLibctxScope {
 public:
  TlsLibctxScope();
  ~TlsLibctxScope();
  TlsLibctxScope(const TlsLibctxScope&) = delete;
  TlsLibctxScope& operator=(const TlsLibctxScope&) = delete;

 private:
  OSSL_LIB_CTX* previous_ = nullptr;
};

}  // namespace og::gk
