#include "metrics_server.hpp"

#include <algorithm>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/write.hpp>

#include "originguard/log.hpp"

namespace og {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

tcp::endpoint endpoint_of(const SocketAddress& a) {
  if (a.addr.family == Family::v4) {
    asio::ip::address_v4::bytes_type b;
    std::copy_n(a.addr.bytes.begin(), 4, b.begin());
    return {asio::ip::address_v4(b), a.port};
  }
  asio::ip::address_v6::bytes_type b;
  std::copy_n(a.addr.bytes.begin(), 16, b.begin());
  return {asio::ip::address_v6(b), a.port};
}

SocketAddress address_of(const tcp::endpoint& ep) {
  SocketAddress a;
  a.port = ep.port();
  if (ep.address().is_v4()) {
    a.addr.family = Family::v4;
    const auto b = ep.address().to_v4().to_bytes();
    std::copy(b.begin(), b.end(), a.addr.bytes.begin());
  } else {
    a.addr.family = Family::v6;
    const auto b = ep.address().to_v6().to_bytes();
    std::copy(b.begin(), b.end(), a.addr.bytes.begin());
  }
  return a;
}

std::string response(std::string_view status, std::string_view body, bool head_only, std::string_view extra = {}) {
  std::string out = "HTTP/1.1 ";
  out.append(status).append("\r\nContent-Type: ");
  out.append(body.empty() ? "text/plain" : kContentType);
  out.append("\r\nContent-Length: ").append(std::to_string(body.size()));
  out.append("\r\nConnection: close\r\n").append(extra).append("\r\n");
  if (!head_only) out.append(body);
  return out;
}

}  // namespace

struct MetricsServer::Session {
  Session(tcp::socket s, std::size_t max) : sock(std::move(s)), timer(sock.get_executor()), in(max, '\0') {}
  tcp::socket sock;
  asio::steady_timer timer;
  std::string in;
  std::size_t got = 0;
  std::string out;
  bool answering = false;
  bool closed = false;
};

MetricsServer::MetricsServer(asio::io_context& io, Render render, Limits limits)
    : io_(io), render_(std::move(render)), limits_(limits), backoff_(io) {}

MetricsServer::~MetricsServer() {
  alive_.reset();
  (void)configure(std::nullopt);
  while (!sessions_.empty()) close(sessions_.front());
}

std::optional<SocketAddress> MetricsServer::listening() const {
  if (!acceptor_) return std::nullopt;
  error_code ec;
  const auto ep = acceptor_->local_endpoint(ec);
  if (ec) return std::nullopt;
  return address_of(ep);
}

std::vector<Warning> MetricsServer::warnings() const {
  if (error_.empty() || !want_) return {};
  return {{"metrics.listen_failed",
           "[metrics] listen " + want_->to_string() + ": cannot listen (retried every verify_interval): " + error_}};
}

