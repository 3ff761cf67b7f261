// Test helpers shared by the CA and rotation tests: does a client certificate verify against
// a CA bundle (what the gatekeeper trusts)?
#pragma once

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "aop/ca.hpp"
#include "aop/ossl.hpp"

namespace og::aop::test {

inline ossl::X509Ptr parse(const std::string& pem) {
  ossl::Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return ossl::X509Ptr(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
}

// Verifies `leaf` as a TLS client certificate against every certificate in `bundle_pem`, at `at`.
inline bool verifies_as_client(const std::string& leaf_pem, const std::string& bundle_pem, TimePoint at) {
  auto leaf = parse(leaf_pem);
  if (!leaf) return false;
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  ossl::Bio b(BIO_new_mem_buf(bundle_pem.data(), static_cast<int>(bundle_pem.size())));
  while (X509* x = PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store.get(), x);
    X509_free(x);
  }
  ERR_clear_error();
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(at));
  return X509_verify_cert(ctx.get()) == 1;
}

// The X509_V_* result of verifying `leaf` as a TLS client against the certificates and CRLs
// in `pem` (the exported bundle: CAs then CRLs) with CRL checking of the leaf, as the
// gatekeeper's aop host does. X509_V_OK when accepted.
inline int crl_verify_result(const std::string& leaf_pem, const std::string& pem, TimePoint at) {
  auto leaf = parse(leaf_pem);
  if (!leaf) return -1;
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  ossl::Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  STACK_OF(X509_INFO)* infos = PEM_X509_INFO_read_bio(b.get(), nullptr, nullptr, nullptr);
  for (int i = 0; infos && i < sk_X509_INFO_num(infos); ++i) {
    X509_INFO* in = sk_X509_INFO_value(infos, i);
    if (in->x509) X509_STORE_add_cert(store.get(), in->x509);
    if (in->crl) X509_STORE_add_crl(store.get(), in->crl);
  }
  sk_X509_INFO_pop_free(infos, X509_INFO_free);
  ERR_clear_error();
  X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(at));
  X509_verify_cert(ctx.get());
  return X509_STORE_CTX_get_error(ctx.get());
}

// The serials (lower-case hex) each CRL in `pem` lists, CRL by CRL, with its issuer's CN.
inline std::vector<std::pair<std::string, std::vector<std::string>>> crl_serials(const std::string& pem) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  ossl::Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  while (X509_CRL* c = PEM_read_bio_X509_CRL(b.get(), nullptr, nullptr, nullptr)) {
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_CRL_get_issuer(c), NID_commonName, cn, sizeof cn);
    std::vector<std::string> serials;
    STACK_OF(X509_REVOKED)* revs = X509_CRL_get_REVOKED(c);
    for (int i = 0; revs && i < sk_X509_REVOKED_num(revs); ++i) {
      ossl::Bignum bn(ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revs, i)), nullptr));
      char* h = BN_bn2hex(bn.get());
      std::string s = h;
      OPENSSL_free(h);
      for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      serials.push_back(s);
    }
    std::sort(serials.begin(), serials.end());
    out.emplace_back(cn, std::move(serials));
    X509_CRL_free(c);
  }
  ERR_clear_error();
  return out;
}

// The certificates of the exported bundle, without its CRLs.
inline std::string certs_only(const std::string& pem) {
  std::string out;
  for (std::size_t at = 0;;) {
    const auto b = pem.find("-----BEGIN CERTIFICATE-----", at);
    if (b == std::string::npos) return out;
    const std::string end = "-----END CERTIFICATE-----\n";
    const auto e = pem.find(end, b);
    if (e == std::string::npos) return out;
    out += pem.substr(b, e + end.size() - b);
    at = e + end.size();
  }
}

}  // namespace og::aop::test
