// The metrics endpoint on loopback (port 0, no privileges): what it answers to good and bad
// requests, that it listens on the configured address only, and the bounds an attacker meets
// (request size, idle and slow connections, the connection cap, work per request).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <thread>

#include "metrics_server.hpp"
#include "test_support.hpp"

namespace og {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ClassifyHttpRequest, Table) {
  constexpr std::size_t kMax = 4096;
  const std::pair<std::string_view, HttpAsk> cases[] = {
      {"GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", HttpAsk::metrics},
      {"GET /metrics HTTP/1.0\r\n\r\n", HttpAsk::metrics},
      {"GET /metrics HTTP/1.1\n\n", HttpAsk::metrics},
      {"GET /metrics?name[]=x HTTP/1.1\r\n\r\n", HttpAsk::metrics},
      {"HEAD /metrics HTTP/1.1\r\n\r\n", HttpAsk::metrics_head},
      {"GET /metrics HTTP/1.1\r\nHost: a\r\n", HttpAsk::need_more},
      {"GET /metr", HttpAsk::need_more},
      {"", HttpAsk::need_more},
      {"GET / HTTP/1.1\r\n\r\n", HttpAsk::not_found},
      {"GET /metrics/ HTTP/1.1\r\n\r\n", HttpAsk::not_found},
      {"GET /metricsx HTTP/1.1\r\n\r\n", HttpAsk::not_found},
      {"GET http://a/metrics HTTP/1.1\r\n\r\n", HttpAsk::not_found},
      {"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", HttpAsk::bad_method},
      {"DELETE /metrics HTTP/1.1\r\n\r\n", HttpAsk::bad_method},
      {"get /metrics HTTP/1.1\r\n\r\n", HttpAsk::bad_request},
      {"GET /metrics HTTP/2.0\r\n\r\n", HttpAsk::bad_request},
      {"GET /metrics\r\n\r\n", HttpAsk::bad_request},
      {"GET  /metrics HTTP/1.1\r\n\r\n", HttpAsk::bad_request},
      {"GET /metrics HTTP/1.1 x\r\n\r\n", HttpAsk::bad_request},
      {"GET /met\x01rics HTTP/1.1\r\n\r\n", HttpAsk::bad_request},
      {"\r\n\r\n", HttpAsk::bad_request},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(classify_http_request(in, kMax), want) << in;
  const std::string big = "GET /metrics HTTP/1.1\r\nX: " + std::string(kMax, 'a');
  EXPECT_EQ(classify_http_request(big, kMax), HttpAsk::too_large);
  EXPECT_EQ(classify_http_request(big.substr(0, kMax - 1), kMax), HttpAsk::need_more);
}

// Whatever the cut, a request's prefix asks for more, and the whole for the metrics.
TEST(ClassifyHttpRequest, EveryPrefixNeedsMore) {
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9463\r\nUser-Agent: Prometheus/2.42\r\n\r\n";
  for (std::size_t cut = 0; cut < req.size(); ++cut)
    EXPECT_EQ(classify_http_request(std::string_view(req).substr(0, cut), 4096), HttpAsk::need_more) << cut;
  EXPECT_EQ(classify_http_request(req, 4096), HttpAsk::metrics);
}

SocketAddress loopback(std::string_view a, std::uint16_t port = 0) { return {*parse_address(a), port}; }

class MetricsServerTest : public ::testing::Test {
 protected:
  void start(MetricsServer::Limits limits = {}) {
    loop_ = std::thread([this] { io_.run(); });
    on_loop([&] {
      server_ = std::make_unique<MetricsServer>(
          io_,
          [this] {
            ++renders_;
            return body_;
          },
          limits);
      ASSERT_TRUE(test::ok(server_->configure(loopback("127.0.0.1"))));
      port_ = server_->listening()->port;
    });
  }
  void TearDown() override {
    if (loop_.joinable()) {
      on_loop([&] { server_.reset(); });
      guard_.reset();
      io_.stop();
      loop_.join();
    }
  }
  // Runs `f` on the server's loop and waits for it.
  template <class F>
  void on_loop(F f) {
    std::promise<void> done;
    asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().get();
  }
  std::size_t connections() {
    std::size_t n = 0;
    on_loop([&] { n = server_->connections(); });
    return n;
  }
  bool connections_become(std::size_t n) {
    for (int i = 0; i < 500; ++i) {
      if (connections() == n) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  tcp::socket connect(std::string_view addr = "127.0.0.1") {
    tcp::socket s(client_io_);
    s.connect(tcp::endpoint(asio::ip::make_address(std::string(addr)), port_));
    return s;
  }
  // Everything the server sends until it closes.
  static std::string read_all(tcp::socket& s) {
    std::string out;
    boost::system::error_code ec;
    asio::read(s, asio::dynamic_buffer(out), ec);
    return out;
  }
  std::string exchange(std::string_view request) {
    auto s = connect();
    asio::write(s, asio::buffer(request));
    return read_all(s);
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  std::thread loop_;
  asio::io_context client_io_;
  std::unique_ptr<MetricsServer> server_;
  std::uint16_t port_ = 0;
  std::string body_ = "# HELP x y\n# TYPE x gauge\nx 1\n";
  std::atomic<int> renders_{0};
};

TEST_F(MetricsServerTest, GetAndHead) {
  start();
  EXPECT_EQ(exchange("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: " +
                std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n" + body_);
  EXPECT_EQ(exchange("HEAD /metrics HTTP/1.0\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: " +
                std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n");
}

TEST_F(MetricsServerTest, ErrorsAnswerAndClose) {
  start();
  EXPECT_THAT(exchange("GET / HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 404 Not Found\r\n"));
  const auto post = exchange("POST /metrics HTTP/1.1\r\n\r\n");
  EXPECT_THAT(post, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  EXPECT_THAT(post, HasSubstr("\r\nAllow: GET, HEAD\r\n"));
  EXPECT_THAT(exchange(std::string("\x16\x03\x01\x02\x00\x01\r\n\r\n", 10)),
              StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(exchange("GET /metrics HTTP/1.1\r\nX: " + std::string(5000, 'a')),
              StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  EXPECT_EQ(renders_, 0) << "no error renders the metrics";
  EXPECT_TRUE(connections_become(0));
}

TEST_F(MetricsServerTest, RequestInPiecesIsAnsweredOnceComplete) {
  start();
  auto s = connect();
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
  for (char c : req) {
    asio::write(s, asio::buffer(&c, 1));
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_THAT(read_all(s), StartsWith("HTTP/1.1 200 OK\r\n"));
}

// Listening on 127.0.0.1 is listening there only: not on the rest of 127/8, not on IPv6.
TEST_F(MetricsServerTest, OnlyTheConfiguredAddress) {
  start();
  tcp::socket s(client_io_);
  boost::system::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.2"), port_), ec);
  EXPECT_EQ(ec, asio::error::connection_refused);
  tcp::socket s6(client_io_);
  s6.connect(tcp::endpoint(asio::ip::make_address("::1"), port_), ec);
  EXPECT_TRUE(ec) << "[::1] answered";
}

TEST_F(MetricsServerTest, IdleConnectionIsClosedAtTheRequestTimeout) {
  MetricsServer::Limits l;
  l.request_timeout = 200ms;
  start(l);
  auto s = connect();
  asio::write(s, asio::buffer(std::string_view("GET /metrics HTTP/1.1\r\n")));  // never finished
  EXPECT_EQ(read_all(s), "") << "closed without an answer";
  EXPECT_TRUE(connections_become(0));
}

// At the cap a scrape still gets in: the oldest connection that has not finished its request
// makes room.
TEST_F(MetricsServerTest, SlowlorisCannotLockScrapesOut) {
  MetricsServer::Limits l;
  l.max_connections = 4;
  start(l);
  std::vector<tcp::socket> slow;
  for (int i = 0; i < 4; ++i) {
    slow.push_back(connect());
    asio::write(slow.back(), asio::buffer(std::string_view("GET /metrics HTTP/1.1\r\nX-a: ")));
  }
  ASSERT_TRUE(connections_become(4));
  EXPECT_THAT(exchange("GET /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(read_all(slow.front()), "") << "the oldest idle one was dropped";
  EXPECT_LE(connections(), 4u);
}

TEST_F(MetricsServerTest, ReaderThatNeverReadsIsDroppedAtTheResponseTimeout) {
  MetricsServer::Limits l;
  l.response_timeout = 300ms;
  body_ = std::string(16 << 20, 'x');  // far more than the socket buffers hold
  start(l);
  auto s = connect();
  asio::write(s, asio::buffer(std::string_view("GET /metrics HTTP/1.1\r\n\r\n")));
  EXPECT_TRUE(connections_become(0));
}

TEST_F(MetricsServerTest, RenderedAtMostOncePerCachePeriod) {
  MetricsServer::Limits l;
  l.cache_for = 1h;
  start(l);
  for (int i = 0; i < 5; ++i) EXPECT_THAT(exchange("GET /metrics HTTP/1.1\r\n\r\n"), HasSubstr(body_));
  EXPECT_EQ(renders_, 1);
}

TEST_F(MetricsServerTest, ReconfigureMovesAndCloses) {
  start();
  std::uint16_t moved = 0;
  on_loop([&] {
    EXPECT_TRUE(test::ok(server_->configure(loopback("127.0.0.1"))));  // same: nothing happens
    EXPECT_EQ(server_->listening()->port, port_);
    ASSERT_TRUE(test::ok(server_->configure(loopback("127.0.0.3"))));
    moved = server_->listening()->port;
  });
  tcp::socket s(client_io_);
  boost::system::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
  EXPECT_EQ(ec, asio::error::connection_refused) << "the old address is closed";
  port_ = moved;
  auto s3 = connect("127.0.0.3");
  asio::write(s3, asio::buffer(std::string_view("GET /metrics HTTP/1.1\r\n\r\n")));
  EXPECT_THAT(read_all(s3), StartsWith("HTTP/1.1 200 OK\r\n"));
  on_loop([&] {
    EXPECT_TRUE(test::ok(server_->configure(std::nullopt)));
    EXPECT_FALSE(server_->listening());
  });
}

TEST_F(MetricsServerTest, AddressNotOnThisHostIsAWarningUntilItWorks) {
  start();
  on_loop([&] {
    const auto elsewhere = loopback("192.0.2.1", 9463);
    auto st = server_->configure(elsewhere);
    ASSERT_TRUE(test::refused(st));
    EXPECT_THAT(st.error().message, HasSubstr("Cannot assign requested address"));
    ASSERT_EQ(server_->warnings().size(), 1u);
    EXPECT_EQ(server_->warnings()[0].id, "metrics.listen_failed");
    EXPECT_TRUE(server_->warnings()[0].needs_action);
    EXPECT_THAT(server_->warnings()[0].text, HasSubstr("[metrics] listen 192.0.2.1:9463"));
    EXPECT_FALSE(server_->listening());
    EXPECT_TRUE(test::ok(server_->configure(loopback("127.0.0.1"))));
    EXPECT_TRUE(server_->warnings().empty());
  });
}

}  // namespace
}  // namespace og
