// Move-only owners for OpenSSL handles, OpenSSL error routing into og::log, and the small
// certificate helpers (PEM loading, SHA-256 fingerprints, base64) the policies need.
#pragma once

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "originguard/handle.hpp"
#include "originguard/openssl_error.hpp"
#include "originguard/result.hpp"

namespace og::gk {

template <auto Fn>
using Deleter = og::FreeWith<Fn>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Deleter<SSL_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME_free>>;
using X509CrlPtr = std::unique_ptr<X509_CRL, Deleter<X509_CRL_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
// A list of X509_NAMEs that owns its entries (sk_X509_NAME_pop_free is a macro-made
// function taking the element free function too, so FreeWith cannot call it).
struct X509NameStackFree {
  void operator()(STACK_OF(X509_NAME) * s) const noexcept { sk_X509_NAME_pop_free(s, X509_NAME_free); }
};
using X509NameStackPtr = std::unique_ptr<STACK_OF(X509_NAME), X509NameStackFree>;

using Sha256 = std::array<std::uint8_t, 32>;

// Drains OpenSSL's error queue into one log line per error (ERR_print_errors_cb).
void log_ssl_errors(std::string_view event);
// Drains OpenSSL's error queue into a "; "-joined string (for Result messages).
[[nodiscard]] inline std::string take_ssl_errors() { return og::take_openssl_errors(); }

[[nodiscard]] Result<std::vector<X509Ptr>> load_certs_pem(std::string_view pem, std::string_view origin);
[[nodiscard]] Result<std::vector<X509Ptr>> load_certs_file(const std::filesystem::path& file);
[[nodiscard]] Result<std::vector<X509CrlPtr>> load_crls_file(const std::filesystem::path& file);
[[nodiscard]] Result<EvpPkeyPtr> load_key_file(const std::filesystem::path& file);

// SHA-256 fetched once per process (EVP_sha256() is an implicit fetch, with its locks, per use).
[[nodiscard]] const EVP_MD* sha256_md();
[[nodiscard]] Sha256 sha256(std::span<const std::uint8_t> data);
[[nodiscard]] Result<Sha256> cert_sha256(X509* cert);  // of the DER certificate
[[nodiscard]] Result<Sha256> spki_sha256(X509* cert);  // of the DER SubjectPublicKeyInfo (HPKP pin)
[[nodiscard]] std::string base64(std::span<const std::uint8_t> data);
[[nodiscard]] std::string hex(std::span<const std::uint8_t> data);

[[nodiscard]] std::string subject_rfc2253(X509* cert);
[[nodiscard]] std::string subject_cn(X509* cert);
[[nodiscard]] std::vector<std::string> dns_sans(X509* cert);

}  // namespace og::gk
