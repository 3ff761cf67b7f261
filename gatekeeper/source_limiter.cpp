#include "source_limiter.hpp"

#include <algorithm>

namespace og::gk {

Address SourceLimiter::source_of(const Address& a) {
  Address key = a;
  if (key.family != Family::v6) return key;
  static constexpr std::array<std::uint8_t, 12> kV4Mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kV4Mapped.begin(), kV4Mapped.end(), key.bytes.begin())) {
    // ::ffff:a.b.c.d (a dual-stack socket): the IPv4 address, else every IPv4 client would
    // share the ::ffff:0:0/64.
    key.family = Family::v4;
    std::copy_n(a.bytes.begin() + 12, 4, key.bytes.begin());
    std::fill(key.bytes.begin() + 4, key.bytes.end(), 0);
    return key;
  }
  std::fill(key.bytes.begin() + 8, key.bytes.end(), 0);
  return key;
}

std::size_t SourceLimiter::Hash::operator()(const Address& a) const noexcept {
  std::size_t h = static_cast<std::size_t>(a.family);
  for (auto b : a.bytes) h = h * 1099511628211ULL ^ b;  // FNV-1 style; keys are few and short
  return h;
}

SourceLimiter::Shard& SourceLimiter::shard(const Address& key) { return shards_[Hash{}(key) % shards_.size()]; }
const SourceLimiter::Shard& SourceLimiter::shard(const Address& key) const {
  return shards_[Hash{}(key) % shards_.size()];
}

std::optional<SourceLimiter::Slot> SourceLimiter::acquire(const Address& a, std::size_t limit) {
  const Address key = source_of(a);
  Shard& s = shard(key);
  std::lock_guard lock(s.mu);
  std::size_t& n = s.open[key];
  if (n >= limit) {
    if (n == 0) s.open.erase(key);
    return std::nullopt;
  }
  ++n;
  return Slot(this, key);
}

void SourceLimiter::release(const Address& key) {
  Shard& s = shard(key);
  std::lock_guard lock(s.mu);
  auto it = s.open.find(key);
  if (it != s.open.end() && --it->second == 0) s.open.erase(it);
}

std::size_t SourceLimiter::open(const Address& a) const {
  const Address key = source_of(a);
  const Shard& s = shard(key);
  std::lock_guard lock(s.mu);
  auto it = s.open.find(key);
  return it == s.open.end() ? 0 : it->second;
}

std::size_t SourceLimiter::sources() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.open.size();
  }
  return n;
}

SourceLimiter::Slot::~Slot() {
  if (owner_) owner_->release(key_);
}

SourceLimiter::Slot& SourceLimiter::Slot::operator=(Slot&& o) noexcept {
  if (this != &o) {
    if (owner_) owner_->release(key_);
    owner_ = o.owner_;
    key_ = o.key_;
    o.owner_ = nullptr;
  }
  return *this;
}

}  // namespace og::gk
