#include "verdict_cache.hpp"

namespace og::gk {

bool VerdictCache::lookup(const Sha256& chain, std::time_t now) {
  std::lock_guard lock(mu_);
  auto it = map_.find(chain);
  if (it == map_.end()) return false;
  if (now < it->second.not_before || now >= it->second.until) {
    map_.erase(it);  // its slot in order_ is dropped lazily on eviction
    return false;
  }
  return true;
}

void VerdictCache::insert(const Sha256& chain, std::time_t not_before, std::time_t until) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mu_);
  if (map_.contains(chain)) return;
  while (map_.size() >= capacity_ && !order_.empty()) {
    map_.erase(order_.front());
    order_.pop_front();
  }
  if (order_.size() > 2 * capacity_) std::erase_if(order_, [&](const Sha256& k) { return !map_.contains(k); });
  map_.emplace(chain, Entry{not_before, until});
  order_.push_back(chain);
}

std::size_t VerdictCache::size() const {
  std::lock_guard lock(mu_);
  return map_.size();
}

}  // namespace og::gk