Status MetricsServer::configure(const std::optional<SocketAddress>& addr) {
  if (acceptor_ && addr == want_ && error_.empty()) return {};
  if (acceptor_) {
    // The old address stops taking connections; those it took get their answer.
    error_code ec;
    acceptor_->close(ec);
    acceptor_.reset();
    backoff_.cancel();
    ++generation_;
    log::info("metrics.closed", {{"listen", want_ ? want_->to_string() : ""}});
  }
  const bool retry = addr == want_ && !error_.empty();
  want_ = addr;
  if (!addr) {
    error_.clear();
    return {};
  }
  const auto ep = endpoint_of(*addr);
  tcp::acceptor a(io_);
  error_code ec;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  // "[::]:9463" means IPv6 only: the configured address and no other.
  if (!ec && ep.address().is_v6()) a.set_option(asio::ip::v6_only(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(16, ec);
  if (ec) {
    const std::string why = ec.message();
    if (!retry || why != error_) log::error("metrics.listen_failed", {{"listen", addr->to_string()}, {"error", why}});
    error_ = why;
    return fail("[metrics] listen " + addr->to_string() + ": " + why);
  }
  if (retry) log::info("metrics.listen_recovered", {{"listen", addr->to_string()}});
  error_.clear();
  acceptor_.emplace(std::move(a));
  log::info("metrics.listening", {{"listen", listening() ? listening()->to_string() : addr->to_string()}});
  accept(++generation_);
  return {};
}

void MetricsServer::accept(std::uint64_t generation) {
  acceptor_->async_accept([this, generation, alive = std::weak_ptr<char>(alive_)](error_code ec, tcp::socket sock) {
    if (alive.expired() || generation != generation_ || !acceptor_) return;  // closed or replaced
    if (ec) {
      // Out of descriptors or memory: try again shortly rather than spin on the error.
      log::warn("metrics.accept_failed", {{"error", ec.message()}});
      backoff_.expires_after(std::chrono::milliseconds(100));
      backoff_.async_wait([this, generation, alive](error_code e) {
        if (!e && !alive.expired() && generation == generation_ && acceptor_) accept(generation);
      });
      return;
    }
    admit(std::move(sock));
    accept(generation);
  });
}

void MetricsServer::admit(tcp::socket sock) {
  if (sessions_.size() >= limits_.max_connections) {
    // A scrape sends its request at once; whoever holds a connection without finishing one
    // (slowloris) is the one to drop. All busy being answered: the newcomer waits its turn.
    auto idle = std::find_if(sessions_.begin(), sessions_.end(), [](const SessionPtr& s) { return !s->answering; });
    if (idle == sessions_.end()) {
      error_code ec;
      sock.close(ec);
      return;
    }
    close(*idle);
  }
  auto s = std::make_shared<Session>(std::move(sock), limits_.max_request_bytes);
  sessions_.push_back(s);
  s->timer.expires_after(limits_.request_timeout);
  s->timer.async_wait([this, s, alive = std::weak_ptr<char>(alive_)](error_code ec) {
    if (!ec && !alive.expired()) close(s);
  });
  read(s);
}

void MetricsServer::read(const SessionPtr& s) {
  s->sock.async_read_some(asio::buffer(s->in.data() + s->got, s->in.size() - s->got),
                          [this, s, alive = std::weak_ptr<char>(alive_)](error_code ec, std::size_t n) {
                            if (alive.expired() || s->closed) return;
                            if (ec) return close(s);  // the peer went away (or sent nothing in time)
                            s->got += n;
                            const auto ask =
                                classify_http_request(std::string_view(s->in.data(), s->got), s->in.size());
                            if (ask == HttpAsk::need_more) return read(s);
                            answer(s, ask);
                          });
}

void MetricsServer::answer(const SessionPtr& s, HttpAsk ask) {
  s->answering = true;
  s->in.clear();
  s->in.shrink_to_fit();
  switch (ask) {
    case HttpAsk::metrics:
    case HttpAsk::metrics_head:
      s->out = response("200 OK", body(), ask == HttpAsk::metrics_head);
      break;
    case HttpAsk::not_found:
      s->out = response("404 Not Found", "", false);
      break;
    case HttpAsk::bad_method:
      s->out = response("405 Method Not Allowed", "", false, "Allow: GET, HEAD\r\n");
      break;
    case HttpAsk::too_large:
      s->out = response("431 Request Header Fields Too Large", "", false);
      break;
    case HttpAsk::bad_request:
    case HttpAsk::need_more:
      s->out = response("400 Bad Request", "", false);
      break;
  }
  s->timer.cancel();
  s->timer.expires_after(limits_.response_timeout);
  s->timer.async_wait([this, s, alive = std::weak_ptr<char>(alive_)](error_code ec) {
    if (!ec && !alive.expired()) close(s);
  });
  asio::async_write(s->sock, asio::buffer(s->out),
                    [this, s, alive = std::weak_ptr<char>(alive_)](error_code, std::size_t) {
                      if (alive.expired() || s->closed) return;
                      error_code ignored;
                      s->sock.shutdown(tcp::socket::shutdown_send, ignored);
                      close(s);
                    });
}

void MetricsServer::close(const SessionPtr& s) {
  if (s->closed) return;
  s->closed = true;
  error_code ec;
  s->timer.cancel();
  s->sock.close(ec);
  sessions_.remove(s);
}

const std::string& MetricsServer::body() {
  const auto now = std::chrono::steady_clock::now();
  if (!cache_at_ || now - *cache_at_ >= limits_.cache_for) {
    cache_ = render_();
    cache_at_ = now;
  }
  return cache_;
}

}  // namespace og
