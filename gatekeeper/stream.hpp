// The gatekeeper's byte streams, lean enough for 10,000 idle connections per worker:
//  - Deadline: one lazily re-armed timer per connection; arming is a store, and on expiry it
//    cancels the connection's pending socket waits, which then report `timed_out`.
//  - TlsStream: OpenSSL directly on the non-blocking socket (SSL_set_fd), waiting for
//    readiness only when OpenSSL asks for it. No BIO pair and, with SSL_MODE_RELEASE_BUFFERS,
//    no record buffers while a connection is idle (asio's ssl::stream keeps ~70 KB).
//  - PlainStream: the same interface over a TCP or unix socket (upstreams).
#pragma once

// Before any Boost header: boost 1.74's awaitable.hpp uses std::exchange without including it.
#include <utility>

#include <openssl/ssl.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>

#include "ssl_util.hpp"

namespace og::gk {

using error_code = boost::system::error_code;

class Deadline {
 public:
  using clock = std::chrono::steady_clock;
  explicit Deadline(const boost::asio::any_io_executor& ex);
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  // Called once when a deadline passes (cancel the sockets' pending operations).
  void on_expiry(std::function<void()> f);
  void expires_after(clock::duration d);
  void disarm();
  // Whether the last deadline passed; cleared by the next expires_after.
  [[nodiscard]] bool expired() const;

 private:
  struct State;
  std::shared_ptr<State> st_;
};

// Maps a cancelled wait to `timed_out` when the deadline caused it.
[[nodiscard]] error_code waited(const error_code& ec, const Deadline* d);

class TlsStream {
 public:
  // Binds `ssl` to the socket's descriptor (set non-blocking).
  TlsStream(boost::asio::ip::tcp::socket sock, SslPtr ssl, Deadline* deadline);
  ~TlsStream() = default;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  boost::asio::awaitable<error_code> handshake();
  // 0 bytes with ec set on end of stream (`eof` for close_notify, `ssl::error::stream_truncated`
  // for a TCP FIN without it) or error. Ops refuse to wait (`timed_out`) once the deadline passed.
  boost::asio::awaitable<std::size_t> read_some(void* p, std::size_t n, error_code& ec);
  boost::asio::awaitable<error_code> write_all(const void* p, std::size_t n);
  // Two slices as one record when they fit in one (header + first body bytes).
  boost::asio::awaitable<error_code> write_all2(const void* a, std::size_t na, const void* b, std::size_t nb);
  // Until a record can be read, without holding a buffer meanwhile (idle keep-alive).
  boost::asio::awaitable<error_code> wait_readable();
  // Raw bytes on the socket before the handshake (a PROXY header to a TLS upstream).
  boost::asio::awaitable<error_code> socket_write(std::string_view bytes);
  // Sends close_notify (best effort, no wait for the peer's).
  boost::asio::awaitable<void> shutdown();
  void send_close_notify();
  // Ends the connection so that the peer cannot take it for a complete stream: no close_notify,
  // and a TCP reset instead of a FIN (a response that could not be completed).
  void abort();
  // Whether an idle connection may carry the next request: no application data, EOF or error
  // pending (a late or unasked response would be read as the next one's). Post-handshake
  // messages (session tickets) are consumed.
  [[nodiscard]] bool idle_clean();

  // A pooled upstream connection serves one client connection's deadline at a time.
  void set_deadline(Deadline* d) { deadline_ = d; }
  [[nodiscard]] SSL* ssl() const { return ssl_.get(); }
  [[nodiscard]] boost::asio::ip::tcp::socket& socket() { return sock_; }
  void cancel();
  void close();

 private:
  // Waits as SSL_get_error(r) asks; false with ec set when it is a real error.
  boost::asio::awaitable<bool> wait_for(int r, error_code& ec);
  void forget_fd();
  boost::asio::ip::tcp::socket sock_;
  SslPtr ssl_;  // after sock_: freed first, while the descriptor is still open
  Deadline* deadline_;
};

template <class Proto>
class PlainStream {
 public:
  using socket_type = typename Proto::socket;
  PlainStream(socket_type sock, Deadline* deadline) : sock_(std::move(sock)), deadline_(deadline) {}
  boost::asio::awaitable<std::size_t> read_some(void* p, std::size_t n, error_code& ec);
  boost::asio::awaitable<error_code> write_all(const void* p, std::size_t n);
  // Header and body slice in one gather write.
  boost::asio::awaitable<error_code> write_all2(const void* a, std::size_t na, const void* b, std::size_t nb);
  boost::asio::awaitable<error_code> wait_readable();
  // Ends the sending direction (FIN), e.g. when the client half-closed in tcp mode.
  void shutdown_send() {
    error_code ignored;
    sock_.shutdown(socket_type::shutdown_send, ignored);
  }
  [[nodiscard]] socket_type& socket() { return sock_; }
  void set_deadline(Deadline* d) { deadline_ = d; }
  void cancel() {
    error_code ignored;
    sock_.cancel(ignored);
  }
  void close() {
    error_code ignored;
    sock_.shutdown(socket_type::shutdown_both, ignored);
    sock_.close(ignored);
  }
  // As TlsStream::idle_clean: no byte, EOF or error pending.
  [[nodiscard]] bool idle_clean();

 private:
  socket_type sock_;
  Deadline* deadline_;
};

extern template class PlainStream<boost::asio::ip::tcp>;
extern template class PlainStream<boost::asio::local::stream_protocol>;

}  // namespace og::gk
