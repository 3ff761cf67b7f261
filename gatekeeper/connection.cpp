#include "connection.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include "headers.hpp"
#include "originguard/log.hpp"
#include "proxy_protocol.hpp"

namespace og::gk {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using unix_proto = asio::local::stream_protocol;
using error_code = boost::system::error_code;
using TlsStream = asio::ssl::stream<beast::tcp_stream>;
using asio::awaitable;

std::shared_ptr<const Generation> Generation::make(std::shared_ptr<const PolicySet> set) {
  auto g = std::make_shared<Generation>();
  SSL_CTX_up_ref(set->dispatch_ctx());  // asio's context frees its native handle
  g->ctx = std::make_unique<asio::ssl::context>(set->dispatch_ctx());
  for (const auto& h : set->hosts()) {
    if (h->upstream_ctx) {
      SSL_CTX_up_ref(h->upstream_ctx.get());
      g->upstream_tls.push_back(std::make_unique<asio::ssl::context>(h->upstream_ctx.get()));
    } else {
      g->upstream_tls.push_back(nullptr);
    }
  }
  g->set = std::move(set);
  return g;
}

Address to_address(const asio::ip::address& a) {
  Address out;
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return to_address(asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()));
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    out.family = Family::v4;
    std::copy(b.begin(), b.end(), out.bytes.begin());
  } else {
    auto b = a.to_v6().to_bytes();
    out.family = Family::v6;
    std::copy(b.begin(), b.end(), out.bytes.begin());
  }
  return out;
}

namespace {

auto redirect(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

template <class S>
auto& lowest(S& s) {
  return beast::get_lowest_layer(s);
}

// Connection counter held for a connection's lifetime.
struct Slot {
  explicit Slot(std::atomic<std::size_t>& n) : n_(n) { n_.fetch_add(1, std::memory_order_relaxed); }
  ~Slot() { n_.fetch_sub(1, std::memory_order_relaxed); }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  std::atomic<std::size_t>& n_;
};

const char* reason_phrase(unsigned status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 408:
      return "Request Timeout";
    case 421:
      return "Misdirected Request";
    case 431:
      return "Request Header Fields Too Large";
    case 496:
      return "SSL Certificate Required";
    case 502:
      return "Bad Gateway";
    case 504:
      return "Gateway Timeout";
    default:
      return "Error";
  }
}

// A short page and Connection: close; then close_notify (bounded wait for the peer's).
awaitable<void> send_page(TlsStream& tls, unsigned status, std::string_view detail) {
  std::string body = "<html><head><title>" + std::to_string(status) + " " + reason_phrase(status) +
                     "</title></head><body><h1>" + std::to_string(status) + " " + reason_phrase(status) + "</h1><p>" +
                     std::string(detail) + "</p></body></html>\n";
  std::string msg = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
                    "\r\nServer: originguard-gatekeeper\r\nContent-Type: text/html\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  error_code ec;
  lowest(tls).expires_after(std::chrono::seconds(5));
  co_await asio::async_write(tls, asio::buffer(msg), redirect(ec));
  if (ec) co_return;
  // Lingering close: a client still sending (e.g. a huge header) would otherwise get a TCP
  // reset that can destroy the response before it reads it. Discard its input for up to 1 s.
  lowest(tls).expires_after(std::chrono::seconds(1));
  std::array<char, 4096> sink;
  for (std::size_t total = 0; total < (1u << 20);) {
    std::size_t n = co_await tls.async_read_some(asio::buffer(sink), redirect(ec));
    if (ec) break;
    total += n;
  }
  if (ec == beast::error::timeout) co_return;
  lowest(tls).expires_after(std::chrono::seconds(1));
  co_await tls.async_shutdown(redirect(ec));
}

// ---- upstream -------------------------------------------------------------------------

template <class Proto>
using UpStream = beast::basic_stream<Proto>;

template <class Proto>
typename Proto::endpoint endpoint_of(const Upstream& u) {
  if constexpr (std::is_same_v<Proto, tcp>)
    return tcp::endpoint(asio::ip::make_address(u.host), u.port);
  else
    return unix_proto::endpoint(u.unix_path.string());
}

struct ConnFacts {
  const HostPolicy* host = nullptr;
  const GatekeeperConfig* cfg = nullptr;
  ClientIdentity id;
  std::string proxy_header;                    // sent first on every new upstream connection ("" when off)
  std::string peer;                            // for logs
  asio::ssl::context* upstream_tls = nullptr;  // set when the host's upstream speaks TLS
};

using TlsUp = asio::ssl::stream<UpStream<tcp>>;

template <class Proto>
awaitable<error_code> connect_upstream(std::optional<UpStream<Proto>>& up, const ConnFacts& f) {
  error_code ec;
  up.emplace(co_await asio::this_coro::executor);
  up->expires_after(f.cfg->upstream_connect_timeout);
  co_await up->async_connect(endpoint_of<Proto>(f.host->cfg.upstream), redirect(ec));
  if constexpr (std::is_same_v<Proto, tcp>)
    if (!ec) up->socket().set_option(tcp::no_delay(true), ec);
  if (!ec && !f.proxy_header.empty()) co_await asio::async_write(*up, asio::buffer(f.proxy_header), redirect(ec));
  if (ec) {
    og::log::warn(
        "gk_upstream_connect_failed",
        {{"host", f.host->cfg.label()}, {"upstream", f.host->cfg.upstream.to_string()}, {"error", ec.message()}});
    up.reset();
  }
  co_return ec;
}

// TLS to the upstream: PROXY header (if any) in clear first, as HAProxy's send-proxy does,
// then a verified TLS handshake (upstream_ca, name upstream_server_name or the address).
awaitable<error_code> connect_upstream(std::optional<TlsUp>& up, const ConnFacts& f) {
  error_code ec;
  const HostConfig& h = f.host->cfg;
  up.emplace(co_await asio::this_coro::executor, *f.upstream_tls);
  auto& tcp_up = up->next_layer();
  tcp_up.expires_after(f.cfg->upstream_connect_timeout);
  co_await tcp_up.async_connect(endpoint_of<tcp>(h.upstream), redirect(ec));
  if (!ec) tcp_up.socket().set_option(tcp::no_delay(true), ec);
  if (!ec && !f.proxy_header.empty()) co_await asio::async_write(tcp_up, asio::buffer(f.proxy_header), redirect(ec));
  if (!ec) {
    SSL* ssl = up->native_handle();
    if (!h.upstream_server_name.empty()) {
      SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(h.upstream_server_name.c_str()));
      SSL_set1_host(ssl, h.upstream_server_name.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), h.upstream.host.c_str());
    }
    co_await up->async_handshake(asio::ssl::stream_base::client, redirect(ec));
  }
  if (ec) {
    og::log::warn("gk_upstream_connect_failed",
                  {{"host", h.label()}, {"upstream", h.upstream.to_string()}, {"tls", true}, {"error", ec.message()}});
    up.reset();
  }
  co_return ec;
}

