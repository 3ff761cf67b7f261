#include "tls_libctx.hpp"

#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "originguard/log.hpp"
#include "ssl_util.hpp"

namespace og::gk {
namespace {

// The provider's state: the real default provider (loaded in the default context) and the
// decoder subset. Set once before the provider is loaded, never changed afterwards; released
// from OPENSSL_cleanup's own exit hook, before OpenSSL tears the default provider down.
struct View {
  OSSL_PROVIDER* real = nullptr;
  std::vector<OSSL_ALGORITHM> decoders;  // terminated by an all-null entry
  std::vector<OSSL_ALGORITHM> keymgmts;  // likewise
  OSSL_LIB_CTX* libctx = nullptr;
  OSSL_PROVIDER* loaded = nullptr;
};

View& view() {
  static View* const v = new View;  // outlives static destructors; freed by release()
  return *v;
}

void release() {
  View& v = view();
  if (v.loaded) OSSL_PROVIDER_unload(v.loaded);  // the view first, then the provider it borrows from
  if (v.libctx) OSSL_LIB_CTX_free(v.libctx);
  if (v.real) OSSL_PROVIDER_unload(v.real);
  v = View{};
}

// Whether the algorithm's first name (before ':') is one of keep.
template <std::size_t N>
bool named(const OSSL_ALGORITHM& a, const std::string_view (&keep)[N]) {
  const std::string_view names = a.algorithm_names ? a.algorithm_names : "";
  const std::string_view first = names.substr(0, names.find(':'));
  for (std::string_view k : keep)
    if (first == k) return true;
  return false;
}

// A decoder a TLS certificate's SubjectPublicKeyInfo can need: input DER, structure SPKI,
// for a key type a TLS certificate authenticates with (RSA, RSA-PSS, EC, Ed25519, Ed448), or the
// generic SPKI step ("DER"). Not DH, X25519, X448 (key agreement: never a TLS certificate's key),
// DSA, DHX or SM2.
bool spki_decoder(const OSSL_ALGORITHM& a) {
  static constexpr std::string_view kKeep[] = {"DER", "EC", "RSA", "RSA-PSS", "ED25519", "ED448"};
  return a.property_definition && std::strstr(a.property_definition, "input=der") &&
         std::strstr(a.property_definition, "structure=SubjectPublicKeyInfo") && named(a, kKeep);
}

// A key type TLS uses: groups (EC, X25519, X448, DH), signatures (RSA, RSA-PSS, EC, Ed25519,
// Ed448) and HMAC (TLS 1.2 CBC record MACs, TLS 1.3 Finished). Not DSA, DHX, SM2, the KDF and
// other MAC key types: libssl uses EVP_KDF/EVP_MAC for those.
bool tls_keymgmt(const OSSL_ALGORITHM& a) {
  static constexpr std::string_view kKeep[] = {"EC",      "X25519",  "X448",  "DH",  "RSA",
                                               "RSA-PSS", "ED25519", "ED448", "HMAC"};
  return named(a, kKeep);
}

// Copies the entries of the real provider's table for op that keep() accepts, null-terminated.
bool subset(OSSL_PROVIDER* real, int op, bool (*keep)(const OSSL_ALGORITHM&), std::vector<OSSL_ALGORITHM>& out) {
  int no_cache = 0;
  const OSSL_ALGORITHM* all = OSSL_PROVIDER_query_operation(real, op, &no_cache);
  for (const OSSL_ALGORITHM* a = all; a && a->algorithm_names; ++a)
    if (keep(*a)) out.push_back(*a);
  OSSL_PROVIDER_unquery_operation(real, op, all);
  if (out.empty()) return false;
  out.push_back(OSSL_ALGORITHM{nullptr, nullptr, nullptr, nullptr});
  return true;
}

const OSSL_ALGORITHM* query_operation(void*, int op, int* no_cache) {
  if (op == OSSL_OP_DECODER || op == OSSL_OP_KEYMGMT) {
    *no_cache = 0;
    return op == OSSL_OP_DECODER ? view().decoders.data() : view().keymgmts.data();
  }
  return OSSL_PROVIDER_query_operation(view().real, op, no_cache);
}

void unquery_operation(void*, int op, const OSSL_ALGORITHM* algs) {
  if (op != OSSL_OP_DECODER && op != OSSL_OP_KEYMGMT) OSSL_PROVIDER_unquery_operation(view().real, op, algs);
}

int get_capabilities(void*, const char* capability, OSSL_CALLBACK* cb, void* arg) {
  // TLS-GROUP and TLS-SIGALG: without them libssl would see no groups and no signatures.
  return OSSL_PROVIDER_get_capabilities(view().real, capability, cb, arg);
}

const OSSL_PARAM* gettable_params(void*) { return OSSL_PROVIDER_gettable_params(view().real); }

int get_params(void*, OSSL_PARAM params[]) { return OSSL_PROVIDER_get_params(view().real, params); }

void teardown(void*) {}  // the provider context is the real provider's, released with it

template <class F>
OSSL_DISPATCH entry(int id, F* f) {
  return {id, reinterpret_cast<void (*)()>(f)};
}

const OSSL_DISPATCH kDispatch[] = {
    entry(OSSL_FUNC_PROVIDER_TEARDOWN, teardown),
    entry(OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, gettable_params),
    entry(OSSL_FUNC_PROVIDER_GET_PARAMS, get_params),
    entry(OSSL_FUNC_PROVIDER_QUERY_OPERATION, query_operation),
    entry(OSSL_FUNC_PROVIDER_UNQUERY_OPERATION, unquery_operation),
    entry(OSSL_FUNC_PROVIDER_GET_CAPABILITIES, get_capabilities),
    {0, nullptr},
};

int provider_init(const OSSL_CORE_HANDLE*, const OSSL_DISPATCH*, const OSSL_DISPATCH** out, void** provctx) {
  // The real provider's own context: its algorithms are called with the context they expect.
  *provctx = OSSL_PROVIDER_get0_provider_ctx(view().real);
  *out = kDispatch;
  return *provctx != nullptr;
}

// Why the view must not be used in this process ("" when it can be): it mirrors the default
// provider of OpenSSL 3.0 only, so a newer OpenSSL (which caches decoders itself, and whose
// libssl may want key types the view lacks, e.g. ML-KEM groups), FIPS mode or another active
// provider (an HSM's keys, a configured default property query) keep the default context.
std::string unsuitable() {
  if (OPENSSL_version_major() != 3 || OPENSSL_version_minor() != 0)
    return "OpenSSL " + std::to_string(OPENSSL_version_major()) + "." + std::to_string(OPENSSL_version_minor()) +
           " (the view is for 3.0)";
  if (EVP_default_properties_is_fips_enabled(nullptr)) return "FIPS mode is enabled";
  std::string others;
  OSSL_PROVIDER_do_all(
      nullptr,
      [](OSSL_PROVIDER* p, void* arg) {
        const std::string_view name = OSSL_PROVIDER_get0_name(p);
        if (name != "default" && name != "base") *static_cast<std::string*>(arg) += std::string(name) + " ";
        return 1;
      },
      &others);
  if (!others.empty()) return "provider(s) " + others + "active";
  return "";
}

OSSL_LIB_CTX* build() {
  View& v = view();
  v.real = OSSL_PROVIDER_load(nullptr, "default");
  if (!v.real || OPENSSL_atexit(release) != 1) return nullptr;
  if (!subset(v.real, OSSL_OP_KEYMGMT, tls_keymgmt, v.keymgmts) ||
      !subset(v.real, OSSL_OP_DECODER, spki_decoder, v.decoders))
    return nullptr;
  v.libctx = OSSL_LIB_CTX_new();
  if (!v.libctx || OSSL_PROVIDER_add_builtin(v.libctx, "originguard-spki", provider_init) != 1) return nullptr;
  v.loaded = OSSL_PROVIDER_load(v.libctx, "originguard-spki");
  return v.loaded ? v.libctx : nullptr;
}

}  // namespace

OSSL_LIB_CTX* tls_libctx() {
  static OSSL_LIB_CTX* const ctx = [] {
    if (const std::string why = unsuitable(); !why.empty()) {
      og::log::info("gk_tls_libctx", {{"view", false}, {"reason", why}});
      return static_cast<OSSL_LIB_CTX*>(nullptr);
    }
    OSSL_LIB_CTX* c = build();
    if (!c) og::log::warn("gk_tls_libctx", {{"view", false}, {"reason", "setup failed: " + take_ssl_errors()}});
    return c;
  }();
  return ctx;
}

TlsLibctxScope::TlsLibctxScope() {
  if (OSSL_LIB_CTX* view = tls_libctx()) previous_ = OSSL_LIB_CTX_set0_default(view);
}

TlsLibctxScope::~TlsLibctxScope() {
  if (previous_) OSSL_LIB_CTX_set0_default(previous_);  // the global default clears the thread's
}

int tls_libctx_decoder_count() { return tls_libctx() ? static_cast<int>(view().decoders.size()) - 1 : 0; }

}  // namespace og::gk
