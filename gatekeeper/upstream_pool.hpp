// Per-worker pool of kept-alive upstream connections (http mode), shared by the client
// connections of one io_context: an idle client connection then holds no upstream socket.
//
// A connection is lent for exactly one request/response exchange and comes back only when
// return_verdict() finds nothing that could make the next exchange read this one's bytes
// (request smuggling, response mixing): a response must never reach another client.
#pragma once

// Before any Boost header: boost 1.74's awaitable.hpp uses std::exchange without including it.
#include <utility>

#include <array>
#include <atomic>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "config.hpp"

namespace og::gk {

// Everything that defines an upstream connection: a connection is only ever reused under an
// equal key, so a reload that changes any of it never gets an old connection.
struct UpstreamKey {
  std::string host;
  std::uint16_t port = 0;
  std::string unix_path;
  bool tls = false;
  std::string ca;
  std::string server_name;
  // The generation's client SSL_CTX (TLS upstreams): a reload that re-reads the same
  // upstream_ca path (new contents) never reuses a connection verified under the old one. A
  // pooled connection's SSL holds a reference on it, so the address is not reused meanwhile.
  const void* ctx = nullptr;
  bool operator==(const UpstreamKey&) const = default;
};

struct UpstreamKeyHash {
  std::size_t operator()(const UpstreamKey& k) const noexcept;
};

[[nodiscard]] UpstreamKey upstream_key(const HostConfig& h, const void* upstream_ctx);

// Whether a host's upstream connections are pooled: http mode, no PROXY header (it binds an
// upstream connection to one client), upstream_keepalive > 0.
[[nodiscard]] bool pooled(const HostConfig& h, const GatekeeperConfig& g);

// Why a connection was closed instead of being (re)used.
enum class Discard : std::uint8_t {
  request_incomplete,   // the request (head or body framing) was not sent whole
  response_incomplete,  // the response parser did not finish
  close_delimited,      // the response body ended with the connection
  upgrade,              // a 1xx upgrade / 101 / CONNECT (or a request asking for one)
  connection_close,     // either side said Connection: close, or HTTP/1.0 without keep-alive
  extra_bytes,          // bytes buffered or pending after the response: a desync
  error,                // the exchange failed (an error page, an abort)
  pool_full,            // upstream_keepalive idle connections for the key already
  idle_timeout,         // idle for upstream_keepalive_timeout
  upstream_closed,      // a byte, EOF or error arrived while idle
  count_,
};
[[nodiscard]] const char* to_string(Discard d);

// How an exchange on a lent connection ended, as the relay saw it.
struct ExchangeEnd {
  bool request_complete = false;     // head and the whole body (framing done) went up
  bool response_complete = false;    // a final response's parser is_done()
  bool close_delimited = false;      // its body ran until EOF
  bool upgrade = false;              // 101, an Upgrade request, CONNECT
  bool request_keep_alive = false;   // the request as sent (version, Connection)
  bool response_keep_alive = false;  // the response (version, Connection)
  std::size_t extra_bytes = 0;       // buffered from the upstream after the response
  bool pending_input = false;        // a byte, EOF or error waits on the socket
};

// nullopt: the connection may go back to the pool. Checked in an order where the most
// specific reason wins (an upgrade is also "not keep-alive" on the response side).
[[nodiscard]] std::optional<Discard> return_verdict(const ExchangeEnd& e);

// Process-wide counters (summed over the workers' pools), for status and metrics.
struct PoolStats {
  std::atomic<std::int64_t> idle{0};  // pooled idle connections now
  std::atomic<std::uint64_t> reuses{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Discard::count_)> discards{};
  void discard(Discard d) { discards[static_cast<std::size_t>(d)].fetch_add(1, std::memory_order_relaxed); }
};

// The idle connections of one worker for one upstream type (TlsStream, PlainStream<...>): no
// locks, only its io_context's thread touches it. An idle connection keeps a read-readiness
// wait armed: any byte or EOF while idle closes it (a late or unasked response, the upstream's
// own keep-alive timeout), as does upstream_keepalive_timeout.
template <class Up>
class UpstreamPool {
 public:
  UpstreamPool() = default;
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;
  ~UpstreamPool() { clear(); }

