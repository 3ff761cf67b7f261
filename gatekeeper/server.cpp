#include "server.hpp"

#include <sys/stat.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <map>
#include <thread>

#include "connection.hpp"
#include "originguard/log.hpp"

namespace og::gk {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

std::vector<std::string> policy_warnings(const PolicySet& set) {
  std::vector<std::string> out;
  const std::time_t now = std::time(nullptr);
  for (const auto& h : set.hosts()) {
    if (h->cfg.mtls != Mtls::off && h->global_ca && h->spki_pins.empty() && h->cert_pins.empty() &&
        h->cfg.client_cn.empty() && h->cfg.client_san.empty())
      out.push_back("host " + h->cfg.label() +
                    ": client_ca is the global origin-pull CA, shared by every Cloudflare customer; any zone can "
                    "reach this host. Use a zone or per-hostname AOP certificate (client_ca) or pins.");
    for (std::size_t i = 0; i < h->cert_not_after.size(); ++i) {
      auto left = h->cert_not_after[i] - now;
      if (left < 14 * 86400)
        out.push_back("host " + h->cfg.label() + ": certificate " + h->cfg.certs[i].string() +
                      (left < 0 ? " has expired" : " expires in " + std::to_string(left / 86400) + " days"));
    }
  }
  return out;
}

std::string metrics_text(const Shared& shared) {
  auto gen = shared.gen.load();
  std::string out;
  auto line = [&](std::string_view name, const std::string& labels, auto v) {
    out += std::string(name) + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(v) + "\n";
  };
  out += "# TYPE og_gk_connections_active gauge\n";
  line("og_gk_connections_active", "", shared.connections.load());
  out += "# TYPE og_gk_refused_sni_total counter\n";
  line("og_gk_refused_sni_total", "", shared.refused_sni.load());
  out += "# TYPE og_gk_refused_overload_total counter\n";
  line("og_gk_refused_overload_total", "", shared.refused_overload.load());
  out +=
      "# TYPE og_gk_handshakes_total counter\n# TYPE og_gk_refusals_total counter\n"
      "# TYPE og_gk_verdict_cache_hits_total counter\n# TYPE og_gk_cert_not_after_seconds gauge\n"
      "# TYPE og_gk_global_ca_without_pins gauge\n";
  for (const auto& h : gen->set->hosts()) {
    const std::string host = "host=\"" + h->cfg.label() + "\"";
    const auto& st = h->stats;
    line("og_gk_handshakes_total", host, st.handshakes_ok.load());
    line("og_gk_refusals_total", host + ",reason=\"no_cert\"", st.refused_no_cert.load());
    line("og_gk_refusals_total", host + ",reason=\"verify\"", st.refused_verify.load());
    line("og_gk_refusals_total", host + ",reason=\"pin\"", st.refused_pin.load());
    line("og_gk_refusals_total", host + ",reason=\"subject\"", st.refused_subject.load());
    line("og_gk_refusals_total", host + ",reason=\"edge_ip\"", st.refused_edge_ip.load());
    line("og_gk_verdict_cache_hits_total", host, st.verdict_cache_hits.load());
    for (std::size_t i = 0; i < h->cert_not_after.size(); ++i)
      line("og_gk_cert_not_after_seconds", host + ",cert=\"" + h->cfg.certs[i].string() + "\"",
           static_cast<long long>(h->cert_not_after[i]));
    line("og_gk_global_ca_without_pins", host,
         h->cfg.mtls != Mtls::off && h->global_ca && h->spki_pins.empty() && h->cert_pins.empty() ? 1 : 0);
  }
  return out;
}

namespace {

using FileStamp = std::pair<std::int64_t, std::int64_t>;  // mtime ns, inode

std::map<std::filesystem::path, FileStamp> stamp_files(const GatekeeperConfig& cfg) {
  std::map<std::filesystem::path, FileStamp> out;
  auto add = [&](const std::filesystem::path& p) {
    struct stat st {};
    if (p.empty() || ::stat(p.c_str(), &st) != 0) {
      out[p] = {-1, -1};
      return;
    }
    out[p] = {st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec, static_cast<std::int64_t>(st.st_ino)};
  };
  for (const auto& h : cfg.hosts) {
    for (const auto& c : h.certs) add(c);
    for (const auto& k : h.keys) add(k);
    for (const auto& c : h.crls) add(c);
    if (!h.client_ca.empty()) add(h.client_ca);
  }
  return out;
}

auto redirect(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

}  // namespace

struct Server::Impl {
  std::filesystem::path config_file;
  Shared shared;
  std::vector<std::unique_ptr<asio::io_context>> loops;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;  // acceptors[i] runs on loops[i % n]
  std::vector<std::size_t> acceptor_loop;
  asio::io_context control;
  std::map<std::filesystem::path, FileStamp> stamps;

