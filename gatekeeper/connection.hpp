// One accepted TCP connection: TLS handshake on the current policy generation, the host's
// failure mode, then http (Beast's parser, per-request Host check, bodies forwarded as framed)
// or tcp (byte splice) proxying to the host's upstream. Runs as a coroutine on its worker's
// io_context, over the lean streams of stream.hpp.
#pragma once

// Before any Boost header: boost 1.74's awaitable.hpp uses std::exchange without including it.
#include <utility>

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <optional>
#include <vector>

#include "edge_ranges.hpp"
#include "source_limiter.hpp"
#include "tls_policy.hpp"
#include "upstream_pool.hpp"

namespace og::gk {

struct Shared {
  // The policy generation new connections use; a connection pins its own for its whole life.
  std::atomic<std::shared_ptr<const PolicySet>> policy;
  std::shared_ptr<EdgeRanges> edges;
  std::atomic<std::size_t> connections{0};
  std::atomic<std::uint64_t> refused_sni{0}, refused_overload{0}, handshake_errors{0};
  // Closed at accept: outside the edge snapshot while every host requires it; over
  // max_connections_per_source.
  std::atomic<std::uint64_t> refused_not_edge{0}, refused_source_limit{0};
  SourceLimiter sources;    // open connections per source not in the edge snapshot
  PoolStats upstream_pool;  // the workers' upstream keep-alive pools, summed
};

// One of max_connections, taken at accept in one atomic step, so that workers accepting at the
// same moment cannot pass the limit together (a check followed by a later add let two of them
// in at the limit), and given back when the connection ends. The count never exceeds the
// limit, not even for an instant (a compare-and-swap, not an add taken back).
class ConnectionSlot {
 public:
  [[nodiscard]] static std::optional<ConnectionSlot> take(std::atomic<std::size_t>& open, std::size_t max) {
    std::size_t now = open.load(std::memory_order_relaxed);
    do {
      if (now >= max) return std::nullopt;
    } while (!open.compare_exchange_weak(now, now + 1, std::memory_order_relaxed));
    return ConnectionSlot(open);
  }
  ConnectionSlot(ConnectionSlot&& o) noexcept : open_(std::exchange(o.open_, nullptr)) {}
  ConnectionSlot& operator=(ConnectionSlot&&) = delete;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot() {
    if (open_) open_->fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  explicit ConnectionSlot(std::atomic<std::size_t>& open) : open_(&open) {}
  std::atomic<std::size_t>* open_;
};

// `edges`: the snapshot the source was judged by at accept (`peer_is_edge`: it is in it); the
// connection is held to it until a newer one judges it again. `source`: its slot in
// shared.sources, held for the connection's life (none for edge sources or without a cap).
// `slot`: its place in shared.connections, likewise.
boost::asio::awaitable<void> serve_connection(boost::asio::ip::tcp::socket sock, Shared& shared,
                                              std::shared_ptr<const RangeSet> edges, bool peer_is_edge,
                                              ConnectionSlot slot, std::optional<SourceLimiter::Slot> source);

// v4-mapped IPv6 addresses come back as IPv4.
[[nodiscard]] Address to_address(const boost::asio::ip::address& a);

}  // namespace og::gk
