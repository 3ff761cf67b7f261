// The upstream keep-alive pool: when a lent connection may go back (return_verdict), what
// keys it (upstream_key), which hosts are pooled, and the pool's idle hygiene over a real
// socketpair (a byte or EOF while idle closes it; the per-key bound; the idle timeout).
#include <gtest/gtest.h>

#include <set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>

#include "config.hpp"
#include "stream.hpp"
#include "upstream_pool.hpp"

namespace asio = boost::asio;
using og::gk::Discard;
using og::gk::ExchangeEnd;
using og::gk::PoolStats;
using og::gk::return_verdict;
using og::gk::UpstreamKey;

namespace {

ExchangeEnd clean() {
  ExchangeEnd e;
  e.request_complete = true;
  e.response_complete = true;
  e.request_keep_alive = true;
  e.response_keep_alive = true;
  return e;
}

std::uint64_t count(const PoolStats& s, Discard d) { return s.discards[static_cast<std::size_t>(d)].load(); }

}  // namespace

TEST(GkUpstreamPool, OnlyACleanExchangeGoesBack) {
  EXPECT_EQ(return_verdict(clean()), std::nullopt);
  struct Case {
    const char* what;
    void (*spoil)(ExchangeEnd&);
    Discard why;
  };
  const Case cases[] = {
      {"request body not sent whole", [](ExchangeEnd& e) { e.request_complete = false; }, Discard::request_incomplete},
      {"response parser not done", [](ExchangeEnd& e) { e.response_complete = false; }, Discard::response_incomplete},
      {"close-delimited body", [](ExchangeEnd& e) { e.close_delimited = true; }, Discard::close_delimited},
      {"101 / upgrade request", [](ExchangeEnd& e) { e.upgrade = true; }, Discard::upgrade},
      {"request said close / HTTP/1.0", [](ExchangeEnd& e) { e.request_keep_alive = false; },
       Discard::connection_close},
      {"response said close / HTTP/1.0", [](ExchangeEnd& e) { e.response_keep_alive = false; },
       Discard::connection_close},
      {"bytes buffered after the response", [](ExchangeEnd& e) { e.extra_bytes = 1; }, Discard::extra_bytes},
      {"bytes pending on the socket", [](ExchangeEnd& e) { e.pending_input = true; }, Discard::extra_bytes},
  };
  for (const auto& c : cases) {
    ExchangeEnd e = clean();
    c.spoil(e);
    EXPECT_EQ(return_verdict(e), c.why) << c.what;
  }
  // Every fact that forbids reuse forbids it whatever else holds: no combination passes.
  for (unsigned bits = 1; bits < (1u << 8); ++bits) {
    ExchangeEnd e = clean();
    for (unsigned i = 0; i < 8; ++i)
      if (bits & (1u << i)) cases[i].spoil(e);
    EXPECT_TRUE(return_verdict(e).has_value()) << bits;
  }
}

TEST(GkUpstreamPool, KeyCoversEverythingThatDefinesTheUpstream) {
  og::gk::HostConfig h;
  h.upstream = *og::gk::parse_upstream("127.0.0.1:8080");
  h.upstream_tls = true;
  h.upstream_ca = "/etc/ca.pem";
  h.upstream_server_name = "app.internal";
  int ctx_a = 0, ctx_b = 0;
  const UpstreamKey base = og::gk::upstream_key(h, &ctx_a);
  EXPECT_EQ(base, og::gk::upstream_key(h, &ctx_a));
  EXPECT_NE(base, og::gk::upstream_key(h, &ctx_b)) << "a reload's new TLS context";
  auto changed = [&](void (*edit)(og::gk::HostConfig&)) {
    og::gk::HostConfig c = h;
    edit(c);
    return og::gk::upstream_key(c, &ctx_a);
  };
  EXPECT_NE(base, changed([](og::gk::HostConfig& c) { c.upstream.host = "127.0.0.2"; }));
  EXPECT_NE(base, changed([](og::gk::HostConfig& c) { c.upstream.port = 8081; }));
  EXPECT_NE(base, changed([](og::gk::HostConfig& c) { c.upstream_tls = false; }));
  EXPECT_NE(base, changed([](og::gk::HostConfig& c) { c.upstream_ca = "/etc/other.pem"; }));
  EXPECT_NE(base, changed([](og::gk::HostConfig& c) { c.upstream_server_name = "other.internal"; }));
  EXPECT_NE(base, changed([](og::gk::HostConfig& c) { c.upstream = *og::gk::parse_upstream("unix:/run/app.sock"); }));
  EXPECT_EQ(og::gk::UpstreamKeyHash()(base), og::gk::UpstreamKeyHash()(og::gk::upstream_key(h, &ctx_a)));
}

