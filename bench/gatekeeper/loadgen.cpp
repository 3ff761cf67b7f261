// og_gk_loadgen: a small OpenSSL load generator that presents a client certificate, so the
// gatekeeper and nginx (ssl_verify_client on) are measured by the same client. Loopback only.
//
//   og_gk_loadgen MODE --port P --sni NAME --cert PEM --key PEM [options]
//
//   hs    full handshakes for --seconds on --threads blocking clients (no resumption)
//   lat   handshakes at a fixed offered rate (--rate per second, open loop: latency is counted
//         from each connection's scheduled start, so a server that falls behind is not hidden)
//   ka    keep-alive GET requests on --threads connections for --seconds
//   idle  open --conns connections, one GET on each, hold them for --seconds
//
// Options: --tls 1.2|1.3 (the highest version offered; default 1.3), --certs-dir DIR with
// --certs-n N (present DIR/0000.pem .. DIR/(N-1).pem in turn, all with --key; default: --cert),
// --check-every N (hs/lat: a GET on every Nth connection must answer 200; default 100).
//
// A handshake counts only once the server has accepted the certificate. In TLS 1.3,
// SSL_connect returns before the server has read the client's certificate, so a server that
// refused it would still count there; the client therefore sends close_notify and reads: the
// server answers with close_notify or a close (accepted) or with an alert (refused: counted as
// `rejected`). Output: one line of key=value pairs; hs and ka end with cpu_s, the load
// generator's own CPU seconds during the load (after loading the certificates).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
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
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "originguard/handle.hpp"
#include "ssl_util.hpp"
#include "tls_libctx.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string mode, sni, cert, key, certs_dir;
  int port = 0, threads = 3, conns = 100, certs_n = 0, check_every = 100, tls = 13;
  double seconds = 5, rate = 100;
};

// The gatekeeper's owned OpenSSL handles (ssl_util.hpp).
using CtxPtr = og::gk::SslCtxPtr;
using og::gk::SslPtr;
using og::gk::X509Ptr;
using PkeyPtr = og::gk::EvpPkeyPtr;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "og_gk_loadgen: %s\n", what);
  ERR_print_errors_fp(stderr);
  std::exit(2);
}

// The client side: the certificates to present, in turn.
struct Client {
  CtxPtr ctx;
  std::vector<X509Ptr> certs;  // empty: the context's own certificate
  PkeyPtr key;
  std::atomic<unsigned> next{0};

  explicit Client(const Args& a) : ctx(SSL_CTX_new_ex(og::gk::tls_libctx(), nullptr, TLS_client_method())) {
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx.get(), a.tls == 12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    // A close without close_notify after ours is a server that accepted us and hung up.
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);  // every handshake is full
    // The server's chain is not checked (OpenSSL would build and check it even with
    // SSL_VERIFY_NONE): that is the client's cost, not the server's, and every cycle the client
    // saves keeps it further from being the bottleneck. The handshake still checks the server's
    // CertificateVerify signature.
    SSL_CTX_set_cert_verify_callback(
        ctx.get(), [](X509_STORE_CTX*, void*) { return 1; }, nullptr);
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), a.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), a.key.c_str(), SSL_FILETYPE_PEM) != 1)
      die("cannot load --cert/--key");
    for (int i = 0; i < a.certs_n; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "/%04d.pem", i);
      og::Unique<FILE, std::fclose> f(std::fopen((a.certs_dir + name).c_str(), "r"));
      if (!f) die("cannot open a --certs-dir certificate");
      certs.emplace_back(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
      if (!certs.back()) die("cannot read a --certs-dir certificate");
    }
    if (!certs.empty()) {
      og::Unique<FILE, std::fclose> f(std::fopen(a.key.c_str(), "r"));
      if (!f || !(key = PkeyPtr(PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr)))) die("cannot read --key");
    }
  }

  SslPtr make(const Args& a, int fd) {
    SslPtr ssl(SSL_new(ctx.get()));
    if (!certs.empty()) {
      X509* c = certs[next.fetch_add(1, std::memory_order_relaxed) % certs.size()].get();
      if (SSL_use_certificate(ssl.get(), c) != 1 || SSL_use_PrivateKey(ssl.get(), key.get()) != 1)
        die("certificate and key do not match");
    }
    SSL_set_fd(ssl.get(), fd);
    SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(a.sni.c_str()));
    return ssl;
  }
};

using Fd = og::UniqueFd;

