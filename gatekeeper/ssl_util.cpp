#include "ssl_util.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>

#include "originguard/log.hpp"

namespace og::gk {

void log_ssl_errors(std::string_view event) {
  ERR_print_errors_cb(
      [](const char* str, std::size_t len, void* u) -> int {
        std::string_view line(str, len);
        while (!line.empty() && line.back() == '\n') line.remove_suffix(1);
        og::log::warn(*static_cast<std::string_view*>(u), {{"openssl", line}});
        return 1;
      },
      &event);
}

namespace {

Result<BioPtr> open_file(const std::filesystem::path& file) {
  BioPtr bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    return fail_errno(file.string());
  }
  return bio;
}

Result<std::vector<X509Ptr>> read_certs(BIO* bio, std::string_view origin) {
  std::vector<X509Ptr> out;
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) out.emplace_back(x);
  unsigned long e = ERR_peek_last_error();
  if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE && !out.empty()) {
    ERR_clear_error();
  } else if (e != 0) {
    return fail(std::string(origin) + ": " + take_ssl_errors());
  }
  if (out.empty()) return fail(std::string(origin) + ": no PEM certificate found");
  return out;
}

}  // namespace

Result<std::vector<X509Ptr>> load_certs_pem(std::string_view pem, std::string_view origin) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return fail("BIO_new_mem_buf: " + take_ssl_errors());
  return read_certs(bio.get(), origin);
}

Result<std::vector<X509Ptr>> load_certs_file(const std::filesystem::path& file) {
  auto bio = open_file(file);
  if (!bio) return fail(bio.error());
  return read_certs(bio->get(), file.string());
}

Result<std::vector<X509CrlPtr>> load_crls_file(const std::filesystem::path& file) {
  auto bio = open_file(file);
  if (!bio) return fail(bio.error());
  std::vector<X509CrlPtr> out;
  while (X509_CRL* c = PEM_read_bio_X509_CRL(bio->get(), nullptr, nullptr, nullptr)) out.emplace_back(c);
  unsigned long e = ERR_peek_last_error();
  if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE && !out.empty())
    ERR_clear_error();
  else if (e != 0)
    return fail(file.string() + ": " + take_ssl_errors());
  if (out.empty()) return fail(file.string() + ": no PEM CRL found");
  return out;
}

Result<EvpPkeyPtr> load_key_file(const std::filesystem::path& file) {
  auto bio = open_file(file);
  if (!bio) return fail(bio.error());
  // A private key others may read is a key already lost; one its group may rewrite lets that
  // group substitute it. Checked on the descriptor that is then read (links followed, as a
  // Kubernetes Secret volume needs: its files are links to a 0440 file). 0600 and 0640 pass.
  FILE* fp = nullptr;
  BIO_get_fp(bio->get(), &fp);
  struct stat st {};
  if (fp == nullptr || ::fstat(::fileno(fp), &st) != 0) return fail_errno(file.string());
  if ((st.st_mode & (S_IRWXO | S_IWGRP)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(file.string() + ": private key file has mode " + mode +
                ", readable or writable by others or writable by its group; make it 0600 or 0640");
  }
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio->get(), nullptr, nullptr, nullptr));
  if (!key) return fail(file.string() + ": not a PEM private key (" + take_ssl_errors() + ")");
  return key;
}

namespace {
EVP_MD* g_sha256 = nullptr;
void free_sha256() {  // from OPENSSL_cleanup, before the provider it came from goes
  EVP_MD_free(g_sha256);
  g_sha256 = nullptr;
}
}  // namespace

const EVP_MD* sha256_md() {
  static const bool fetched = [] {
    g_sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (g_sha256 && OPENSSL_atexit(free_sha256) != 1) free_sha256();  // then EVP_sha256() below
    return true;
  }();
  (void)fetched;
  return g_sha256 ? g_sha256 : EVP_sha256();
}

Sha256 sha256(std::span<const std::uint8_t> data) {
  Sha256 out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, sha256_md(), nullptr);
  return out;
}

Result<Sha256> cert_sha256(X509* cert) {
  Sha256 out{};
  unsigned int len = 0;
  if (X509_digest(cert, sha256_md(), out.data(), &len) != 1) return fail("X509_digest: " + take_ssl_errors());
  return out;
}

Result<Sha256> spki_sha256(X509* cert) {
  // Not X509_pubkey_digest: that hashes the key BIT STRING only; pins hash the whole SPKI.
  unsigned char* der = nullptr;
  int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (n <= 0) return fail("i2d_X509_PUBKEY: " + take_ssl_errors());
  Sha256 out = sha256({der, static_cast<std::size_t>(n)});
  OPENSSL_free(der);
  return out;
}

std::string base64(std::span<const std::uint8_t> data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string hex(std::span<const std::uint8_t> data) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (auto b : data) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::string subject_rfc2253(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

std::string subject_cn(X509* cert) {
  X509_NAME* name = X509_get_subject_name(cert);
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

std::vector<std::string> dns_sans(X509* cert) {
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    if (g->type != GEN_DNS) continue;
    const ASN1_IA5STRING* s = g->d.dNSName;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<std::size_t>(ASN1_STRING_length(s)));
  }
  GENERAL_NAMES_free(names);
  return out;
}

}  // namespace og::gk