TEST(GkUpstreamPool, TcpModeAndProxyProtocolStayOneToOne) {
  og::gk::GatekeeperConfig g;
  og::gk::HostConfig h;
  EXPECT_TRUE(og::gk::pooled(h, g));
  og::gk::HostConfig tcp = h;
  tcp.mode = og::gk::Mode::tcp;
  EXPECT_FALSE(og::gk::pooled(tcp, g));
  og::gk::HostConfig pp = h;
  pp.proxy_protocol = og::gk::ProxyProtocol::v2;
  EXPECT_FALSE(og::gk::pooled(pp, g));
  g.upstream_keepalive = 0;
  EXPECT_FALSE(og::gk::pooled(h, g));
}

TEST(GkUpstreamPool, DiscardReasonsHaveDistinctNames) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < static_cast<std::size_t>(Discard::count_); ++i)
    names.insert(og::gk::to_string(static_cast<Discard>(i)));
  EXPECT_EQ(names.size(), static_cast<std::size_t>(Discard::count_));
  EXPECT_EQ(names.count("?"), 0u);
}

// ---- the pool over a socketpair --------------------------------------------------------

namespace {
using Unix = asio::local::stream_protocol;
using Up = og::gk::PlainStream<Unix>;

struct Pair {
  explicit Pair(asio::io_context& io) : peer(io) {
    Unix::socket mine(io);
    asio::local::connect_pair(mine, peer);
    up = std::make_unique<Up>(std::move(mine), nullptr);
  }
  std::unique_ptr<Up> up;
  Unix::socket peer;  // the upstream's end
};

UpstreamKey key(const char* host) {
  UpstreamKey k;
  k.host = host;
  k.port = 80;
  return k;
}
}  // namespace

TEST(GkUpstreamPool, LendsTheSameConnectionBackUnderItsKeyOnly) {
  asio::io_context io;
  PoolStats stats;
  og::gk::UpstreamPool<Up> pool;
  Pair p(io);
  Up* raw = p.up.get();
  pool.give(io.get_executor(), key("a"), std::move(p.up), 4, std::chrono::seconds(60), stats);
  EXPECT_EQ(stats.idle.load(), 1);
  EXPECT_EQ(pool.take(key("b"), stats), nullptr);
  auto back = pool.take(key("a"), stats);
  EXPECT_EQ(back.get(), raw);
  EXPECT_EQ(stats.idle.load(), 0);
  EXPECT_EQ(pool.take(key("a"), stats), nullptr);
  io.poll();  // the cancelled watch must not touch the lent connection
  EXPECT_TRUE(back->socket().is_open());
}

TEST(GkUpstreamPool, BoundedPerKey) {
  asio::io_context io;
  PoolStats stats;
  og::gk::UpstreamPool<Up> pool;
  std::vector<Pair> pairs;
  for (int i = 0; i < 3; ++i) pairs.emplace_back(io);
  for (auto& p : pairs) pool.give(io.get_executor(), key("a"), std::move(p.up), 2, std::chrono::seconds(60), stats);
  EXPECT_EQ(pool.idle_count(), 2u);
  EXPECT_EQ(count(stats, Discard::pool_full), 1u);
  Pair other(io);
  pool.give(io.get_executor(), key("b"), std::move(other.up), 2, std::chrono::seconds(60), stats);
  EXPECT_EQ(pool.idle_count(), 3u);
}

TEST(GkUpstreamPool, AByteWhileIdleClosesIt) {
  asio::io_context io;
  PoolStats stats;
  og::gk::UpstreamPool<Up> pool;
  Pair p(io);
  pool.give(io.get_executor(), key("a"), std::move(p.up), 4, std::chrono::seconds(60), stats);
  asio::write(p.peer, asio::buffer("HTTP/1.1 200 OK\r\n", 17));  // a late or unasked response
  while (pool.idle_count() && io.run_one()) {
  }
  EXPECT_EQ(pool.idle_count(), 0u);
  EXPECT_EQ(count(stats, Discard::upstream_closed), 1u);
  EXPECT_EQ(stats.idle.load(), 0);
  EXPECT_EQ(pool.take(key("a"), stats), nullptr);
}

TEST(GkUpstreamPool, AnEofWhileIdleClosesIt) {
  asio::io_context io;
  PoolStats stats;
  og::gk::UpstreamPool<Up> pool;
  Pair p(io);
  pool.give(io.get_executor(), key("a"), std::move(p.up), 4, std::chrono::seconds(60), stats);
  p.peer.close();  // the upstream's own keep-alive timeout
  while (pool.idle_count() && io.run_one()) {
  }
  EXPECT_EQ(count(stats, Discard::upstream_closed), 1u);
  EXPECT_EQ(pool.take(key("a"), stats), nullptr);
}

TEST(GkUpstreamPool, IdleTimeoutClosesIt) {
  asio::io_context io;
  PoolStats stats;
  og::gk::UpstreamPool<Up> pool;
  Pair p(io);
  pool.give(io.get_executor(), key("a"), std::move(p.up), 4, std::chrono::seconds(0), stats);
  while (pool.idle_count() && io.run_one()) {
  }
  EXPECT_EQ(count(stats, Discard::idle_timeout), 1u);
  EXPECT_EQ(stats.idle.load(), 0);
}