  // The most recently returned idle connection for `key` (LIFO: the others can time out), or
  // null. It comes back with no wait pending on it.
  std::unique_ptr<Up> take(const UpstreamKey& key, PoolStats& stats) {
    auto it = idle_.find(key);
    if (it == idle_.end()) return nullptr;
    auto& list = it->second;
    std::shared_ptr<Entry> e = std::move(list.back());
    list.pop_back();
    if (list.empty()) idle_.erase(it);
    e->pooled = false;
    stats.idle.fetch_sub(1, std::memory_order_relaxed);
    e->timer.cancel();
    e->up->cancel();  // the readiness wait; its handler finds the entry gone
    return std::move(e->up);
  }

  // Keeps `up` (idle, nothing pending, verdict passed) for the next exchange under `key`.
  template <class Executor>
  void give(const Executor& ex, const UpstreamKey& key, std::unique_ptr<Up> up, std::size_t max_idle,
            std::chrono::seconds timeout, PoolStats& stats) {
    auto& list = idle_[key];
    if (list.size() >= max_idle) {
      if (list.empty()) idle_.erase(key);
      up->close();
      stats.discard(Discard::pool_full);
      return;
    }
    auto e = std::make_shared<Entry>(ex, std::move(up));
    e->key = &idle_.find(key)->first;  // unordered_map nodes are stable until erased
    list.push_back(e);
    e->self = std::prev(list.end());
    e->pooled = true;
    stats.idle.fetch_add(1, std::memory_order_relaxed);
    std::weak_ptr<Entry> w = e;
    e->timer.expires_after(timeout);
    e->timer.async_wait([this, w, &stats](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto live = w.lock(); live && live->pooled) drop(*live, Discard::idle_timeout, stats);
    });
    arm_watch(e, stats);
  }

  [[nodiscard]] std::size_t idle_count() const {
    std::size_t n = 0;
    for (const auto& [k, l] : idle_) n += l.size();
    return n;
  }

  // Closes every idle connection (shutdown); the stats' idle gauge follows.
  void clear(PoolStats* stats = nullptr) {
    for (auto& [k, list] : idle_)
      for (auto& e : list) {
        e->pooled = false;
        e->timer.cancel();
        e->up->close();
        if (stats) stats->idle.fetch_sub(1, std::memory_order_relaxed);
      }
    idle_.clear();
  }

 private:
  struct Entry {
    template <class Executor>
    Entry(const Executor& ex, std::unique_ptr<Up> u) : up(std::move(u)), timer(ex) {}
    std::unique_ptr<Up> up;
    boost::asio::steady_timer timer;
    const UpstreamKey* key = nullptr;
    typename std::list<std::shared_ptr<Entry>>::iterator self;
    bool pooled = false;
  };

  void arm_watch(const std::shared_ptr<Entry>& e, PoolStats& stats) {
    std::weak_ptr<Entry> w = e;
    e->up->socket().async_wait(boost::asio::socket_base::wait_read,
                               [this, w, &stats](const boost::system::error_code& ec) {
                                 auto live = w.lock();
                                 if (!live || !live->pooled || ec == boost::asio::error::operation_aborted) return;
                                 // A TLS upstream's post-handshake messages (session tickets)
                                 // are consumed; anything else makes the connection unusable.
                                 if (!ec && live->up->idle_clean()) {
                                   arm_watch(live, stats);
                                   return;
                                 }
                                 drop(*live, Discard::upstream_closed, stats);
                               });
  }

  void drop(Entry& e, Discard why, PoolStats& stats) {
    e.pooled = false;
    e.timer.cancel();
    e.up->close();
    stats.idle.fetch_sub(1, std::memory_order_relaxed);
    stats.discard(why);
    auto it = idle_.find(*e.key);
    it->second.erase(e.self);  // may destroy e
    if (it->second.empty()) idle_.erase(it);
  }

  std::unordered_map<UpstreamKey, std::list<std::shared_ptr<Entry>>, UpstreamKeyHash> idle_;
};

}  // namespace og::gk
