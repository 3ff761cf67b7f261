#include "server.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <map>
#include <sstream>
#include <thread>

#include "connection.hpp"
#include "originguard/control_server.hpp"
#include "originguard/log.hpp"
#include "tls_libctx.hpp"

namespace og::gk {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

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

enum class ListenKind {
  per_worker,  // one of several on the address: SO_REUSEPORT, IPv6 only on v6, backlog 4096
  single,      // the metrics listener: backlog 64
};

// SO_REUSEPORT as an asio settable socket option (asio has no public type for it; this is
// the SettableSocketOption interface its own options implement).
class ReusePort {
 public:
  explicit ReusePort(bool on) : value_(on ? 1 : 0) {}
  template <class Protocol>
  int level(const Protocol&) const {
    return SOL_SOCKET;
  }
  template <class Protocol>
  int name(const Protocol&) const {
    return SO_REUSEPORT;
  }
  template <class Protocol>
  const void* data(const Protocol&) const {
    return &value_;
  }
  template <class Protocol>
  std::size_t size(const Protocol&) const {
    return sizeof value_;
  }

 private:
  int value_;
};

error_code open_listener(tcp::acceptor& acc, const tcp::endpoint& ep, ListenKind kind) {
  error_code ec;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
  if (kind == ListenKind::per_worker) {
    if (!ec) acc.set_option(ReusePort(true), ec);
    if (!ec && ep.protocol() == tcp::v6()) acc.set_option(asio::ip::v6_only(true), ec);
  }
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(kind == ListenKind::per_worker ? 4096 : 64, ec);
  return ec;
}

std::string to_string(const tcp::endpoint& ep) {
  std::ostringstream o;
  o << ep;  // "127.0.0.1:443", "[::1]:443"
  return o.str();
}

// A listening socket handed over by systemd (socket activation).
struct PassedSocket {
  UniqueFd fd;
  std::string name;             // FileDescriptorName= of the .socket unit
  tcp::endpoint local;          // TCP: the ports to serve
  std::filesystem::path where;  // unix: the control socket
};

struct PassedSockets {
  std::vector<PassedSocket> tcp;
  std::optional<PassedSocket> control;
};

// sd_listen_fds(3): the sockets in LISTEN_FDS (for this PID): listening TCP sockets to serve,
// and at most one listening unix socket, the control socket. The environment variables are
// unset so that nothing we start inherits them.
Result<PassedSockets> systemd_sockets() {
  char** raw_names = nullptr;
  const int n = sd_listen_fds_with_names(1, &raw_names);
  if (n < 0) return fail("sd_listen_fds: " + std::string(std::strerror(-n)));
  std::vector<std::string> names;
  if (raw_names) {
    for (char** p = raw_names; *p; ++p) {
      names.emplace_back(*p);
      std::free(*p);
    }
    std::free(raw_names);
  }
  PassedSockets out;
  for (int i = 0; i < n; ++i) {
    PassedSocket s;
    s.fd.reset(SD_LISTEN_FDS_START + i);
    s.name = i < static_cast<int>(names.size()) ? names[static_cast<std::size_t>(i)] : "";
    const std::string what = "socket fd " + std::to_string(s.fd.get()) + (s.name.empty() ? "" : " (" + s.name + ")");
    if (sd_is_socket(s.fd.get(), AF_UNSPEC, SOCK_STREAM, 1) <= 0)
      return fail(what + " passed by systemd is not a listening stream socket");
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(s.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
      return fail_errno("getsockname " + what);
    if (ss.ss_family == AF_UNIX) {
      if (out.control) return fail(what + ": systemd passed more than one unix socket (one control socket at most)");
      const auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
      s.where = std::string(un->sun_path, strnlen(un->sun_path, sizeof un->sun_path));
      out.control = std::move(s);
      continue;
    }
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
      return fail(what + " passed by systemd is neither TCP nor a unix socket");
    std::memcpy(s.local.data(), &ss, len);
    s.local.resize(len);
    out.tcp.push_back(std::move(s));
  }
  return out;
}

// Closes an accepted connection with a reset (SO_LINGER 0): nothing is owed to it, and no
// TIME_WAIT is kept for it.
void refuse(tcp::socket& sock) {
  error_code ec;
  sock.set_option(asio::socket_base::linger(true, 0), ec);
  sock.close(ec);
}

// Tells systemd (Type=notify) about the service state; a no-op without $NOTIFY_SOCKET.
void notify(const std::string& state) { sd_notify(0, state.c_str()); }

void notify_reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(static_cast<unsigned long long>(ts.tv_sec) * 1'000'000ULL +
                                                         static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL));
}

}  // namespace

