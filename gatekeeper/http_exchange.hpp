// One HTTP request/response exchange between a client and the upstream, as the HTTP relay
// (http_relay.hpp) drives it: the request head and body sent up (a chunked body re-framed by
// ChunkFramer), the response relayed back (1xx, 101 and Expect: 100-continue handled), how
// it ended (Outcome, Exchange), and the gatekeeper's own error pages (send_page). Beast's
// parsers only delimit messages here (DiscardBody): bodies go on as the bytes received.
// The Up templates are instantiated in http_exchange.cpp for TlsStream, TcpUp and UnixUp.
#pragma once

#include <boost/beast/http/parser.hpp>
#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "block_cache.hpp"
#include "session.hpp"

namespace og::gk::connection {

namespace beast = boost::beast;
namespace http = beast::http;

// A body "reader" that keeps nothing: bodies are forwarded as the bytes the parser consumed
// (framing included), so the parser only has to delimit them.
struct DiscardBody {
  struct value_type {};
  struct reader {
    template <bool isRequest, class Fields>
    reader(http::header<isRequest, Fields>&, value_type&) {}
    void init(const boost::optional<std::uint64_t>&, error_code& ec) { ec = {}; }
    template <class Buffers>
    std::size_t put(const Buffers& b, error_code& ec) {
      ec = {};
      return asio::buffer_size(b);
    }
    void finish(error_code& ec) { ec = {}; }
  };
};
using RequestParser = http::request_parser<DiscardBody>;
using ResponseParser = http::response_parser<DiscardBody>;

// Reads what the stream has (up to 16 KiB) onto the end of `b`.
template <class S>
awaitable<std::size_t> fill(S& s, Buffer& b, error_code& ec) {
  auto room = b.prepare(kReadChunk);
  std::size_t n = co_await s.read_some(room.data(), room.size(), ec);
  b.commit(n);
  co_return n;
}

// Feeds the parser what `b` holds; the bytes it took are returned (not consumed from `b`).
template <class Parser>
std::size_t feed(Parser& p, const Buffer& b, error_code& ec) {
  std::size_t n = p.put(b.data(), ec);
  if (ec == http::error::need_more) ec = {};
  return n;
}

// A short page and Connection: close; then close_notify.
awaitable<void> send_page(TlsStream& tls, Deadline& dl, unsigned status, std::string_view detail);
// Discards what the client still sends (1 s, 1 MiB at most), then close_notify.
awaitable<void> linger_close(TlsStream& tls, Deadline& dl);

bool expects_continue(const http::request_header<>& h);
// The request line and the (rewritten) fields, as the upstream gets them.
std::string serialize_head(const http::request_header<>& h);

// Re-frames a chunked request body as the parser delimits it: "<size in hex>\r\n<data>\r\n" per
// chunk and a bare "0\r\n\r\n" at the end. Chunk extensions and the trailer section stay here:
// an upstream that parses either differently cannot be made to delimit the body otherwise, and
// trailers cannot carry identity or forwarding headers past rewrite_request_headers to an
// upstream that merges them. Outlives the parser it is attached to (the parser keeps references).
class ChunkFramer {
 public:
  ChunkFramer() = default;
  ChunkFramer(const ChunkFramer&) = delete;
  ChunkFramer& operator=(const ChunkFramer&) = delete;
  void attach(RequestParser& p) {
    p.on_chunk_header(header_);
    p.on_chunk_body(body_);
  }
  std::string out;  // framed bytes not sent yet

 private:
  struct Header {
    ChunkFramer* f;
    void operator()(std::uint64_t size, std::string_view /*extensions*/, error_code& ec) const {
      // Sizes an upstream could overflow on (nginx's limit is off_t's).
      if (size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        ec = http::error::bad_chunk;
        return;
      }
      ec = {};
      if (f->in_chunk_) f->out.append("\r\n");
      char hex[16];
      const auto r = std::to_chars(hex, hex + sizeof hex, size, 16);
      f->out.append(hex, r.ptr).append(size ? "\r\n" : "\r\n\r\n");
      f->in_chunk_ = size != 0;
    }
  };
  struct Body {
    ChunkFramer* f;
    std::size_t operator()(std::uint64_t /*remain*/, std::string_view data, error_code& ec) const {
      ec = {};
      f->out.append(data);
      return data.size();
    }
  };
  bool in_chunk_ = false;  // a chunk's data went out: its CRLF comes before the next size line
  Header header_{this};
  Body body_{this};
};

// Which side a failed exchange failed on.
enum class Side : std::uint8_t { none, client, upstream };
struct Sent {
  error_code ec;
  Side side = Side::none;
};

enum class Outcome {
  keep_alive,
  close,
  upgraded,
  retry,
  abort,  // the response cannot be completed: cut the client connection
  ended,  // a page (or the client's absence) already ended the client connection
};

// A reused upstream connection that the upstream closed while it was idle (its keep-alive
// timeout racing our request) fails like this before any response byte.
bool upstream_lost(const error_code& ec);

// A request that could not be sent whole: a malformed or over-long body is the client's 400; a
// client that went away or stalled gets nothing; the upstream's failure is a 502 (504).
awaitable<Outcome> send_failed(TlsStream& tls, Deadline& dl, const ConnFacts& f, const Sent& sent);

// One request/response exchange as relay_response sees it.
struct Exchange {
  bool head_request = false;
  bool http10_client = false;  // gets no 1xx (RFC 9110 §15.2)
  bool websocket = false;      // a WebSocket upgrade was relayed: a 101 switching to it is spliced
  bool want_continue = false;  // Expect: 100-continue with a body the client holds back
  bool body_sent = false;
  bool own_continue = false;  // the gatekeeper sent the client a 100 itself
  bool may_retry = false;
  // How the final response ended (return_verdict of a pooled connection).
  bool saw_101 = false;
  bool response_done = false;
  bool close_delimited = false;
  bool response_keep_alive = false;
};

// Sends `head` (may be empty) and then the request body, reading more from the client as the
// parser needs. A Content-Length body goes as received; a chunked one re-framed (ChunkFramer).
template <class Up>
awaitable<Sent> send_request(TlsStream& tls, Buffer& cin, Up& up, RequestParser& req, ChunkFramer& framer,
                             std::string_view head, Deadline& dl, const GatekeeperConfig& cfg);

// Relays one upstream response (1xx interim responses included) to the client as received.
// Until a byte of the final response went out a failure is answered with a page; after that
// the client connection can only be aborted (Outcome::abort), never ended as if complete.
template <class Up>
awaitable<Outcome> relay_response(TlsStream& tls, Buffer& cin, Up& up, Buffer& uin, RequestParser& req,
                                  ChunkFramer& framer, Exchange& x, Deadline& dl, const ConnFacts& f);

}  // namespace og::gk::connection
