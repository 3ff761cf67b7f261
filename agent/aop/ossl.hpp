// Move-only owners for the OpenSSL objects the AOP code builds: one deleter template, one
// alias per type, so no path that returns early can leak a key or a certificate.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "originguard/handle.hpp"
#include "originguard/openssl_error.hpp"

namespace og::aop::ossl {

template <class T, auto Free>
using Owned = og::Unique<T, Free>;

using Pkey = Owned<EVP_PKEY, EVP_PKEY_free>;
using X509Ptr = Owned<X509, X509_free>;
using Bio = Owned<BIO, BIO_free_all>;
using Bignum = Owned<BIGNUM, BN_free>;
using Extension = Owned<X509_EXTENSION, X509_EXTENSION_free>;
using X509Crl = Owned<X509_CRL, X509_CRL_free>;
using Revoked = Owned<X509_REVOKED, X509_REVOKED_free>;
using Asn1Integer = Owned<ASN1_INTEGER, ASN1_INTEGER_free>;
using Asn1Time = Owned<ASN1_TIME, ASN1_TIME_free>;

// The OpenSSL error queue as one line (emptied), for an error message.
inline std::string last_error() { return take_openssl_errors(); }

// PEM text of an in-memory BIO.
std::string bio_text(BIO* b);

}  // namespace og::aop::ossl
