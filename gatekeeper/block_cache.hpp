// The connection code's read buffers: a per-worker (thread_local) cache of 16 KiB blocks, the
// flat_buffer allocator that draws on it (Buffer, for the HTTP relay's client and upstream
// input) and the one-block scope of a splice read/write (Block). Nothing else allocates here.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <cstddef>
#include <memory>
#include <new>
#include <vector>

namespace og::gk::connection {

// The size of one read (and of one cached block).
constexpr std::size_t kReadChunk = 16384;

// Read buffers come and go with every keep-alive request (none is held while idle). A small
// per-worker cache of 16 KiB blocks keeps that churn out of malloc, whose arena trimming
// (madvise + TLB shootdowns) otherwise costs ~10 % of a busy worker.
class BlockCache {
 public:
  ~BlockCache() {
    for (void* p : free_) ::operator delete(p);
  }
  void* take() {
    if (free_.empty()) return ::operator new(kReadChunk);
    void* p = free_.back();
    free_.pop_back();
    return p;
  }
  void give(void* p) {
    if (free_.size() < kMaxCached)
      free_.push_back(p);
    else
      ::operator delete(p);
  }
  static BlockCache& mine() {
    thread_local BlockCache cache;
    return cache;
  }

 private:
  static constexpr std::size_t kMaxCached = 128;
  std::vector<void*> free_;
};

// flat_buffer's allocator: 16 KiB requests (an empty buffer's first prepare) use the cache.
template <class T>
struct BlockAllocator {
  using value_type = T;
  BlockAllocator() = default;
  template <class U>
  explicit BlockAllocator(const BlockAllocator<U>&) {}
  T* allocate(std::size_t n) {
    if (n * sizeof(T) == kReadChunk) return static_cast<T*>(BlockCache::mine().take());
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) {
    if (n * sizeof(T) == kReadChunk)
      BlockCache::mine().give(p);
    else
      std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const BlockAllocator<U>&) const {
    return true;
  }
};
using Buffer = boost::beast::basic_flat_buffer<BlockAllocator<char>>;

// One cached block for the duration of a splice read/write.
struct Block {
  Block() : p(static_cast<char*>(BlockCache::mine().take())) {}
  ~Block() { BlockCache::mine().give(p); }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  char* p;
};

}  // namespace og::gk::connection