Fd dial(int port) {
  Fd fd(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return Fd();
  return fd;
}

// Reads one response with Content-Length; false on error or a status other than 200.
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

bool get(SSL* ssl, const Args& a, std::string& buf) {
  const std::string req = "GET / HTTP/1.1\r\nHost: " + a.sni + "\r\n\r\n";
  return SSL_write(ssl, req.data(), static_cast<int>(req.size())) > 0 && read_response(ssl, buf);
}

enum class Outcome { accepted, rejected, failed };

// The first refusal's reason goes to stderr, once: a benchmark that is refused is misconfigured.
Outcome refused(const char* where) {
  static std::atomic<bool> said{false};
  if (!said.exchange(true)) {
    char buf[256];
    ERR_error_string_n(ERR_peek_last_error(), buf, sizeof buf);
    std::fprintf(stderr, "og_gk_loadgen: first refusal (%s): %s\n", where, buf);
  }
  ERR_clear_error();
  return Outcome::rejected;
}

// One full handshake, counted only once the server has accepted the certificate (see above).
Outcome one_handshake(Client& c, const Args& a, bool request) {
  Fd fd = dial(a.port);
  if (!fd.valid()) return Outcome::failed;
  SslPtr ssl = c.make(a, fd.get());
  if (SSL_connect(ssl.get()) != 1) return refused("handshake");  // TLS 1.2 refuses inside it
  std::string buf;
  if (request) return get(ssl.get(), a, buf) ? Outcome::accepted : refused("request");
  if (SSL_shutdown(ssl.get()) < 0) return Outcome::failed;
  char b[256];
  int n = SSL_read(ssl.get(), b, sizeof b);
  if (n > 0) return Outcome::failed;  // nothing was asked for
  int err = SSL_get_error(ssl.get(), n);
  // close_notify or a plain close: the server read our close_notify after our certificate.
  if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) return Outcome::accepted;
  return refused("after close_notify");
}

struct Counts {
  std::atomic<long> accepted{0}, rejected{0}, failed{0};
  void add(Outcome o) { (o == Outcome::accepted ? accepted : o == Outcome::rejected ? rejected : failed)++; }
};

// The load generator's own CPU seconds so far (all threads): with the server's, it shows which of
// the two was the bottleneck.
double own_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

double pct(const std::vector<double>& v, double p) {
  return v.empty() ? 0.0 : v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

int run_hs(const Args& a) {
  Client c(a);
  const double cpu0 = own_cpu_seconds();  // the load only, not the set-up (--certs-dir)
  Counts n;
  std::atomic<long> seq{0};
  const auto stop = Clock::now() + std::chrono::duration<double>(a.seconds);
  std::vector<std::thread> ts;
  for (int t = 0; t < a.threads; ++t)
    ts.emplace_back([&] {
      while (Clock::now() < stop) n.add(one_handshake(c, a, ++seq % a.check_every == 0));
    });
  for (auto& t : ts) t.join();
  std::printf("mode=hs accepted=%ld rejected=%ld failed=%ld seconds=%.1f hs_per_s=%.0f cpu_s=%.3f\n", n.accepted.load(),
              n.rejected.load(), n.failed.load(), a.seconds, static_cast<double>(n.accepted.load()) / a.seconds,
              own_cpu_seconds() - cpu0);
  return n.rejected.load() || n.failed.load() > n.accepted.load() / 100 ? 1 : 0;
}

int run_lat(const Args& a) {
  Client c(a);
  Counts n;
  std::mutex mu;
  std::vector<double> lat;
  const long total = std::max(1L, static_cast<long>(a.rate * a.seconds));
  const auto interval = std::chrono::duration<double>(1.0 / a.rate);
  const auto start = Clock::now() + std::chrono::milliseconds(50);
  std::vector<std::thread> ts;
  for (int t = 0; t < a.threads; ++t)
    ts.emplace_back([&, t] {
      std::vector<double> mine;
      for (long i = t; i < total; i += a.threads) {
        const auto due = start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i));
        std::this_thread::sleep_until(due);
        Outcome o = one_handshake(c, a, (i + 1) % a.check_every == 0);
        n.add(o);
        if (o == Outcome::accepted)
          mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - due).count());
      }
      std::lock_guard l(mu);
      lat.insert(lat.end(), mine.begin(), mine.end());
    });
  for (auto& t : ts) t.join();
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(lat.begin(), lat.end());
  std::printf("mode=lat offered_per_s=%.0f accepted=%ld rejected=%ld failed=%ld seconds=%.1f p50_us=%.0f p99_us=%.0f\n",
              a.rate, n.accepted.load(), n.rejected.load(), n.failed.load(), took, pct(lat, 0.5), pct(lat, 0.99));
  return n.rejected.load() || n.failed.load() ? 1 : 0;
}

