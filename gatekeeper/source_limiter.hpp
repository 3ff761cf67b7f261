// Open connections per source, for [gatekeeper] max_connections_per_source: counted per IPv4
// address, and per /64 for IPv6 (a single host usually holds a whole /64, so counting its
// addresses one by one would cap nothing). Shared by every worker; a connection holds a Slot
// for its whole life and gives it back when it ends.
#pragma once

#include <array>
#include <cstddef>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "originguard/cidr.hpp"

namespace og::gk {

class SourceLimiter {
 public:
  // The counted unit of an address: the address itself (IPv4, also IPv4-mapped IPv6), its
  // /64 (IPv6).
  [[nodiscard]] static Address source_of(const Address& a);

  class Slot {
   public:
    Slot(Slot&& o) noexcept : owner_(o.owner_), key_(o.key_) { o.owner_ = nullptr; }
    Slot& operator=(Slot&& o) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();

   private:
    friend class SourceLimiter;
    Slot(SourceLimiter* owner, const Address& key) : owner_(owner), key_(key) {}
    SourceLimiter* owner_;
    Address key_;
  };

  // A slot when the source of `a` has fewer than `limit` connections open, else nullopt.
  [[nodiscard]] std::optional<Slot> acquire(const Address& a, std::size_t limit);
  // Connections open from the source of `a`.
  [[nodiscard]] std::size_t open(const Address& a) const;
  // Sources with a connection open.
  [[nodiscard]] std::size_t sources() const;

 private:
  struct Hash {
    std::size_t operator()(const Address& a) const noexcept;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<Address, std::size_t, Hash> open;
  };
  Shard& shard(const Address& key);
  const Shard& shard(const Address& key) const;
  void release(const Address& key);
  std::array<Shard, 16> shards_;  // by hash: workers accepting at once rarely share a lock
};

}  // namespace og::gk
