#include "upstream_io.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "block_cache.hpp"
#include "originguard/log.hpp"

namespace og::gk::connection {

namespace {

auto redirect(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

void log_connect_failure(const ConnFacts& f, const error_code& ec, bool tls) {
  og::log::warn("gk_upstream_connect_failed", {{"host", f.host->cfg.label()},
                                               {"upstream", f.host->cfg.upstream.to_string()},
                                               {"tls", tls},
                                               {"error", ec.message()}});
}

// Copies bytes src→dst until EOF/error/idle timeout/`end`; no buffer is held while waiting.
template <class Src, class Dst>
awaitable<error_code> pump(Src& src, Dst& dst, Deadline& dl, std::chrono::seconds idle,
                           Deadline::clock::time_point end) {
  error_code ec;
  auto arm = [&] { dl.expires_after(std::min<Deadline::clock::duration>(idle, end - Deadline::clock::now())); };
  for (;;) {
    arm();
    if ((ec = co_await src.wait_readable())) co_return ec;
    Block buf;
    std::size_t n = co_await src.read_some(buf.p, kReadChunk, ec);
    if (ec) co_return ec;
    arm();
    if ((ec = co_await dst.write_all(buf.p, n))) co_return ec;
  }
}

}  // namespace

template <class Up>
awaitable<error_code> connect_upstream(std::unique_ptr<Up>& up, const ConnFacts& f, Deadline& dl) {
  error_code ec;
  auto ex = co_await asio::this_coro::executor;
  const Upstream& u = f.host->cfg.upstream;
  dl.expires_after(f.cfg->upstream_connect_timeout);
  if constexpr (std::is_same_v<Up, TlsStream>) {
    tcp::endpoint ep(asio::ip::make_address(u.host, ec), u.port);
    if (ec) co_return ec;
    tcp::socket s(ex);
    s.open(ep.protocol(), ec);
    if (ec) co_return ec;
    SslPtr ssl(SSL_new(f.host->upstream_ctx.get()));
    if (!ssl) co_return asio::error::no_memory;
    const HostConfig& h = f.host->cfg;
    if (!h.upstream_server_name.empty()) {
      SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(h.upstream_server_name.c_str()));
      SSL_set1_host(ssl.get(), h.upstream_server_name.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), u.host.c_str());
    }
    SSL_set_connect_state(ssl.get());
    up = std::make_unique<Up>(std::move(s), std::move(ssl), &dl);
    co_await up->socket().async_connect(ep, redirect(ec));
    ec = waited(ec, &dl);
    if (!ec) up->socket().set_option(tcp::no_delay(true), ec);
    // PROXY header in clear first, as HAProxy's send-proxy does, then the TLS handshake.
    if (!ec && !f.proxy_header.empty()) ec = co_await up->socket_write(f.proxy_header);
    if (!ec) ec = co_await up->handshake();
  } else {
    up = std::make_unique<Up>(typename Up::socket_type(ex), &dl);
    if constexpr (std::is_same_v<Up, TcpUp>) {
      tcp::endpoint ep(asio::ip::make_address(u.host, ec), u.port);
      if (!ec) co_await up->socket().async_connect(ep, redirect(ec));
      ec = waited(ec, &dl);
      if (!ec) up->socket().set_option(tcp::no_delay(true), ec);
    } else {
      co_await up->socket().async_connect(unix_proto::endpoint(u.unix_path.string()), redirect(ec));
      ec = waited(ec, &dl);
    }
    if (!ec && !f.proxy_header.empty()) ec = co_await up->write_all(f.proxy_header.data(), f.proxy_header.size());
  }
  if (ec) {
    log_connect_failure(f, ec, std::is_same_v<Up, TlsStream>);
    up.reset();
  }
  co_return ec;
}

// Both directions at once until `end` (the connection's lifetime). A client half-close is
// passed on; the connection ends with the upstream's side (or an error/idle timeout on either).
// Only a clean end of the upstream's stream (FIN, or close_notify from a TLS upstream) or a
// timeout ends the client's with close_notify; a reset or truncated upstream stream is passed
// on as a reset, so that the client cannot take a cut stream for a complete one.
template <class Up>
awaitable<void> splice(TlsStream& tls, Up& up, Deadline& dl, std::chrono::seconds idle,
                       Deadline::clock::time_point end) {
  auto ex = co_await asio::this_coro::executor;
  auto done = std::make_shared<bool>(false);
  asio::steady_timer wait(ex, asio::steady_timer::time_point::max());
  asio::co_spawn(
      ex,
      [&]() -> awaitable<void> {
        error_code ec = co_await pump(tls, up, dl, idle, end);
        if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
          if constexpr (std::is_same_v<Up, TlsStream>)
            co_await up.shutdown();
          else
            up.shutdown_send();
        }
      },
      [done, &wait](std::exception_ptr) {
        *done = true;
        wait.cancel();
      });
  const error_code ec = co_await pump(up, tls, dl, idle, end);
  if (ec == asio::error::eof || ec == asio::error::timed_out)
    co_await tls.shutdown();
  else
    tls.abort();
  tls.cancel();
  up.cancel();
  error_code ignored;
  while (!*done) co_await wait.async_wait(redirect(ignored));
}

template awaitable<error_code> connect_upstream(std::unique_ptr<TlsStream>&, const ConnFacts&, Deadline&);
template awaitable<error_code> connect_upstream(std::unique_ptr<TcpUp>&, const ConnFacts&, Deadline&);
template awaitable<error_code> connect_upstream(std::unique_ptr<UnixUp>&, const ConnFacts&, Deadline&);
template awaitable<void> splice(TlsStream&, TlsStream&, Deadline&, std::chrono::seconds, Deadline::clock::time_point);
template awaitable<void> splice(TlsStream&, TcpUp&, Deadline&, std::chrono::seconds, Deadline::clock::time_point);
template awaitable<void> splice(TlsStream&, UnixUp&, Deadline&, std::chrono::seconds, Deadline::clock::time_point);

}  // namespace og::gk::connection
