#include "connection.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <charconv>
#include <limits>
#include <optional>
#include <vector>

#include "headers.hpp"
#include "originguard/log.hpp"
#include "proxy_protocol.hpp"
#include "stream.hpp"

namespace og::gk {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using unix_proto = asio::local::stream_protocol;
using asio::awaitable;

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

constexpr std::size_t kReadChunk = 16384;

auto redirect(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// Read buffers come and go with every keep-alive request (none is held while idle). A small
// per-worker cache of 16 KiB blocks keeps that churn out of malloc, whose arena trimming
// (madvise + TLB shootdowns) otherwise costs ~10 % of a busy worker.
class BlockCache {
 public:
  ~BlockCache() {
    for (void* p : free_) ::operator delete(p);
  }
  void* take() {
    if (free_.empty()) return ::operator new(kReadChunk);
    void* p = free_.back();
    free_.pop_back();
    return p;
  }
  void give(void* p) {
    if (free_.size() < kMaxCached)
      free_.push_back(p);
    else
      ::operator delete(p);
  }
  static BlockCache& mine() {
    thread_local BlockCache cache;
    return cache;
  }

 private:
  static constexpr std::size_t kMaxCached = 128;
  std::vector<void*> free_;
};

// flat_buffer's allocator: 16 KiB requests (an empty buffer's first prepare) use the cache.
template <class T>
struct BlockAllocator {
  using value_type = T;
  BlockAllocator() = default;
  template <class U>
  explicit BlockAllocator(const BlockAllocator<U>&) {}
  T* allocate(std::size_t n) {
    if (n * sizeof(T) == kReadChunk) return static_cast<T*>(BlockCache::mine().take());
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) {
    if (n * sizeof(T) == kReadChunk)
      BlockCache::mine().give(p);
    else
      std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const BlockAllocator<U>&) const {
    return true;
  }
};
using Buffer = beast::basic_flat_buffer<BlockAllocator<char>>;

// One cached block for the duration of a splice read/write.
struct Block {
  Block() : p(static_cast<char*>(BlockCache::mine().take())) {}
  ~Block() { BlockCache::mine().give(p); }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  char* p;
};

// Connection counter held for a connection's lifetime.
template <class N>
struct Slot {
  explicit Slot(std::atomic<N>& n) : n_(n) { n_.fetch_add(1, std::memory_order_relaxed); }
  ~Slot() { n_.fetch_sub(1, std::memory_order_relaxed); }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  std::atomic<N>& n_;
};

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

awaitable<void> linger_close(TlsStream& tls, Deadline& dl);

// A short page and Connection: close; then close_notify.
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

std::string peer_string(const tcp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

// ---- upstream -------------------------------------------------------------------------

struct ConnFacts {
  const HostPolicy* host = nullptr;
  const GatekeeperConfig* cfg = nullptr;
  VerifyState verify = VerifyState::none;  // the client certificate's standing under `host`
  ClientIdentity id;                       // cert hash and subject filled in by the first request (identity())
  bool id_complete = false;
  std::string proxy_header;  // sent first on every new upstream connection ("" when off)
  std::string peer;          // for logs
  bool pool = false;         // upstream connections are borrowed from the worker's pool
  UpstreamKey up_key;        // the pool's key for the host's upstream (when `pool`)
};

using TcpUp = PlainStream<tcp>;
using UnixUp = PlainStream<unix_proto>;

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

// What a connection keeps between requests. Heap-allocated, so that while it waits for the
// next request no coroutine frame is alive (nginx's model): this and one pending wait.
struct Session {
  Session(tcp::socket sock, SslPtr ssl, ConnectionSlot slot, std::shared_ptr<const PolicySet> p,
          std::shared_ptr<const RangeSet> e, Shared& sh)
      : shared(sh),
        policy(std::move(p)),
        edges(std::move(e)),
        conns(std::move(slot)),
        dl(sock.get_executor()),
        tls(std::move(sock), std::move(ssl), &dl) {
    dl.on_expiry([this] { tls.cancel(); });
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  Shared& shared;
  // The generation and edge snapshot the connection was last judged by (revalidate()).
  std::shared_ptr<const PolicySet> policy;
  std::shared_ptr<const RangeSet> edges;
  std::optional<SourceLimiter::Slot> source;
  ConnectionSlot conns;
  std::optional<Slot<std::int64_t>> host_active;
  Deadline::clock::time_point born = Deadline::clock::now();
  std::string sni;  // normalised, "" for none: what selects the host in every generation
  tcp::endpoint peer, local;
  Deadline dl;
  TlsStream tls;
  ConnFacts f;
  WorkerPools* pools = nullptr;  // this worker's, looked up on first use
  // http mode: std::unique_ptr<Up> of the host's upstream type. With upstream_keepalive it
  // holds a connection only during an exchange, and is dropped while the session is idle.
  std::shared_ptr<void> upstream;

  template <class Up>
  std::unique_ptr<Up>& upstream_as() {
    if (!upstream) upstream = std::make_shared<std::unique_ptr<Up>>();
    return *static_cast<std::unique_ptr<Up>*>(upstream.get());
  }
  // max_connection_lifetime of the generation the connection is held to.
  [[nodiscard]] Deadline::clock::time_point end_of_life() const { return born + f.cfg->max_connection_lifetime; }
};

void log_connect_failure(const ConnFacts& f, const error_code& ec, bool tls) {
  og::log::warn("gk_upstream_connect_failed", {{"host", f.host->cfg.label()},
                                               {"upstream", f.host->cfg.upstream.to_string()},
                                               {"tls", tls},
                                               {"error", ec.message()}});
}

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

template <class Up>
awaitable<void> run_tcp(Session& s) {
  std::unique_ptr<Up> up;
  ExpiryScope<Up> scope(s.dl, s.tls, up);
  if (co_await connect_upstream(up, s.f, s.dl)) co_return;
  co_await splice(s.tls, *up, s.dl, s.f.cfg->idle_timeout, s.end_of_life());
  up->close();
}

// ---- http mode ------------------------------------------------------------------------

// How long a request with `Expect: 100-continue` waits for the upstream's 100 before the
// gatekeeper sends its own and forwards the body anyway (curl's default wait).
constexpr auto kContinueWait = std::chrono::seconds(1);

bool expects_continue(const http::request_header<>& h) {
  auto v = h[http::field::expect];
  return v.size() == 12 && beast::iequals(v, "100-continue");
}

// The request line and the (rewritten) fields, as the upstream gets them.
std::string serialize_head(const http::request_header<>& h) {
  std::string out;
  out.reserve(512);
  out.append(h.method_string()).append(" ").append(h.target());
  out.append(h.version() == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  for (const auto& field : h) out.append(field.name_string()).append(": ").append(field.value()).append("\r\n");
  out.append("\r\n");
  return out;
}

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

bool is_parse_error(const error_code& ec) {
  return ec.category() == make_error_code(http::error::bad_chunk).category();
}

// Sends `head` (may be empty) and then the request body, reading more from the client as the
// parser needs. A Content-Length body goes as received; a chunked one re-framed (ChunkFramer).
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
bool upstream_lost(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe;
}

// A request that could not be sent whole: a malformed or over-long body is the client's 400; a
// client that went away or stalled gets nothing; the upstream's failure is a 502 (504).
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

// Relays one upstream response (1xx interim responses included) to the client as received.
// Until a byte of the final response went out a failure is answered with a page; after that
// the client connection can only be aborted (Outcome::abort), never ended as if complete.
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

void init_facts(ConnFacts& f, const HostPolicy& host, const GatekeeperConfig& cfg, VerifyState verify,
                bool peer_is_edge, SSL* ssl, const Session& s);

template <class Up>
bool upstream_kind_is(const HostPolicy& h) {
  if constexpr (std::is_same_v<Up, TlsStream>)
    return h.upstream_ctx != nullptr;
  else if constexpr (std::is_same_v<Up, UnixUp>)
    return !h.upstream_ctx && !h.cfg.upstream.unix_path.empty();
  else
    return !h.upstream_ctx && h.cfg.upstream.unix_path.empty();
}

// A reload, or a new edge snapshot, reaches an established connection at its next request: the
// connection is judged as a handshake under the current generation would judge it, as far as
// that can be done after the fact (its SNI still served in http mode, require_edge_ip against
// the current snapshot, the mtls mode, its certificate chain verified again against the host's
// CA, CRLs, pins and subject rules). Returns why it no longer qualifies; "" when it does, and
// then it is held to the current generation from now on (`moved`).
template <class Up>
std::string revalidate(Session& s, bool& moved) {
  moved = false;
  auto policy = s.shared.policy.load();
  auto edges = s.shared.edges->current();
  if (policy == s.policy && edges == s.edges) return {};
  const HostPolicy* host =
      policy->select(s.sni.empty() ? std::nullopt : std::optional<std::string_view>(std::string_view(s.sni)));
  if (!host) return "the SNI is no longer served";
  if (host->cfg.mode != Mode::http) return "the host is no longer in http mode";
  if (!upstream_kind_is<Up>(*host)) return "the host's upstream is of another kind now";
  const bool peer_is_edge = edges->contains(to_address(s.peer.address()));
  if (host->cfg.require_edge_ip && !peer_is_edge) return "the source is not an edge address";
  SSL* ssl = s.tls.ssl();
  VerifyState verify = VerifyState::none;
  if (X509* cert = SSL_get0_peer_certificate(ssl); cert && host->cfg.mtls != Mtls::off) {
    std::string reason;
    verify = verify_client_chain(*host, cert, SSL_get_peer_cert_chain(ssl), reason);
    if (verify != VerifyState::success) return "client certificate: " + reason;
  }
  if (host->cfg.mtls == Mtls::required && verify != VerifyState::success) return "no client certificate";
  if (host->stats_owner != s.f.host->stats_owner) s.host_active.emplace(host->stats.active);
  s.policy = std::move(policy);
  s.edges = std::move(edges);
  init_facts(s.f, *host, s.policy->config(), verify, peer_is_edge, ssl, s);
  moved = true;
  return {};
}

// Serves requests while the client has some; true when it went idle (keep the session).
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

// ---- handshake and policy -------------------------------------------------------------

std::string proxy_header_for(const HostPolicy& host, SSL* ssl, X509* peer_cert, const std::string& sni,
                             const tcp::endpoint& peer, const tcp::endpoint& local, bool verified,
                             const std::optional<Sha256>& fp) {
  ProxyInfo pi;
  pi.src = to_address(peer.address());
  pi.dst = to_address(local.address());
  pi.src_port = peer.port();
  pi.dst_port = local.port();
  if (host.cfg.proxy_protocol == ProxyProtocol::v1) return build_proxy_v1(pi);
  pi.sni = sni;
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
  return build_proxy_v2(pi);
}

// Logs and counts a failed handshake.
void note_handshake_failure(Shared& shared, ConnTls& conn, SSL* ssl, const std::string& peer, const error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category())
    (void)explain_handshake_error(ssl, static_cast<unsigned long>(ec.value()), conn);
  if (!conn.refusal.empty()) {
    shared.refused_sni.fetch_add(conn.refusal.ends_with("sni") ? 1 : 0, std::memory_order_relaxed);
    og::log::info("gk_handshake_refused", {{"reason", conn.refusal},
                                           {"sni", conn.sni},
                                           {"host", conn.host ? conn.host->cfg.label() : std::string()},
                                           {"peer", peer}});
  } else if (conn.host && conn.verify == VerifyState::failed) {
    og::log::info("gk_client_cert_refused",
                  {{"host", conn.host->cfg.label()}, {"peer", peer}, {"reason", conn.verify_reason}});
  } else if (conn.host && conn.host->cfg.mtls == Mtls::required && SSL_get0_peer_certificate(ssl) == nullptr) {
    conn.host->stats.refused_no_cert.fetch_add(1, std::memory_order_relaxed);
    og::log::info("gk_client_cert_refused",
                  {{"host", conn.host->cfg.label()}, {"peer", peer}, {"reason", "no client certificate"}});
  } else {
    shared.handshake_errors.fetch_add(1, std::memory_order_relaxed);
    og::log::debug("gk_handshake_failed", {{"peer", peer}, {"sni", conn.sni}, {"error", ec.message()}});
  }
}

// The identity and PROXY header a connection passes upstream, under `host` of a generation
// (after the handshake, and again when a reload moves the connection to a new generation).
void init_facts(ConnFacts& f, const HostPolicy& host, const GatekeeperConfig& cfg, VerifyState verify,
                bool peer_is_edge, SSL* ssl, const Session& s) {
  f = ConnFacts{};
  f.host = &host;
  f.cfg = &cfg;
  f.peer = peer_string(s.peer);
  f.verify = host.cfg.mtls == Mtls::off ? VerifyState::none : verify;
  f.id.verify = to_string(f.verify);
  const bool verified = f.verify == VerifyState::success;
  f.id.trusted_edge = verified || (host.cfg.mtls == Mtls::off && host.cfg.require_edge_ip && peer_is_edge);
  f.pool = pooled(host.cfg, cfg);
  if (f.pool) f.up_key = upstream_key(host.cfg, host.upstream_ctx.get());
  X509* peer_cert = SSL_get0_peer_certificate(ssl);
  if (host.cfg.proxy_protocol != ProxyProtocol::off) {
    std::optional<Sha256> fp;  // a v2 TLV; hashed once, the identity header reuses it
    if (peer_cert && host.cfg.proxy_protocol == ProxyProtocol::v2)
      if (auto h = cert_sha256(peer_cert)) {
        fp = *h;
        if (f.verify != VerifyState::none) f.id.cert_sha256 = hex(*h);
      }
    f.proxy_header = proxy_header_for(host, ssl, peer_cert, s.sni, s.peer, s.local, verified, fp);
  }
}

void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    og::log::error("gk_connection_exception", {{"error", x.what()}});
  }
}

awaitable<void> serve_requests(std::unique_ptr<Session> s);

// Waits (idle_timeout, at most until the connection's lifetime ends) for the client's next
// request with nothing but the session alive; the deadline cancels the wait, which sends
// close_notify and drops the session.
void await_request(std::unique_ptr<Session> s) {
  Session& r = *s;
  r.dl.expires_after(
      std::min<Deadline::clock::duration>(r.f.cfg->idle_timeout, r.end_of_life() - Deadline::clock::now()));
  auto ex = r.tls.socket().get_executor();
  if (SSL_has_pending(r.tls.ssl())) {
    asio::co_spawn(ex, serve_requests(std::move(s)), log_exception);
    return;
  }
  r.tls.socket().async_wait(asio::socket_base::wait_read, [s = std::move(s), ex](const error_code& ec) mutable {
    if (!ec)
      asio::co_spawn(ex, serve_requests(std::move(s)), log_exception);
    else
      s->tls.send_close_notify();
  });
}

awaitable<void> serve_requests(std::unique_ptr<Session> s) {
  const HostPolicy& host = *s->f.host;
  bool idle = false;
  if (host.upstream_ctx)
    idle = co_await run_http<TlsStream>(*s);
  else if (!host.cfg.upstream.unix_path.empty())
    idle = co_await run_http<UnixUp>(*s);
  else
    idle = co_await run_http<TcpUp>(*s);
  if (idle && s->f.pool) s->upstream.reset();  // holds no connection between exchanges
  if (idle) await_request(std::move(s));
}

}  // namespace

awaitable<void> serve_connection(tcp::socket sock, Shared& shared, std::shared_ptr<const RangeSet> edges,
                                 bool peer_is_edge, ConnectionSlot slot, std::optional<SourceLimiter::Slot> source) {
  auto policy = shared.policy.load();
  const PolicySet& set = *policy;
  const GatekeeperConfig& cfg = set.config();
  error_code ec;
  const auto peer = sock.remote_endpoint(ec);
  if (ec) co_return;
  const auto local = sock.local_endpoint(ec);
  if (ec) co_return;
  sock.set_option(tcp::no_delay(true), ec);

  ConnTls conn;  // the SSL's ex_data during the handshake; declared before s, so it outlives SSL_free
  SslPtr ssl(SSL_new(set.dispatch_ctx()));
  if (!ssl) co_return;
  SSL_set_accept_state(ssl.get());
  attach(ssl.get(), &conn);
  // The snapshot peer_is_edge comes from, not the current one: a snapshot installed since the
  // accept must judge the connection again at its next request (revalidate()).
  SSL* const ssl_raw = ssl.get();  // the session's TlsStream owns it from here on
  auto s =
      std::make_unique<Session>(std::move(sock), std::move(ssl), std::move(slot), policy, std::move(edges), shared);
  s->source = std::move(source);
  TlsStream& tls = s->tls;
  Deadline& dl = s->dl;
  s->peer = peer;
  s->local = local;
  conn.set = &set;
  conn.peer_is_edge = peer_is_edge;

  // A connection gets client_hello_timeout to deliver its ClientHello, then the rest of its
  // handshake_timeout (counted from accept) to finish: an idle socket is not held for the
  // whole handshake time.
  const auto handshake_deadline = Deadline::clock::now() + cfg.handshake_timeout;
  dl.expires_after(std::min<Deadline::clock::duration>(cfg.client_hello_timeout, cfg.handshake_timeout));
  conn.client_hello_arrived = [&dl, handshake_deadline] {
    dl.expires_after(handshake_deadline - Deadline::clock::now());
  };
  ec = co_await tls.handshake();
  conn.client_hello_arrived = nullptr;
  if (ec) {
    note_handshake_failure(shared, conn, ssl_raw, peer_string(peer), ec);
    co_return;
  }
  const Admission admission = admit(ssl_raw, conn);
  if (admission == Admission::drop) {
    if (conn.refusal == "cross_host_resumption")
      og::log::warn(
          "gk_cross_host_resumption",
          {{"sni", conn.sni}, {"session_host", session_sni(SSL_get0_session(ssl_raw))}, {"peer", peer_string(peer)}});
    co_return;
  }
  const HostPolicy* host = conn.host;
  if (admission == Admission::refuse_client) {
    if (conn.verify == VerifyState::none) host->stats.refused_no_cert.fetch_add(1, std::memory_order_relaxed);
    og::log::info(
        "gk_client_cert_refused",
        {{"host", host->cfg.label()},
         {"peer", peer_string(peer)},
         {"reason", conn.verify == VerifyState::none ? std::string("no client certificate") : conn.verify_reason},
         {"on_failure", to_string(host->cfg.on_failure)}});
    switch (host->cfg.on_failure) {
      case OnFailure::http_403:
        co_await send_page(tls, dl, 403, "Forbidden.");
        break;
      case OnFailure::http_496:
        co_await send_page(tls, dl, 496, "A valid client certificate is required.");
        break;
      case OnFailure::alert:
      case OnFailure::close:
        break;
    }
    co_return;
  }
  host->stats.handshakes_ok.fetch_add(1, std::memory_order_relaxed);
  s->host_active.emplace(host->stats.active);
  s->sni = conn.sni;
  init_facts(s->f, *host, cfg, conn.verify, conn.peer_is_edge, ssl_raw, *s);
  if (host->cfg.mode == Mode::http) {
    attach(ssl_raw, nullptr);     // the handshake is over; conn ends with this frame
    await_request(std::move(s));  // this frame ends; the session lives on in the wait
    co_return;
  }
  if (host->upstream_ctx)
    co_await run_tcp<TlsStream>(*s);
  else if (!host->cfg.upstream.unix_path.empty())
    co_await run_tcp<UnixUp>(*s);
  else
    co_await run_tcp<TcpUp>(*s);
}

}  // namespace og::gk