// Copies bytes src→dst until EOF/error/idle timeout.
template <class Src, class Dst>
awaitable<void> pump(Src& src, Dst& dst, std::chrono::seconds idle) {
  std::array<char, 16384> buf;
  error_code ec;
  for (;;) {
    lowest(src).expires_after(idle);
    std::size_t n = co_await src.async_read_some(asio::buffer(buf), redirect(ec));
    if (ec) co_return;
    lowest(dst).expires_after(idle);
    co_await asio::async_write(dst, asio::buffer(buf.data(), n), redirect(ec));
    if (ec) co_return;
  }
}

// Both directions at once; when the upstream side ends the whole connection ends.
template <class Up>
awaitable<void> splice(TlsStream& tls, Up& up, std::chrono::seconds idle) {
  auto ex = co_await asio::this_coro::executor;
  auto done = std::make_shared<bool>(false);
  asio::steady_timer wait(ex, asio::steady_timer::time_point::max());
  asio::co_spawn(ex, pump(tls, up, idle), [done, &wait](std::exception_ptr) {
    *done = true;
    wait.cancel();
  });
  co_await pump(up, tls, idle);
  error_code ec;
  lowest(tls).socket().shutdown(tcp::socket::shutdown_both, ec);
  lowest(up).socket().shutdown(asio::socket_base::shutdown_both, ec);
  lowest(tls).cancel();
  while (!*done) co_await wait.async_wait(redirect(ec));
}

template <class Up>
awaitable<void> run_tcp(TlsStream& tls, ConnFacts& f) {
  std::optional<Up> up;
  if (co_await connect_upstream(up, f)) co_return;
  co_await splice(tls, *up, f.cfg->idle_timeout);
}

// ---- http mode ------------------------------------------------------------------------

