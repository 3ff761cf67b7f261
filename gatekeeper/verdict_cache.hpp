// Remembers which presented client chains verified, keyed by SHA-256 of the chain's DER.
// The edge presents the same certificate on every connection; re-verifying its chain costs
// an RSA-4096 signature check per handshake. Only successes are cached, each valid from the
// chain's latest notBefore until the earliest of its notAfters and of the host's CRLs'
// nextUpdates (re-checked on every hit, with X509_verify_cert's bounds: notBefore <= now <
// until); the cache lives in one policy generation, so a reload (new CA, CRL, pins) starts
// empty. The client's CertificateVerify signature is still checked by OpenSSL on every
// handshake.
#pragma once

#include <cstddef>
#include <ctime>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "ssl_util.hpp"

namespace og::gk {

class VerdictCache {
 public:
  explicit VerdictCache(std::size_t capacity) : capacity_(capacity) {}
  [[nodiscard]] bool lookup(const Sha256& chain, std::time_t now);
  // Valid while not_before <= now < until.
  void insert(const Sha256& chain, std::time_t not_before, std::time_t until);
  [[nodiscard]] std::size_t size() const;

 private:
  struct Hash {
    std::size_t operator()(const Sha256& h) const noexcept {
      std::size_t v = 0;
      for (std::size_t i = 0; i < sizeof v; ++i) v = (v << 8) | h[i];
      return v;
    }
  };
  struct Entry {
    std::time_t not_before, until;
  };
  std::size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<Sha256, Entry, Hash> map_;
  std::deque<Sha256> order_;  // insertion order, for FIFO eviction
};

}  // namespace og::gk
