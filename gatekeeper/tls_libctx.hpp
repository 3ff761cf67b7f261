// The OpenSSL library context the gatekeeper's SSL_CTXs run in.
//
// OpenSSL 3.0 decodes the public key of every certificate it parses (the client's, on every
// mTLS handshake) through OSSL_DECODER_CTX_new_for_pkey, which enumerates and tests every
// decoder the loaded providers offer: 40 in the default provider, for PEM, MSBLOB, PVK, private
// keys and parameters that a certificate never holds. That search was a fifth of a handshake's
// CPU in profiles (nginx pays it too). The context returned here reaches the default provider's
// algorithms through a thin provider that passes every operation through unchanged except the
// decoder list, which it cuts to the DER SubjectPublicKeyInfo decoders: the only ones a
// certificate needs. Keys, CAs and CRLs are still loaded in the default context.
//
// OpenSSL 3.1 and later cache decoders themselves; the gain there is smaller but the view stays
// correct. If the provider cannot be set up, tls_libctx() returns nullptr, the default context.
#pragma once

#include <openssl/types.h>

namespace og::gk {

// Process-wide, created on first use, thread-safe. nullptr means OpenSSL's default context.
OSSL_LIB_CTX* tls_libctx();

// How many decoders the view exposes (0 when the default context is in use): for tests/status.
int tls_libctx_decoder_count();

}  // namespace og::gk
