// og_gk_loadgen: a small OpenSSL load generator that presents a client certificate, so the
// gatekeeper and nginx (ssl_verify_client on) are measured by the same client. Loopback only.
//
//   og_gk_loadgen hs   PORT SNI CERT KEY THREADS SECONDS          full handshakes/s (no resumption)
//   og_gk_loadgen ka   PORT SNI CERT KEY CONNS   SECONDS          keep-alive GET req/s, p50/p99
//   og_gk_loadgen idle PORT SNI CERT KEY CONNS   HOLD_SECONDS     open CONNS mTLS connections, hold
//
// Output: one line of key=value pairs.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tls_libctx.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string mode, sni, cert, key;
  int port = 0, n = 1;
  double seconds = 5;
};

struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

std::unique_ptr<SSL_CTX, CtxFree> make_ctx(const Args& a) {
  std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new_ex(og::gk::tls_libctx(), nullptr, TLS_client_method()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);  // every handshake is full
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), a.cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), a.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    ERR_print_errors_fp(stderr);
    std::exit(2);
  }
  return ctx;
}

int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

SSL* handshake(SSL_CTX* ctx, const Args& a, int fd) {
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(a.sni.c_str()));
  if (SSL_connect(ssl) != 1) {
    SSL_free(ssl);
    return nullptr;
  }
  return ssl;
}

// Reads one response with Content-Length; false on error.
bool read_response(SSL* ssl, std::string& buf) {
  buf.clear();
  char tmp[16384];
  std::size_t need = std::string::npos;
  for (;;) {
    int n = SSL_read(ssl, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
    if (need == std::string::npos) {
      auto end = buf.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      auto cl = buf.find("Content-Length: ");
      if (cl == std::string::npos) cl = buf.find("content-length: ");
      std::size_t len = cl == std::string::npos || cl > end ? 0 : std::strtoul(buf.c_str() + cl + 16, nullptr, 10);
      need = end + 4 + len;
    }
    if (buf.size() >= need) return buf.compare(0, 12, "HTTP/1.1 200") == 0;
  }
}

int run_hs(const Args& a) {
  auto ctx = make_ctx(a);
  std::atomic<long> ok{0}, failed{0};
  const auto stop = Clock::now() + std::chrono::duration<double>(a.seconds);
  std::vector<std::thread> ts;
  for (int t = 0; t < a.n; ++t)
    ts.emplace_back([&] {
      while (Clock::now() < stop) {
        int fd = dial(a.port);
        if (fd < 0) {
          ++failed;
          continue;
        }
        if (SSL* ssl = handshake(ctx.get(), a, fd)) {
          ++ok;
          SSL_shutdown(ssl);
          SSL_free(ssl);
        } else {
          ++failed;
        }
        close(fd);
      }
    });
  for (auto& t : ts) t.join();
  std::printf("mode=hs handshakes=%ld failed=%ld seconds=%.1f hs_per_s=%.0f\n", ok.load(), failed.load(), a.seconds,
              static_cast<double>(ok.load()) / a.seconds);
  return failed.load() > ok.load() / 100 ? 1 : 0;
}

int run_ka(const Args& a) {
  auto ctx = make_ctx(a);
  std::mutex mu;
  std::vector<double> lat;
  std::atomic<long> failed{0};
  const auto stop = Clock::now() + std::chrono::duration<double>(a.seconds);
  const std::string req = "GET / HTTP/1.1\r\nHost: " + a.sni + "\r\n\r\n";
  std::vector<std::thread> ts;
  for (int t = 0; t < a.n; ++t)
    ts.emplace_back([&] {
      std::vector<double> mine;
      std::string buf;
      int fd = dial(a.port);
      SSL* ssl = fd < 0 ? nullptr : handshake(ctx.get(), a, fd);
      if (!ssl) {
        ++failed;
        if (fd >= 0) close(fd);
        return;
      }
      while (Clock::now() < stop) {
        auto t0 = Clock::now();
        if (SSL_write(ssl, req.data(), static_cast<int>(req.size())) <= 0 || !read_response(ssl, buf)) {
          ++failed;
          break;
        }
        mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      SSL_free(ssl);
      close(fd);
      std::lock_guard l(mu);
      lat.insert(lat.end(), mine.begin(), mine.end());
    });
  for (auto& t : ts) t.join();
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return lat.empty() ? 0.0 : lat[static_cast<std::size_t>(p * (lat.size() - 1))]; };
  std::printf("mode=ka requests=%zu failed=%ld seconds=%.1f req_per_s=%.0f p50_us=%.0f p99_us=%.0f\n", lat.size(),
              failed.load(), a.seconds, static_cast<double>(lat.size()) / a.seconds, pct(0.5), pct(0.99));
  return failed.load() ? 1 : 0;
}

int run_idle(const Args& a) {
  auto ctx = make_ctx(a);
  std::vector<std::pair<int, SSL*>> conns;
  long failed = 0;
  for (int i = 0; i < a.n; ++i) {
    int fd = dial(a.port);
    SSL* ssl = fd < 0 ? nullptr : handshake(ctx.get(), a, fd);
    if (!ssl) {
      ++failed;
      if (fd >= 0) close(fd);
      continue;
    }
    conns.emplace_back(fd, ssl);
  }
  std::printf("mode=idle open=%zu failed=%ld\n", conns.size(), failed);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds));
  for (auto& [fd, ssl] : conns) {
    SSL_free(ssl);
    close(fd);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: %s hs|ka|idle PORT SNI CERT KEY N SECONDS\n", argv[0]);
    return 2;
  }
  Args a{argv[1], argv[3], argv[4], argv[5], std::atoi(argv[2]), std::atoi(argv[6]), std::atof(argv[7])};
  a.seconds = std::clamp(a.seconds, 0.1, 120.0);  // bounded by design
  a.n = std::clamp(a.n, 1, 20000);
  if (a.mode == "hs") return run_hs(a);
  if (a.mode == "ka") return run_ka(a);
  if (a.mode == "idle") return run_idle(a);
  std::fprintf(stderr, "unknown mode %s\n", a.mode.c_str());
  return 2;
}
