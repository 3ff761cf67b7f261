#include "http_exchange.hpp"

#include <boost/asio/ssl/error.hpp>
#include <chrono>
#include <limits>

#include "headers.hpp"
#include "originguard/log.hpp"

namespace og::gk::connection {

namespace {

const char* reason_phrase(unsigned status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 414:
      return "URI Too Long";
    case 421:
      return "Misdirected Request";
    case 431:
      return "Request Header Fields Too Large";
    case 496:
      return "SSL Certificate Required";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 504:
      return "Gateway Timeout";
    default:
      return "Error";
  }
}

bool is_parse_error(const error_code& ec) {
  return ec.category() == make_error_code(http::error::bad_chunk).category();
}

// How long a request with `Expect: 100-continue` waits for the upstream's 100 before the
// gatekeeper sends its own and forwards the body anyway (curl's default wait).
constexpr auto kContinueWait = std::chrono::seconds(1);

}  // namespace

awaitable<void> send_page(TlsStream& tls, Deadline& dl, unsigned status, std::string_view detail) {
  const std::string title = std::to_string(status) + " " + reason_phrase(status);
  const std::string body = "<html><head><title>" + title + "</title></head><body><h1>" + title + "</h1><p>" +
                           std::string(detail) + "</p></body></html>\n";
  const std::string msg = "HTTP/1.1 " + title +
                          "\r\nServer: originguard-gatekeeper\r\nContent-Type: text/html\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  dl.expires_after(std::chrono::seconds(5));
  if (co_await tls.write_all(msg.data(), msg.size())) co_return;
  co_await linger_close(tls, dl);
}

// Lingering close: a client still sending (e.g. a huge header or an unread body) would
// otherwise get a TCP reset that can destroy the response before it reads it. Its input is
// discarded for up to 1 s (1 MiB), then close_notify.
awaitable<void> linger_close(TlsStream& tls, Deadline& dl) {
  dl.expires_after(std::chrono::seconds(1));
  auto sink = std::make_unique<char[]>(4096);
  error_code ec;
  for (std::size_t total = 0; total < (1u << 20) && !ec;) total += co_await tls.read_some(sink.get(), 4096, ec);
  if (ec == asio::error::timed_out) co_return;
  co_await tls.shutdown();
}

bool expects_continue(const http::request_header<>& h) {
  auto v = h[http::field::expect];
  return v.size() == 12 && beast::iequals(v, "100-continue");
}