struct Server::Impl {
  std::filesystem::path config_file;
  Shared shared;
  HostStatsRegistry host_stats;  // per-host counters, kept across reloads
  std::vector<std::unique_ptr<asio::io_context>> loops;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;  // acceptors[i] runs on loops[i % n]
  std::vector<std::size_t> acceptor_loop;
  std::vector<Listener> listeners;
  asio::io_context control;
  std::map<std::filesystem::path, FileStamp> stamps;
  WallTime started_at = std::chrono::system_clock::now();
  WallTime loaded_at;
  std::optional<ReloadOutcome> last_reload;
  std::unique_ptr<ControlServer> control_server;  // after `control`: destroyed before it

  // Makes a built generation the one new handshakes use.
  void install(const GatekeeperConfig& cfg, std::shared_ptr<const PolicySet> set) {
    for (const auto& w : policy_warnings(*set)) og::log::warn("gk_policy_warning", {{"detail", w}});
    stamps = stamp_files(cfg);
    host_stats.retain_only(*set);
    shared.policy.store(std::move(set));
    loaded_at = std::chrono::system_clock::now();
  }

  // SIGHUP, the control socket's `reload` and changed files. A refused config is logged and
  // kept as last_reload; the generation in force keeps serving.
  Status reload(std::string_view why) {
    notify_reloading();
    auto st = [&]() -> Status {
      auto cfg = load_gatekeeper_config(config_file);
      if (!cfg) return fail(cfg.error());
      auto set = PolicySet::build(*cfg, host_stats);
      if (!set) return fail(set.error());
      const auto& old = shared.policy.load()->config();
      if (old.edge_ranges_file != cfg->edge_ranges_file || old.workers != cfg->workers ||
          old.control.socket != cfg->control.socket || old.control.group != cfg->control.group ||
          old.metrics_listen.has_value() != cfg->metrics_listen.has_value())
        og::log::warn("gk_reload_partial", {{"detail",
                                             "listen, workers, edge_ranges_file, metrics_listen, control_socket and "
                                             "control_group apply after a restart"}});
      install(*cfg, std::move(*set));
      og::log::info("gk_reloaded", {{"why", why}, {"hosts", cfg->hosts.size()}});
      return {};
    }();
    last_reload = ReloadOutcome{std::chrono::system_clock::now(), std::string(why), st.has_value(),
                                st ? std::string() : st.error().message};
    if (!st)
      og::log::error("gk_reload_refused",
                     {{"why", why}, {"error", st.error().message}, {"detail", "old config keeps serving"}});
    notify("READY=1");
    return st;
  }