int run_ka(const Args& a) {
  Client c(a);
  const double cpu0 = own_cpu_seconds();
  std::mutex mu;
  std::vector<double> lat;
  std::atomic<long> failed{0};
  const auto stop = Clock::now() + std::chrono::duration<double>(a.seconds);
  std::vector<std::thread> ts;
  for (int t = 0; t < a.threads; ++t)
    ts.emplace_back([&] {
      std::vector<double> mine;
      std::string buf;
      Fd fd = dial(a.port);
      SslPtr ssl = !fd.valid() ? nullptr : c.make(a, fd.get());
      if (!ssl || SSL_connect(ssl.get()) != 1) {
        ++failed;
        return;
      }
      while (Clock::now() < stop) {
        auto t0 = Clock::now();
        if (!get(ssl.get(), a, buf)) {
          ++failed;
          break;
        }
        mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      std::lock_guard l(mu);
      lat.insert(lat.end(), mine.begin(), mine.end());
    });
  for (auto& t : ts) t.join();
  std::sort(lat.begin(), lat.end());
  std::printf("mode=ka requests=%zu failed=%ld seconds=%.1f req_per_s=%.0f p50_us=%.0f p99_us=%.0f cpu_s=%.3f\n",
              lat.size(), failed.load(), a.seconds, static_cast<double>(lat.size()) / a.seconds, pct(lat, 0.5),
              pct(lat, 0.99), own_cpu_seconds() - cpu0);
  return failed.load() ? 1 : 0;
}

// Connections after one request each, as the edge's kept-alive connections are.
int run_idle(const Args& a) {
  Client c(a);
  std::vector<std::pair<Fd, SslPtr>> held;
  long failed = 0;
  std::string buf;
  for (int i = 0; i < a.conns; ++i) {
    Fd fd = dial(a.port);
    SslPtr ssl = !fd.valid() ? nullptr : c.make(a, fd.get());
    if (!ssl || SSL_connect(ssl.get()) != 1 || !get(ssl.get(), a, buf)) {
      ++failed;
      continue;
    }
    held.emplace_back(std::move(fd), std::move(ssl));
  }
  std::printf("mode=idle open=%zu failed=%ld\n", held.size(), failed);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds));
  return 0;
}

bool parse(int argc, char** argv, Args& a) {
  if (argc < 2) return false;
  a.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string_view k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--port")
      a.port = std::atoi(v);
    else if (k == "--sni")
      a.sni = v;
    else if (k == "--cert")
      a.cert = v;
    else if (k == "--key")
      a.key = v;
    else if (k == "--certs-dir")
      a.certs_dir = v;
    else if (k == "--certs-n")
      a.certs_n = std::clamp(std::atoi(v), 0, 100000);
    else if (k == "--threads")
      a.threads = std::clamp(std::atoi(v), 1, 64);
    else if (k == "--conns")
      a.conns = std::clamp(std::atoi(v), 1, 20000);
    else if (k == "--seconds")
      a.seconds = std::clamp(std::atof(v), 0.1, 120.0);  // bounded by design
    else if (k == "--rate")
      a.rate = std::clamp(std::atof(v), 1.0, 100000.0);
    else if (k == "--check-every")
      a.check_every = std::max(1, std::atoi(v));
    else if (k == "--tls")
      a.tls = std::string_view(v) == "1.2" ? 12 : 13;
    else
      return false;
  }
  return (argc % 2) == 0 && a.port > 0 && !a.sni.empty() && !a.cert.empty() && !a.key.empty() &&
         (a.certs_n == 0 || !a.certs_dir.empty());
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, a)) {
    std::fprintf(stderr,
                 "usage: %s hs|lat|ka|idle --port P --sni NAME --cert PEM --key PEM [--tls 1.2|1.3]\n"
                 "       [--threads N] [--seconds S] [--rate R] [--conns N] [--certs-dir D --certs-n N]"
                 " [--check-every N]\n",
                 argv[0]);
    return 2;
  }
  if (a.mode == "hs") return run_hs(a);
  if (a.mode == "lat") return run_lat(a);
  if (a.mode == "ka") return run_ka(a);
  if (a.mode == "idle") return run_idle(a);
  std::fprintf(stderr, "unknown mode %s\n", a.mode.c_str());
  return 2;
}