std::string serialize_head(const http::request_header<>& h) {
  std::string out;
  out.reserve(512);
  out.append(h.method_string()).append(" ").append(h.target());
  out.append(h.version() == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  for (const auto& field : h) out.append(field.name_string()).append(": ").append(field.value()).append("\r\n");
  out.append("\r\n");
  return out;
}

template <class Up>
awaitable<Sent> send_request(TlsStream& tls, Buffer& cin, Up& up, RequestParser& req, ChunkFramer& framer,
                             std::string_view head, Deadline& dl, const GatekeeperConfig& cfg) {
  error_code ec;
  const bool chunked = req.chunked();
  req.eager(true);
  for (bool first = true;; first = false) {
    std::size_t took = 0;
    if (!req.is_done() && cin.size()) {
      took = feed(req, cin, ec);
      if (ec) co_return Sent{ec, Side::client};
    }
    const std::string_view h = first ? head : std::string_view{};
    const auto* in = static_cast<const char*>(cin.data().data());
    const std::string_view body = chunked ? std::string_view(framer.out) : std::string_view(in, took);
    dl.expires_after(cfg.idle_timeout);
    if (!h.empty() || !body.empty()) ec = co_await up.write_all2(h.data(), h.size(), body.data(), body.size());
    if (ec) co_return Sent{ec, Side::upstream};
    framer.out.clear();
    cin.consume(took);
    if (req.is_done()) co_return Sent{};
    // What waits unconsumed is a chunk-size line (with its extensions) or a trailer section
    // without its end: bounded like a request header.
    if (cin.size() > cfg.max_header_bytes) co_return Sent{http::error::buffer_overflow, Side::client};
    co_await fill(tls, cin, ec);
    if (ec) co_return Sent{ec, Side::client};
  }
}

bool upstream_lost(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe;
}

awaitable<Outcome> send_failed(TlsStream& tls, Deadline& dl, const ConnFacts& f, const Sent& sent) {
  if (sent.side == Side::client) {
    if (is_parse_error(sent.ec)) {
      og::log::info("gk_bad_request_body",
                    {{"host", f.host->cfg.label()}, {"peer", f.peer}, {"error", sent.ec.message()}});
      co_await send_page(tls, dl, 400, "Malformed request body.");
    }
    co_return Outcome::ended;
  }
  const bool timeout = sent.ec == asio::error::timed_out;
  co_await send_page(tls, dl, timeout ? 504 : 502, timeout ? "Upstream timed out." : "Upstream unavailable.");
  co_return Outcome::ended;
}

template <class Up>
awaitable<Outcome> relay_response(TlsStream& tls, Buffer& cin, Up& up, Buffer& uin, RequestParser& req,
                                  ChunkFramer& framer, Exchange& x, Deadline& dl, const ConnFacts& f) {
  const GatekeeperConfig& cfg = *f.cfg;
  error_code ec;
  bool relayed = false;  // any byte of any response (1xx included) went to the client
  bool started = false;  // a byte of the final response went to the client
  auto bad_response = [&](std::string_view what) {
    og::log::warn("gk_upstream_bad_response", {{"host", f.host->cfg.label()}, {"peer", f.peer}, {"error", what}});
  };
  for (;;) {
    ResponseParser res;
    res.header_limit(static_cast<std::uint32_t>(cfg.max_response_header_bytes));
    res.body_limit(std::numeric_limits<std::uint64_t>::max());  // not boost::none: 1.74 compares len_ > none
    res.skip(x.head_request);
    res.eager(true);
    bool checked = false;  // the header was judged (the parser consumes nothing before it is whole)
    bool relay = true;     // this message goes to the client
    while (!res.is_done()) {
      if (uin.size()) {
        const std::size_t n = feed(res, uin, ec);
        if (ec) {
          bad_response(ec.message());
          if (started) co_return Outcome::abort;
          co_await send_page(tls, dl, 502, "Upstream response failed.");
          co_return Outcome::ended;
        }
        if (res.is_header_done() && !checked) {
          checked = true;
          const unsigned status = res.get().result_int();
          if (status == 101) {
            x.saw_101 = true;
            // A switch the request asked for and was allowed to make, to what it asked; any
            // other 101 would turn the connection into an unchecked tunnel (h2c, a smuggled
            // second request).
            if (!x.websocket || !accepts_websocket(res.get().base())) {
              bad_response(x.websocket ? "101 to another protocol than websocket" : "101 to a request without upgrade");
              co_await send_page(tls, dl, 502, "Upstream switched protocols unasked.");
              co_return Outcome::ended;
            }
          } else if (status < 200) {
            // No 1xx to an HTTP/1.0 client; no second 100 after the gatekeeper's own.
            relay = !x.http10_client && !(status == 100 && x.own_continue);
          }
          started = status >= 200;
        }
        if (n) {
          if (relay) {
            dl.expires_after(cfg.idle_timeout);
            if (co_await tls.write_all(uin.data().data(), n)) co_return Outcome::abort;
            relayed = true;
          }
          uin.consume(n);
        }
        if (res.is_done()) break;
        // Unconsumed: a header not yet whole (Beast bounds it), a chunk-size line or a
        // trailer section without its end.
        if (uin.size() > cfg.max_response_header_bytes) {
          bad_response("chunk-size line or trailer section too long");
          if (started) co_return Outcome::abort;
          co_await send_page(tls, dl, 502, "Upstream response failed.");
          co_return Outcome::ended;
        }
      }
      // Only before a final response has begun: after it the body is not wanted, and a 100
      // would land in the middle of the response.
      const bool continue_wait = x.want_continue && !x.body_sent && !started;
      dl.expires_after(continue_wait ? std::chrono::duration_cast<std::chrono::seconds>(kContinueWait)
                                     : cfg.idle_timeout);
      co_await fill(up, uin, ec);
      if (ec == asio::error::timed_out && continue_wait) {
        // No 100 in time: the client gets the gatekeeper's own and the body goes up anyway
        // (nginx answers Expect itself too); a 100 from the upstream later is not repeated.
        static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
        dl.expires_after(cfg.idle_timeout);
        if (co_await tls.write_all(k100.data(), k100.size())) co_return Outcome::abort;
        x.own_continue = true;
        relayed = true;
        x.body_sent = true;
        if (auto sent = co_await send_request(tls, cin, up, req, framer, {}, dl, cfg); sent.ec)
          co_return co_await send_failed(tls, dl, f, sent);
        continue;
      }
      // The end of a close-delimited body: a FIN from a plain upstream, close_notify from a TLS
      // one (a FIN without close_notify is a truncation: stream_truncated, an error below).
      if (ec == asio::error::eof && res.is_header_done() && res.need_eof()) {
        res.put_eof(ec);
        break;
      }
      if (ec) {
        if (!relayed && x.may_retry && upstream_lost(ec)) co_return Outcome::retry;
        if (started) {
          bad_response("response cut: " + ec.message());
          co_return Outcome::abort;
        }
        const bool timeout = ec == asio::error::timed_out;
        co_await send_page(tls, dl, timeout ? 504 : 502, timeout ? "Upstream timed out." : "Upstream response failed.");
        co_return Outcome::ended;
      }
    }
    const unsigned status = res.get().result_int();
    if (status == 101) co_return Outcome::upgraded;
    if (status < 200) {
      // 100 after Expect: 100-continue: now the body goes up. Other 1xx are informational.
      if (status == 100 && !x.body_sent) {
        x.body_sent = true;
        if (auto sent = co_await send_request(tls, cin, up, req, framer, {}, dl, cfg); sent.ec)
          co_return co_await send_failed(tls, dl, f, sent);
      }
      continue;
    }
    x.response_done = true;
    x.close_delimited = res.need_eof();
    x.response_keep_alive = res.keep_alive();
    if (!res.keep_alive() || res.need_eof()) co_return Outcome::close;
    co_return Outcome::keep_alive;
  }
}

template awaitable<Sent> send_request(TlsStream&, Buffer&, TlsStream&, RequestParser&, ChunkFramer&, std::string_view,
                                      Deadline&, const GatekeeperConfig&);
template awaitable<Sent> send_request(TlsStream&, Buffer&, TcpUp&, RequestParser&, ChunkFramer&, std::string_view,
                                      Deadline&, const GatekeeperConfig&);
template awaitable<Sent> send_request(TlsStream&, Buffer&, UnixUp&, RequestParser&, ChunkFramer&, std::string_view,
                                      Deadline&, const GatekeeperConfig&);
template awaitable<Outcome> relay_response(TlsStream&, Buffer&, TlsStream&, Buffer&, RequestParser&, ChunkFramer&,
                                           Exchange&, Deadline&, const ConnFacts&);
template awaitable<Outcome> relay_response(TlsStream&, Buffer&, TcpUp&, Buffer&, RequestParser&, ChunkFramer&,
                                           Exchange&, Deadline&, const ConnFacts&);
template awaitable<Outcome> relay_response(TlsStream&, Buffer&, UnixUp&, Buffer&, RequestParser&, ChunkFramer&,
                                           Exchange&, Deadline&, const ConnFacts&);

}  // namespace og::gk::connection