  Status reload(std::string_view why) {
    auto cfg = load_gatekeeper_config(config_file);
    if (!cfg) return fail(cfg.error());
    auto set = PolicySet::build(*cfg);
    if (!set) return fail(set.error());
    const auto& old = shared.gen.load()->set->config();
    if (old.edge_ranges_file != cfg->edge_ranges_file || old.workers != cfg->workers)
      og::log::warn("gk_reload_partial", {{"detail", "listen, workers and edge_ranges_file apply after a restart"}});
    for (const auto& w : policy_warnings(**set)) og::log::warn("gk_policy_warning", {{"detail", w}});
    stamps = stamp_files(*cfg);
    shared.gen.store(Generation::make(std::move(*set)));
    og::log::info("gk_reloaded", {{"why", why}, {"hosts", cfg->hosts.size()}});
    return {};
  }

  asio::awaitable<void> accept_loop(tcp::acceptor& acc) {
    error_code ec;
    auto ex = co_await asio::this_coro::executor;
    for (;;) {
      tcp::socket sock = co_await acc.async_accept(redirect(ec));
      if (ec == asio::error::operation_aborted || !acc.is_open()) co_return;
      if (ec) {  // EMFILE and friends: back off instead of spinning
        og::log::warn("gk_accept_failed", {{"error", ec.message()}});
        asio::steady_timer t(ex, std::chrono::milliseconds(100));
        co_await t.async_wait(redirect(ec));
        continue;
      }
      const auto& cfg = shared.gen.load()->set->config();
      if (shared.connections.load(std::memory_order_relaxed) >= cfg.max_connections) {
        shared.refused_overload.fetch_add(1, std::memory_order_relaxed);
        sock.close(ec);
        continue;
      }
      asio::co_spawn(ex, serve_connection(std::move(sock), shared), [](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          og::log::error("gk_connection_exception", {{"error", x.what()}});
        }
      });
    }
  }

  std::unique_ptr<tcp::acceptor> metrics;

  // Minimal plain-HTTP responder for scrapes on a local address: any request gets the text.
  asio::awaitable<void> serve_metrics() {
    error_code ec;
    for (;;) {
      tcp::socket sock = co_await metrics->async_accept(redirect(ec));
      if (ec == asio::error::operation_aborted || !metrics->is_open()) co_return;
      if (ec) continue;
      std::array<char, 4096> buf;
      std::size_t got = 0;
      asio::steady_timer deadline(sock.get_executor(), std::chrono::seconds(2));
      deadline.async_wait([&sock](const error_code& e) {
        error_code ignored;
        if (!e) sock.close(ignored);
      });
      while (got < buf.size() && std::string_view(buf.data(), got).find("\r\n\r\n") == std::string_view::npos) {
        std::size_t n = co_await sock.async_read_some(asio::buffer(buf.data() + got, buf.size() - got), redirect(ec));
        if (ec) break;
        got += n;
      }
      deadline.cancel();
      if (ec) continue;
      std::string body = metrics_text(shared);
      std::string msg = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      co_await asio::async_write(sock, asio::buffer(msg), redirect(ec));
    }
  }

