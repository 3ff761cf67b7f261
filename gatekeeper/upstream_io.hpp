// The upstream side of a connection: connecting to the host's upstream (TLS, TCP or a unix
// socket, the PROXY header first), the worker's keep-alive pools of such connections
// (WorkerPools, over upstream_pool.hpp), and the byte splice of tcp mode and of WebSocket
// upgrades (pump, both directions). The deadline's scope over both sides (ExpiryScope).
// Instantiated in upstream_io.cpp for the three upstream types: TlsStream, TcpUp, UnixUp.
#pragma once

#include <chrono>
#include <memory>
#include <type_traits>

#include "session.hpp"

namespace og::gk::connection {

// One worker's upstream pools, one per upstream type: an io_context service, so that the
// pools are per worker without locks and are closed when the io_context shuts down.
class WorkerPools : public asio::execution_context::service {
 public:
  using key_type = WorkerPools;
  inline static asio::execution_context::id id;
  explicit WorkerPools(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}
  template <class Up>
  UpstreamPool<Up>& of() {
    if constexpr (std::is_same_v<Up, TlsStream>)
      return tls_;
    else if constexpr (std::is_same_v<Up, TcpUp>)
      return tcp_;
    else
      return unix_;
  }

 private:
  void shutdown() override {
    tls_.clear();
    tcp_.clear();
    unix_.clear();
  }
  UpstreamPool<TlsStream> tls_;
  UpstreamPool<TcpUp> tcp_;
  UpstreamPool<UnixUp> unix_;
};

// Connects `up` to the host's upstream and sends the PROXY header; logs and resets `up` on
// failure.
template <class Up>
awaitable<error_code> connect_upstream(std::unique_ptr<Up>& up, const ConnFacts& f, Deadline& dl);

// While an upstream exists, the deadline cancels both sides; back to the client only after.
template <class Up>
struct ExpiryScope {
  ExpiryScope(Deadline& dl, TlsStream& tls, std::unique_ptr<Up>& up) : dl_(dl), tls_(tls) {
    dl_.on_expiry([&tls, &up] {
      tls.cancel();
      if (up) up->cancel();
    });
  }
  ~ExpiryScope() {
    dl_.on_expiry([&tls = tls_] { tls.cancel(); });
  }
  ExpiryScope(const ExpiryScope&) = delete;
  ExpiryScope& operator=(const ExpiryScope&) = delete;
  Deadline& dl_;
  TlsStream& tls_;
};

template <class Up>
awaitable<void> splice(TlsStream& tls, Up& up, Deadline& dl, std::chrono::seconds idle,
                       Deadline::clock::time_point end);

}  // namespace og::gk::connection
