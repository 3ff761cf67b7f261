// Test helpers shared by the CA and rotation tests: does a client certificate verify against
// a CA bundle (what the gatekeeper trusts)?
#pragma once

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include <memory>
#include <string>

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

}  // namespace og::aop::test