  asio::awaitable<void> watch_files() {
    asio::steady_timer t(co_await asio::this_coro::executor);
    error_code ec;
    for (;;) {
      t.expires_after(std::chrono::seconds(1));
      co_await t.async_wait(redirect(ec));
      if (ec) co_return;
      shared.edges->poll();
      auto now = stamp_files(shared.gen.load()->set->config());
      if (now != stamps) {
        stamps = now;  // a bad file is reported once per change, not every second
        if (auto st = reload("files changed"); !st)
          og::log::error("gk_reload_refused", {{"error", st.error().message}, {"detail", "old config keeps serving"}});
      }
    }
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::create(std::filesystem::path config_file) {
  auto impl = std::make_unique<Impl>();
  impl->config_file = std::move(config_file);
  auto cfg = load_gatekeeper_config(impl->config_file);
  if (!cfg) return fail(cfg.error());
  auto set = PolicySet::build(*cfg);
  if (!set) return fail(set.error());
  for (const auto& w : policy_warnings(**set)) og::log::warn("gk_policy_warning", {{"detail", w}});
  impl->stamps = stamp_files(*cfg);
  impl->shared.gen.store(Generation::make(std::move(*set)));
  impl->shared.edges = std::make_shared<EdgeRanges>(cfg->edge_ranges_file);
  impl->shared.edges->poll();

  unsigned workers = cfg->workers ? cfg->workers : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < workers; ++i) impl->loops.push_back(std::make_unique<asio::io_context>(1));
  for (const auto& l : cfg->listen) {
    tcp::endpoint ep(asio::ip::make_address(l.host), l.port);
    for (unsigned i = 0; i < workers; ++i) {
      auto acc = std::make_unique<tcp::acceptor>(*impl->loops[i]);
      error_code ec;
      acc->open(ep.protocol(), ec);
      if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) acc->set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
      if (!ec && ep.protocol() == tcp::v6()) acc->set_option(asio::ip::v6_only(true), ec);
      if (!ec) acc->bind(ep, ec);
      if (!ec) acc->listen(4096, ec);
      if (ec) return fail("listen " + l.host + ":" + std::to_string(l.port) + ": " + ec.message());
      impl->acceptors.push_back(std::move(acc));
      impl->acceptor_loop.push_back(i);
    }
  }
  if (cfg->metrics_listen) {
    tcp::endpoint ep(asio::ip::make_address(cfg->metrics_listen->host), cfg->metrics_listen->port);
    impl->metrics = std::make_unique<tcp::acceptor>(impl->control);
    error_code ec;
    impl->metrics->open(ep.protocol(), ec);
    if (!ec) impl->metrics->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) impl->metrics->bind(ep, ec);
    if (!ec) impl->metrics->listen(64, ec);
    if (ec)
      return fail("metrics_listen " + cfg->metrics_listen->host + ":" + std::to_string(cfg->metrics_listen->port) +
                  ": " + ec.message());
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

int Server::run() {
  Impl& m = *impl_;
  for (std::size_t i = 0; i < m.acceptors.size(); ++i)
    asio::co_spawn(*m.loops[m.acceptor_loop[i]], m.accept_loop(*m.acceptors[i]), asio::detached);
  std::vector<std::thread> threads;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& l : m.loops) {
    guards.push_back(asio::make_work_guard(*l));
    threads.emplace_back([&ctx = *l] { ctx.run(); });
  }
  asio::co_spawn(m.control, m.watch_files(), asio::detached);
  if (m.metrics) asio::co_spawn(m.control, m.serve_metrics(), asio::detached);
  asio::signal_set signals(m.control, SIGHUP, SIGTERM, SIGINT);
  std::function<void(const error_code&, int)> on_signal = [&](const error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      if (auto st = m.reload("SIGHUP"); !st)
        og::log::error("gk_reload_refused", {{"error", st.error().message}, {"detail", "old config keeps serving"}});
      signals.async_wait(on_signal);
      return;
    }
    og::log::info("gk_stopping", {{"signal", sig}, {"connections", m.shared.connections.load()}});
    for (std::size_t i = 0; i < m.acceptors.size(); ++i)
      asio::post(*m.loops[m.acceptor_loop[i]], [acc = m.acceptors[i].get()] {
        error_code e;
        acc->close(e);
      });
    m.control.stop();
  };
  signals.async_wait(on_signal);
  const auto& cfg = m.shared.gen.load()->set->config();
  og::log::info("gk_started",
                {{"workers", m.loops.size()}, {"listeners", cfg.listen.size()}, {"hosts", cfg.hosts.size()}});
  m.control.run();
  // Drain: established connections get up to 10 s to finish.
  for (int i = 0; i < 100 && m.shared.connections.load() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (auto& l : m.loops) l->stop();
  for (auto& t : threads) t.join();
  og::log::info("gk_stopped");
  return 0;
}

}  // namespace og::gk
