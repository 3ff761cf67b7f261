#include "http_relay.hpp"

#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/ssl/error.hpp>
#include <limits>

#include "http_exchange.hpp"
#include "originguard/log.hpp"
#include "upstream_io.hpp"

namespace og::gk::connection {

namespace {

// The identity headers' values, computed once per connection (and generation) when the first
// request needs them (a connection that never sends a request does not hold them).
const ClientIdentity& identity(ConnFacts& f, SSL* ssl) {
  if (!f.id_complete) {
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (cert && f.verify != VerifyState::none) {
      if (f.id.cert_sha256.empty())  // already set when a PROXY v2 header carries the hash
        if (auto h = cert_sha256(cert)) f.id.cert_sha256 = hex(*h);
      f.id.subject = subject_rfc2253(cert);
    }
    f.id_complete = true;
  }
  return f.id;
}

}  // namespace

template <class Up>
awaitable<bool> run_http(Session& s) {
  TlsStream& tls = s.tls;
  Deadline& dl = s.dl;
  ConnFacts& f = s.f;
  std::unique_ptr<Up>& up = s.upstream_as<Up>();
  ExpiryScope<Up> scope(dl, tls, up);
  Buffer cin, uin;
  error_code ec;
  for (bool first = true;; first = false) {
    // Idle keep-alive: back to the caller, which waits without frames or buffers.
    if (cin.size() == 0 && !first) co_return true;
    ChunkFramer framer;  // before req: the parser refers to it
    RequestParser req;
    req.header_limit(static_cast<std::uint32_t>(f.cfg->max_header_bytes));
    req.body_limit(std::numeric_limits<std::uint64_t>::max());  // not boost::none: 1.74 compares len_ > none
    dl.expires_after(f.cfg->header_timeout);
    const std::size_t limit = f.cfg->max_header_bytes;
    for (std::size_t consumed = 0;;) {
      if (cin.size()) {
        const std::size_t took = feed(req, cin, ec);
        cin.consume(took);
        if (ec) break;
        // Beast consumes the request line on its own and then bounds the fields afresh; the
        // whole header is bounded here (all of cin is header while it is incomplete).
        consumed += took;
        const bool done = req.is_header_done();
        if (done ? consumed > limit : consumed + cin.size() > limit) {
          ec = http::error::header_limit;
          break;
        }
        if (done) break;
      }
      co_await fill(tls, cin, ec);
      if (ec) break;
    }
    if (ec == http::error::header_limit) {
      // Still in the request line: the target is what is too long.
      if (req.get().target().empty())
        co_await send_page(tls, dl, 414, "Request target too long.");
      else
        co_await send_page(tls, dl, 431, "Request header too large.");
      co_return false;
    }
    // A header timeout (slowloris), a close or a reset end the connection without a word.
    if (ec == asio::error::timed_out || ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ||
        (ec && ec.category() == asio::error::get_system_category()))
      co_return false;
    if (ec) {
      og::log::debug("gk_bad_request", {{"peer", f.peer}, {"error", ec.message()}});
      co_await send_page(tls, dl, 400, "Malformed request.");
      co_return false;
    }
    bool moved = false;
    if (const std::string why = revalidate<Up>(s, moved); !why.empty()) {
      og::log::info("gk_policy_changed", {{"host", f.host->cfg.label()}, {"peer", f.peer}, {"reason", why}});
      // 421: the client may repeat the request on a new connection (RFC 9110 §15.5.20), whose
      // handshake then meets the current policy.
      co_await send_page(tls, dl, 421, "The policy for this host changed; connect again.");
      co_return false;
    }
    if (moved && up) {  // the upstream may have changed with the policy
      up->close();
      up.reset();
      uin.clear();
    }
    const GatekeeperConfig& cfg = *f.cfg;
    auto& msg = req.get();
    if (const unsigned bad = check_request_framing(msg.base())) {
      og::log::info("gk_bad_framing", {{"host", f.host->cfg.label()}, {"peer", f.peer}, {"status", bad}});
      co_await send_page(tls, dl, bad, bad == 501 ? "Unsupported transfer coding." : "Ambiguous request framing.");
      co_return false;
    }
    switch (check_host(s.policy->table(), f.host->index, msg.method(), msg[http::field::host], msg.target())) {
      case HostCheck::ok:
        break;
      case HostCheck::misdirected:
        og::log::info("gk_misdirected", {{"host", f.host->cfg.label()},
                                         {"peer", f.peer},
                                         {"header", msg[http::field::host]},
                                         {"target", msg.target()}});
        co_await send_page(tls, dl, 421, "This host is not served on this TLS connection.");
        co_return false;
      case HostCheck::missing:
      case HostCheck::malformed:
        co_await send_page(tls, dl, 400, "Missing or malformed Host.");
        co_return false;
      case HostCheck::bad_target:
        og::log::info("gk_bad_target", {{"host", f.host->cfg.label()}, {"peer", f.peer}, {"target", msg.target()}});
        co_await send_page(tls, dl, 400, "Request target not accepted.");
        co_return false;
      case HostCheck::unsupported_method:
        co_await send_page(tls, dl, 501, "Method not supported.");
        co_return false;
    }
    Exchange x;
    x.head_request = msg.method() == http::verb::head;
    x.http10_client = msg.version() == 10;
    x.websocket = is_websocket_upgrade(msg.base());
    x.want_continue = !x.http10_client && expects_continue(msg) && !req.is_done();
    // The connection's last request once its lifetime has passed: answered, then closed.
    const bool client_keep_alive = msg.keep_alive() && Deadline::clock::now() < s.end_of_life();
    rewrite_request_headers(msg.base(), identity(f, tls.ssl()), {x.http10_client, client_keep_alive, x.websocket});
    // What the upstream reads from the request as sent (its version, its Connection field).
    const bool request_keep_alive = msg.keep_alive();
    const std::string head = serialize_head(msg.base());
    if (req.chunked()) framer.attach(req);

    // A request without a body sent on a reused upstream connection is sent again, once, on a
    // new connection if the old one turns out to have been closed by the upstream.
    // Only idempotent methods (RFC 9110 §9.2.2): the upstream may have acted on the first send.
    const auto method = msg.method();
    const bool bodyless = req.is_done() && (method == http::verb::get || x.head_request ||
                                            method == http::verb::options || method == http::verb::trace);
    // Bytes, an EOF or an error pending on the idle upstream connection (a late response, a
    // body sent after a HEAD/204/304 answer) would be read as this request's answer.
    if (up && !up->idle_clean()) {
      og::log::debug("gk_upstream_not_reused", {{"host", f.host->cfg.label()}});
      up->close();
      up.reset();
      uin.clear();
    }
    PoolStats& stats = s.shared.upstream_pool;
    // A lent connection that does not go back is counted once, with why.
    auto discard = [&](Discard why) {
      if (!f.pool || !up) return;
      stats.discard(why);
      up->close();
      up.reset();
      uin.clear();
    };
    if (f.pool) {
      if (!s.pools)
        s.pools = &asio::use_service<WorkerPools>(asio::query(tls.socket().get_executor(), asio::execution::context));
      while (!up && (up = s.pools->of<Up>().take(f.up_key, stats))) {
        up->set_deadline(&dl);
        // Checked again here: the readiness wait's completion may still be queued.
        if (!up->idle_clean()) {
          discard(Discard::upstream_closed);
          continue;
        }
        stats.reuses.fetch_add(1, std::memory_order_relaxed);
      }
    }
    Outcome out = Outcome::close;
    for (int attempt = 0; attempt < 2; ++attempt) {
      x.may_retry = attempt == 0 && bodyless && up != nullptr;
      if (!up && co_await connect_upstream(up, f, dl)) {
        co_await send_page(tls, dl, 502, "Upstream unavailable.");
        co_return false;
      }
      // With Expect: 100-continue the upstream answers first: 100 → the body follows; a final
      // answer instead leaves the body unread, which closes the client connection after it.
      Sent sent;
      if (x.want_continue) {
        dl.expires_after(cfg.idle_timeout);
        if (auto e = co_await up->write_all(head.data(), head.size())) sent = Sent{e, Side::upstream};
      } else {
        sent = co_await send_request(tls, cin, *up, req, framer, head, dl, cfg);
        x.body_sent = true;
      }
      if (sent.ec && sent.side == Side::upstream && x.may_retry && upstream_lost(sent.ec)) {
        out = Outcome::retry;
      } else if (sent.ec) {
        discard(Discard::request_incomplete);
        co_await send_failed(tls, dl, f, sent);
        co_return false;
      } else {
        out = co_await relay_response(tls, cin, *up, uin, req, framer, x, dl, f);
      }
      if (out != Outcome::retry) break;
      og::log::debug("gk_upstream_retry", {{"host", f.host->cfg.label()}});
      if (f.pool) stats.discard(Discard::upstream_closed);
      up->close();
      up.reset();
      uin.clear();
    }
    if (out == Outcome::ended) {
      discard(x.saw_101 ? Discard::upgrade : Discard::error);
      co_return false;
    }
    if (out == Outcome::abort) {
      discard(Discard::response_incomplete);
      og::log::info("gk_response_aborted", {{"host", f.host->cfg.label()}, {"peer", f.peer}});
      tls.abort();
      co_return false;
    }
    if (out == Outcome::upgraded) {
      if (f.pool) stats.discard(Discard::upgrade);  // spliced for good, then closed
      // WebSocket: bytes already buffered go first, then splice.
      dl.expires_after(cfg.idle_timeout);
      if (cin.size() && co_await up->write_all(cin.data().data(), cin.size())) co_return false;
      if (uin.size() && co_await tls.write_all(uin.data().data(), uin.size())) co_return false;
      co_await splice(tls, *up, dl, cfg.idle_timeout, s.end_of_life());
      co_return false;
    }
    // Bytes after a complete response (a body on HEAD/204/304, junk) would be read as the
    // next response: such an upstream connection is not reused.
    if (f.pool) {
      ExchangeEnd end;
      end.request_complete = x.body_sent && req.is_done();
      end.response_complete = x.response_done;
      end.close_delimited = x.close_delimited;
      end.upgrade = x.websocket || x.saw_101;
      end.request_keep_alive = request_keep_alive;
      end.response_keep_alive = x.response_keep_alive;
      end.extra_bytes = uin.size();
      end.pending_input = !up->idle_clean();
      if (const auto why = return_verdict(end)) {
        discard(*why);
      } else {
        auto ex = up->socket().get_executor();  // before `up` is moved from (argument order)
        s.pools->of<Up>().give(ex, f.up_key, std::move(up), cfg.upstream_keepalive, cfg.upstream_keepalive_timeout,
                               stats);
        up.reset();
      }
    } else if (out == Outcome::close || uin.size()) {
      up->close();
      up.reset();
      uin.clear();
    }
    if (!x.body_sent || !req.is_done()) {
      co_await linger_close(tls, dl);  // an unread body: drain it so no reset destroys the answer
      co_return false;
    }
    if (out == Outcome::close || !client_keep_alive) {
      co_await tls.shutdown();
      co_return false;
    }
  }
}

template awaitable<bool> run_http<TlsStream>(Session& s);
template awaitable<bool> run_http<TcpUp>(Session& s);
template awaitable<bool> run_http<UnixUp>(Session& s);

}  // namespace og::gk::connection