  [[nodiscard]] ProcessFacts facts() const {
    ProcessFacts f;
    f.pid = static_cast<long>(::getpid());
    f.config_file = config_file.string();
    f.started_at = started_at;
    f.loaded_at = loaded_at;
    f.last_reload = last_reload;
    f.workers = loops.size();
    f.listeners = listeners;
    f.connections_active = shared.connections.load(std::memory_order_relaxed);
    f.refused_sni = shared.refused_sni.load(std::memory_order_relaxed);
    f.refused_overload = shared.refused_overload.load(std::memory_order_relaxed);
    f.refused_not_edge = shared.refused_not_edge.load(std::memory_order_relaxed);
    f.refused_source_limit = shared.refused_source_limit.load(std::memory_order_relaxed);
    f.handshake_errors = shared.handshake_errors.load(std::memory_order_relaxed);
    // Summed over workers whose adds and subtracts race: never shown below zero.
    f.upstream_idle = static_cast<std::uint64_t>(std::max<std::int64_t>(0, shared.upstream_pool.idle.load()));
    f.upstream_reuses = shared.upstream_pool.reuses.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < f.upstream_discards.size(); ++i)
      f.upstream_discards[i] = shared.upstream_pool.discards[i].load(std::memory_order_relaxed);
    return f;
  }

  // agentctl's commands (one JSON reply each), on the control thread.
  void handle_control(const ControlRequest& req, const ControlServer::Reply& reply) {
    if (req.cmd == "status") {
      auto j = status_json(*shared.policy.load(), facts(), std::chrono::system_clock::now());
      j["ok"] = true;
      reply(std::move(j));
    } else if (req.cmd == "reload") {
      if (auto st = reload("control"); !st) {
        reply({{"ok", false}, {"error", st.error().message}});
        return;
      }
      const auto& set = *shared.policy.load();
      reply({{"ok", true},
             {"config", config_file.string()},
             {"hosts", set.hosts().size()},
             {"warnings", policy_warnings(set)}});
    } else if (req.cmd == "metrics") {
      reply({{"ok", true}, {"text", metrics_text(*shared.policy.load(), facts())}});
    } else if (req.cmd == "version") {
      reply({{"ok", true}, {"version", OG_VERSION}});
    } else {
      reply({{"ok", false}, {"error", "unknown command \"" + req.cmd + "\" (status, reload, metrics, version)"}});
    }
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
      const auto policy = shared.policy.load();
      const auto& cfg = policy->config();
      auto place = ConnectionSlot::take(shared.connections, cfg.max_connections);
      if (!place) {
        shared.refused_overload.fetch_add(1, std::memory_order_relaxed);
        refuse(sock);
        continue;
      }
      // Sources outside the edge snapshot are judged before any TLS work: refused outright
      // when no host would serve them, else capped per source so that a few addresses cannot
      // fill max_connections with connections that never send a ClientHello.
      const auto peer = sock.remote_endpoint(ec);
      if (ec) {
        refuse(sock);
        continue;
      }
      const Address source = to_address(peer.address());
      auto edges = shared.edges->current();
      const bool edge = edges->contains(source);
      if (!edge && policy->every_host_requires_edge_ip()) {
        shared.refused_not_edge.fetch_add(1, std::memory_order_relaxed);
        refuse(sock);
        continue;
      }
      std::optional<SourceLimiter::Slot> slot;
      if (!edge && cfg.max_connections_per_source > 0) {
        slot = shared.sources.acquire(source, cfg.max_connections_per_source);
        if (!slot) {
          shared.refused_source_limit.fetch_add(1, std::memory_order_relaxed);
          refuse(sock);
          continue;
        }
      }
      asio::co_spawn(
          ex, serve_connection(std::move(sock), shared, std::move(edges), edge, std::move(*place), std::move(slot)),
          [](std::exception_ptr e) {
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
      std::string body = metrics_text(*shared.policy.load(), facts());
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
      auto now = stamp_files(shared.policy.load()->config());
      if (now != stamps) {
        stamps = now;  // a bad file is reported once per change, not every second
        (void)reload("files changed");
      }
    }
  }

  // Every worker gets its own acceptor on a dup() of each passed socket (they share the one
  // listening socket; the kernel wakes one waiting worker per connection).
  Status adopt_listeners(std::vector<PassedSocket> passed) {
    for (auto& p : passed) {
      for (std::size_t i = 0; i < loops.size(); ++i) {
        UniqueFd fd(::fcntl(p.fd.get(), F_DUPFD_CLOEXEC, 3));
        if (!fd.valid()) return fail_errno("dup of socket fd " + std::to_string(p.fd.get()));
        auto acc = std::make_unique<tcp::acceptor>(*loops[i]);
        error_code ec;
        acc->assign(p.local.protocol(), fd.get(), ec);
        if (ec) return fail("socket fd " + std::to_string(p.fd.get()) + ": " + ec.message());
        (void)fd.release();  // the acceptor owns it now
        acceptors.push_back(std::move(acc));
        acceptor_loop.push_back(i);
      }
      const int passed_fd = p.fd.get();
      p.fd.reset();  // each worker has its own dup
      og::log::info("gk_listen_adopted", {{"fd", passed_fd},
                                          {"address", to_string(p.local)},
                                          {"name", p.name},
                                          {"workers", loops.size()},
                                          {"from", "systemd socket activation"}});
      listeners.push_back({to_string(p.local), "systemd"});
    }
    return {};
  }

  // The control socket: the one systemd passed (ListenStream=/run/originguard/gatekeeper.sock,
  // which an unprivileged service could not create in /run/originguard), else control_socket.
  Status open_control(const GatekeeperConfig& cfg, std::optional<PassedSocket> passed) {
    auto handler = [this](const ControlRequest& req, const ControlServer::Reply& reply) { handle_control(req, reply); };
    // Every gatekeeper command is open to control_group: status, metrics and version read,
    // and reload (logged) only re-reads files the gatekeeper also re-reads by itself when
    // they change.
    auto access = [](std::string_view cmd) {
      return cmd == "reload" ? ControlAccess::group_change : ControlAccess::group;
    };
    if (cfg.control.socket.empty()) {
      if (passed) {
        passed->fd.reset();
        og::log::warn("gk_control_ignored", {{"socket", passed->where.string()}, {"detail", "control_socket = \"\""}});
      }
      return {};
    }
    if (passed) {
      ControlConfig c = cfg.control;
      c.socket = passed->where;
      control_server = std::make_unique<ControlServer>(control, c, handler, access);
      if (auto st = control_server->adopt(std::move(passed->fd)); !st)
        return fail("control socket: " + st.error().message);
      if (passed->where != cfg.control.socket)
        og::log::info("gk_control_socket_from_systemd",
                      {{"socket", passed->where.string()}, {"config", cfg.control.socket.string()}});
      return {};
    }
    control_server = std::make_unique<ControlServer>(control, cfg.control, handler, access);
    if (auto st = control_server->start(); !st) return fail("control_socket: " + st.error().message);
    return {};
  }

  // SO_REUSEPORT listeners, one per worker and address: the kernel spreads connections.
  Status bind_listeners(const GatekeeperConfig& cfg) {
    for (const auto& l : cfg.listen) {
      tcp::endpoint ep(asio::ip::make_address(l.host), l.port);
      for (std::size_t i = 0; i < loops.size(); ++i) {
        auto acc = std::make_unique<tcp::acceptor>(*loops[i]);
        if (error_code ec = open_listener(*acc, ep, ListenKind::per_worker))
          return fail("listen " + l.host + ":" + std::to_string(l.port) + ": " + ec.message());
        acceptors.push_back(std::move(acc));
        acceptor_loop.push_back(i);
      }
      listeners.push_back({to_string(ep), "config"});
    }
    return {};
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::create(std::filesystem::path config_file) {
  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  std::error_code fec;
  m.config_file = std::filesystem::absolute(config_file, fec);  // reloads do not depend on the cwd
  if (fec) m.config_file = std::move(config_file);
  auto cfg = load_gatekeeper_config(m.config_file);
  if (!cfg) return fail(cfg.error());
  auto set = PolicySet::build(*cfg, m.host_stats);
  if (!set) return fail(set.error());
  m.install(*cfg, std::move(*set));
  m.shared.edges = std::make_shared<EdgeRanges>(cfg->edge_ranges_file);
  m.shared.edges->poll();

  unsigned workers = cfg->workers ? cfg->workers : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < workers; ++i) m.loops.push_back(std::make_unique<asio::io_context>(1));
  auto passed = systemd_sockets();
  if (!passed) return fail(passed.error());
  if (!passed->tcp.empty()) {
    if (!cfg->listen.empty())
      og::log::info("gk_listen_ignored",
                    {{"detail", "sockets passed by systemd are used instead of [gatekeeper] listen"}});
    if (auto st = m.adopt_listeners(std::move(passed->tcp)); !st) return fail(st.error());
  } else if (cfg->listen.empty()) {
    return fail(cfg->path + ": [gatekeeper] listen is empty and systemd passed no socket (LISTEN_FDS)");
  } else if (auto st = m.bind_listeners(*cfg); !st) {
    return fail(st.error());
  }
  if (cfg->metrics_listen) {
    tcp::endpoint ep(asio::ip::make_address(cfg->metrics_listen->host), cfg->metrics_listen->port);
    m.metrics = std::make_unique<tcp::acceptor>(m.control);
    if (error_code ec = open_listener(*m.metrics, ep, ListenKind::single))
      return fail("metrics_listen " + cfg->metrics_listen->host + ":" + std::to_string(cfg->metrics_listen->port) +
                  ": " + ec.message());
  }
  if (auto st = m.open_control(*cfg, std::move(passed->control)); !st) return fail(st.error());
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
    threads.emplace_back([&ctx = *l] {
      const TlsLibctxScope view;  // session tickets are parsed in the thread's default context
      ctx.run();
    });
  }
  asio::co_spawn(m.control, m.watch_files(), asio::detached);
  if (m.metrics) asio::co_spawn(m.control, m.serve_metrics(), asio::detached);
  asio::signal_set signals(m.control, SIGHUP, SIGTERM, SIGINT);
  std::function<void(const error_code&, int)> on_signal = [&](const error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      (void)m.reload("SIGHUP");
      signals.async_wait(on_signal);
      return;
    }
    og::log::info("gk_stopping", {{"signal", sig}, {"connections", m.shared.connections.load()}});
    notify("STOPPING=1");
    if (m.control_server) m.control_server->stop();
    for (std::size_t i = 0; i < m.acceptors.size(); ++i)
      asio::post(*m.loops[m.acceptor_loop[i]], [acc = m.acceptors[i].get()] {
        error_code e;
        acc->close(e);
      });
    m.control.stop();
  };
  signals.async_wait(on_signal);
  const auto& cfg = m.shared.policy.load()->config();
  og::log::info("gk_started", {{"workers", m.loops.size()},
                               {"listeners", m.listeners.size()},
                               {"hosts", cfg.hosts.size()},
                               {"control_socket", cfg.control.socket.string()}});
  notify("READY=1\nSTATUS=" + std::to_string(cfg.hosts.size()) + " hosts on " + std::to_string(m.listeners.size()) +
         " listeners");
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