template <bool isRequest, class In, class Out>
awaitable<error_code> relay_body(In& in, beast::flat_buffer& inbuf, Out& out,
                                 http::parser<isRequest, http::buffer_body>& p,
                                 http::serializer<isRequest, http::buffer_body>& sr, std::chrono::seconds idle) {
  error_code ec;
  std::array<char, 16384> buf;
  do {
    if (!p.is_done()) {
      p.get().body().data = buf.data();
      p.get().body().size = buf.size();
      lowest(in).expires_after(idle);
      co_await http::async_read(in, inbuf, p, redirect(ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return ec;
      p.get().body().size = buf.size() - p.get().body().size;
      p.get().body().data = buf.data();
      p.get().body().more = !p.is_done();
    } else {
      p.get().body().data = nullptr;
      p.get().body().size = 0;
      p.get().body().more = false;
    }
    lowest(out).expires_after(idle);
    co_await http::async_write(out, sr, redirect(ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return ec;
  } while (!p.is_done() && !sr.is_done());
  co_return ec;
}

// Header then body, chunk by chunk through a 16 KiB buffer (Beast's relay pattern).
template <bool isRequest, class In, class Out>
awaitable<error_code> relay(In& in, beast::flat_buffer& inbuf, Out& out, http::parser<isRequest, http::buffer_body>& p,
                            std::chrono::seconds idle) {
  http::serializer<isRequest, http::buffer_body> sr{p.get()};
  error_code ec;
  lowest(out).expires_after(idle);
  co_await http::async_write_header(out, sr, redirect(ec));
  if (ec) co_return ec;
  co_return co_await relay_body(in, inbuf, out, p, sr, idle);
}

bool expects_continue(const http::request_header<>& h) {
  auto v = h[http::field::expect];
  return v.size() == 12 && beast::iequals(v, "100-continue");
}

template <class Up>
awaitable<void> run_http(TlsStream& tls, ConnFacts& f, const PolicySet& set) {
  const auto& cfg = *f.cfg;
  std::optional<Up> up;
  beast::flat_buffer cbuf, ubuf;
  error_code ec;
  for (;;) {
    // Idle wait for the first byte of the next request, then the header deadline.
    if (cbuf.size() == 0) {
      lowest(tls).expires_after(cfg.idle_timeout);
      std::size_t n = co_await tls.async_read_some(cbuf.prepare(4096), redirect(ec));
      if (ec) co_return;
      cbuf.commit(n);
    }
    http::request_parser<http::buffer_body> req;
    req.header_limit(static_cast<std::uint32_t>(cfg.max_header_bytes));
    req.body_limit(std::numeric_limits<std::uint64_t>::max());
    lowest(tls).expires_after(cfg.header_timeout);
    co_await http::async_read_header(tls, cbuf, req, redirect(ec));
    if (ec == http::error::header_limit) {
      co_await send_page(tls, 431, "Request header too large.");
      co_return;
    }
    // A header timeout (slowloris) closes the socket: beast's stream closes it on expiry.
    if (ec) {
      if (ec != http::error::end_of_stream && ec != asio::error::eof && ec != asio::ssl::error::stream_truncated)
        co_await send_page(tls, 400, "Malformed request.");
      co_return;
    }
    auto& msg = req.get();
    switch (check_host(set.table(), f.host->index, msg[http::field::host], msg.target())) {
      case HostCheck::ok:
        break;
      case HostCheck::misdirected:
        og::log::info("gk_misdirected",
                      {{"host", f.host->cfg.label()}, {"peer", f.peer}, {"header", msg[http::field::host]}});
        co_await send_page(tls, 421, "This host is not served on this TLS connection.");
        co_return;
      case HostCheck::missing:
      case HostCheck::malformed:
        co_await send_page(tls, 400, "Missing or malformed Host.");
        co_return;
    }
    rewrite_request_headers(msg.base(), f.id);
    const bool client_keep_alive = msg.keep_alive();
    const bool head = msg.method() == http::verb::head;
    const bool want_continue = expects_continue(msg);

    if (!up) {
      ubuf.clear();
      if (co_await connect_upstream(up, f)) {
        co_await send_page(tls, 502, "Upstream unavailable.");
        co_return;
      }
    }
    // With Expect: 100-continue the upstream answers first: 100 → relay the body, anything
    // else is final and the unread body forces the client connection closed.
    bool body_relayed = false;
    std::optional<http::serializer<true, http::buffer_body>> req_sr;
    if (want_continue) {
      req_sr.emplace(msg);
      lowest(*up).expires_after(cfg.idle_timeout);
      co_await http::async_write_header(*up, *req_sr, redirect(ec));
      if (ec) {
        co_await send_page(tls, 502, "Upstream write failed.");
        co_return;
      }
    }
    bool close_client = !client_keep_alive;
    for (bool first = true;; first = false) {
      if (!want_continue && first) {
        ec = co_await relay<true>(tls, cbuf, *up, req, cfg.idle_timeout);
        body_relayed = true;
        if (ec) {
          if (ec == beast::error::timeout) co_await send_page(tls, 504, "Upstream timed out.");
          co_return;
        }
      }
      http::response_parser<http::buffer_body> res;
      res.body_limit(std::numeric_limits<std::uint64_t>::max());
      if (head) res.skip(true);
      lowest(*up).expires_after(cfg.idle_timeout);
      co_await http::async_read_header(*up, ubuf, res, redirect(ec));
      if (ec) {
        co_await send_page(tls, ec == beast::error::timeout ? 504 : 502, "Upstream response failed.");
        co_return;
      }
      const unsigned status = res.get().result_int();
      if (status == 101) {
        ec = co_await relay<false>(*up, ubuf, tls, res, cfg.idle_timeout);
        if (ec) co_return;
        // Protocol switch (e.g. WebSocket): bytes already buffered go first, then splice.
        if (cbuf.size()) co_await asio::async_write(*up, cbuf.data(), redirect(ec));
        if (ubuf.size()) co_await asio::async_write(tls, ubuf.data(), redirect(ec));
        if (ec) co_return;
        co_await splice(tls, *up, cfg.idle_timeout);
        co_return;
      }
      ec = co_await relay<false>(*up, ubuf, tls, res, cfg.idle_timeout);
      if (ec) co_return;
      if (status >= 100 && status < 200) {
        if (status == 100 && want_continue && !body_relayed) {
          ec = co_await relay_body(tls, cbuf, *up, req, *req_sr, cfg.idle_timeout);
          body_relayed = true;
          if (ec) co_return;
        }
        continue;
      }
      if (!res.keep_alive()) up.reset();
      if (res.get().need_eof()) close_client = true;
      if (!body_relayed && !req.is_done()) close_client = true;
      break;
    }
    if (close_client) {
      lowest(tls).expires_after(std::chrono::seconds(1));
      co_await tls.async_shutdown(redirect(ec));
      co_return;
    }
  }
}

std::string peer_string(const tcp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

}  // namespace

awaitable<void> serve_connection(tcp::socket sock, Shared& shared) {
  Slot slot(shared.connections);
  auto gen = shared.gen.load();
  const PolicySet& set = *gen->set;
  const GatekeeperConfig& cfg = set.config();
  error_code ec;
  const auto peer = sock.remote_endpoint(ec);
  if (ec) co_return;
  const auto local = sock.local_endpoint(ec);
  if (ec) co_return;
  sock.set_option(tcp::no_delay(true), ec);

  ConnTls conn;
  conn.set = &set;
  const Address peer_addr = to_address(peer.address());
  conn.peer_is_edge = shared.edges->current()->contains(peer_addr);
  TlsStream tls(beast::tcp_stream(std::move(sock)), *gen->ctx);
  SSL* ssl = tls.native_handle();
  attach(ssl, &conn);

  lowest(tls).expires_after(cfg.handshake_timeout);
  co_await tls.async_handshake(asio::ssl::stream_base::server, redirect(ec));
  const std::string peer_s = peer_string(peer);
  if (ec) {
    if (!conn.refusal.empty()) {
      shared.refused_sni.fetch_add(conn.refusal.ends_with("sni") ? 1 : 0, std::memory_order_relaxed);
      og::log::info("gk_handshake_refused", {{"reason", conn.refusal}, {"sni", conn.sni}, {"peer", peer_s}});
    } else if (conn.host && conn.verify == VerifyState::failed) {
      og::log::info("gk_client_cert_refused",
                    {{"host", conn.host->cfg.label()}, {"peer", peer_s}, {"reason", conn.verify_reason}});
    } else if (conn.host && conn.host->cfg.mtls == Mtls::required && SSL_get0_peer_certificate(ssl) == nullptr) {
      conn.host->stats.refused_no_cert.fetch_add(1, std::memory_order_relaxed);
      og::log::info("gk_client_cert_refused",
                    {{"host", conn.host->cfg.label()}, {"peer", peer_s}, {"reason", "no client certificate"}});
    } else {
      shared.handshake_errors.fetch_add(1, std::memory_order_relaxed);
      og::log::debug("gk_handshake_failed", {{"peer", peer_s}, {"sni", conn.sni}, {"error", ec.message()}});
    }
    co_return;
  }
  const HostPolicy* host = conn.host;
  if (!host) co_return;
  X509* peer_cert = SSL_get0_peer_certificate(ssl);
  if (SSL_session_reused(ssl)) {
    // Belt and braces next to the per-host session id context and ticket keys.
    const std::string was = session_sni(SSL_get0_session(ssl));
    if (was != conn.sni) {
      og::log::warn("gk_cross_host_resumption", {{"sni", conn.sni}, {"session_host", was}, {"peer", peer_s}});
      co_return;
    }
    if (host->cfg.mtls != Mtls::off && peer_cert)
      conn.verify = SSL_get_verify_result(ssl) == X509_V_OK ? VerifyState::success : VerifyState::failed;
  }
  if (client_refused(conn)) {
    if (conn.verify == VerifyState::none) host->stats.refused_no_cert.fetch_add(1, std::memory_order_relaxed);
    og::log::info(
        "gk_client_cert_refused",
        {{"host", host->cfg.label()},
         {"peer", peer_s},
         {"reason", conn.verify == VerifyState::none ? std::string("no client certificate") : conn.verify_reason},
         {"on_failure", to_string(host->cfg.on_failure)}});
    switch (host->cfg.on_failure) {
      case OnFailure::http_403:
        co_await send_page(tls, 403, "Forbidden.");
        break;
      case OnFailure::http_496:
        co_await send_page(tls, 496, "A valid client certificate is required.");
        break;
      case OnFailure::alert:
      case OnFailure::close:
        break;
    }
    co_return;
  }
  host->stats.handshakes_ok.fetch_add(1, std::memory_order_relaxed);

  ConnFacts f;
  f.host = host;
  f.cfg = &cfg;
  f.peer = peer_s;
  f.id.verify = to_string(conn.verify);
  const bool verified = host->cfg.mtls != Mtls::off && conn.verify == VerifyState::success;
  f.id.trusted_edge = verified || (host->cfg.mtls == Mtls::off && host->cfg.require_edge_ip && conn.peer_is_edge);
  std::optional<Sha256> fp;
  if (peer_cert) {
    if (auto h = cert_sha256(peer_cert)) fp = *h;
    if (fp) f.id.cert_sha256 = hex(*fp);
    f.id.subject = subject_rfc2253(peer_cert);
  }
  if (host->cfg.proxy_protocol != ProxyProtocol::off) {
    ProxyInfo pi;
    pi.src = peer_addr;
    pi.dst = to_address(local.address());
    pi.src_port = peer.port();
    pi.dst_port = local.port();
    if (host->cfg.proxy_protocol == ProxyProtocol::v1) {
      f.proxy_header = build_proxy_v1(pi);
    } else {
      pi.sni = conn.sni;
      const unsigned char* alpn = nullptr;
      unsigned alpn_len = 0;
      SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
      if (alpn) pi.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
      pi.tls_version = SSL_get_version(ssl);
      pi.cipher = SSL_get_cipher_name(ssl);
      pi.cert_presented = peer_cert != nullptr;
      pi.cert_verified = verified;
      if (peer_cert) {
        pi.client_cn = subject_cn(peer_cert);
        pi.sig_alg = OBJ_nid2sn(X509_get_signature_nid(peer_cert));
        if (EVP_PKEY* k = X509_get0_pubkey(peer_cert)) pi.key_alg = OBJ_nid2sn(EVP_PKEY_get_base_id(k));
        pi.cert_sha256 = fp;
      }
      f.proxy_header = build_proxy_v2(pi);
    }
  }
  const bool unix_up = !host->cfg.upstream.unix_path.empty();
  f.upstream_tls = gen->upstream_tls[host->index].get();
  if (f.upstream_tls) {
    if (host->cfg.mode == Mode::tcp)
      co_await run_tcp<TlsUp>(tls, f);
    else
      co_await run_http<TlsUp>(tls, f, set);
  } else if (host->cfg.mode == Mode::tcp) {
    if (unix_up)
      co_await run_tcp<UpStream<unix_proto>>(tls, f);
    else
      co_await run_tcp<UpStream<tcp>>(tls, f);
  } else {
    if (unix_up)
      co_await run_http<UpStream<unix_proto>>(tls, f, set);
    else
      co_await run_http<UpStream<tcp>>(tls, f, set);
  }
}

}  // namespace og::gk
