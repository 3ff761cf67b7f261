// The agent's Prometheus endpoint ([metrics] listen): plain HTTP/1.x, one request per
// connection, GET or HEAD /metrics and nothing else. It is a network listener on a root
// daemon's only thread, so everything an unauthenticated peer can make it hold is bounded:
// connections (at the cap the oldest one still sending its request makes room), the request's
// size, the time to send it and to read the answer, and the work per answer (the text is
// rendered at most once per `cache_for`, however many ask).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "metrics_request.hpp"
#include "originguard/cidr.hpp"
#include "originguard/result.hpp"
#include "status.hpp"

namespace og {

class MetricsServer {
 public:
  using Render = std::function<std::string()>;
  struct Limits {
    std::size_t max_connections = 8;
    std::size_t max_request_bytes = 4096;
    std::chrono::milliseconds request_timeout{5000};    // from accept to the end of the request
    std::chrono::milliseconds response_timeout{10000};  // to write the answer
    std::chrono::milliseconds cache_for{1000};
  };

  MetricsServer(boost::asio::io_context& io, Render render, Limits limits);
  MetricsServer(boost::asio::io_context& io, Render render) : MetricsServer(io, std::move(render), Limits{}) {}
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Listens on `addr` and only there (an IPv6 address never takes IPv4 too); nullopt closes
  // the listener. Listening there already: nothing happens. A failure (address not on this
  // host yet, port taken) is reported by warnings() and tried again at the next call; the
  // agent calls it at start, on reload and every verify_interval.
  Status configure(const std::optional<SocketAddress>& addr);

  // The bound address (its port when 0 was asked for), nullopt when not listening.
  [[nodiscard]] std::optional<SocketAddress> listening() const;
  [[nodiscard]] std::size_t connections() const { return sessions_.size(); }
  // metrics.listen_failed while the configured address cannot be listened on.
  [[nodiscard]] std::vector<Warning> warnings() const;

 private:
  struct Session;
  using SessionPtr = std::shared_ptr<Session>;
  void accept(std::uint64_t generation);
  void admit(boost::asio::ip::tcp::socket sock);
  void read(const SessionPtr& s);
  void answer(const SessionPtr& s, HttpAsk ask);
  void close(const SessionPtr& s);
  const std::string& body();

  boost::asio::io_context& io_;
  Render render_;
  Limits limits_;
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
  std::optional<SocketAddress> want_;  // configured
  std::uint64_t generation_ = 0;       // of the acceptor: handlers of a closed one stop
  boost::asio::steady_timer backoff_;  // after an accept error (EMFILE): no busy loop
  std::list<SessionPtr> sessions_;     // oldest first
  std::string error_;                  // why want_ is not listened on
  std::string cache_;
  std::optional<std::chrono::steady_clock::time_point> cache_at_;
  std::shared_ptr<char> alive_ = std::make_shared<char>();  // handlers outliving the server stop
};

}  // namespace og
