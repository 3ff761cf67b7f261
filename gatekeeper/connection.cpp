// Handshake and policy outcome: an accepted connection's TLS handshake on the current policy
// generation, its admission (or the host's failure mode), the facts it passes upstream
// (init_facts), its judgement again after a reload (revalidate), and the hand-off to tcp mode
// (run_tcp: connect and splice, upstream_io.hpp) or http mode (a Session waiting between
// requests without a coroutine frame, run_http: http_relay.hpp).
#include "connection.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ssl/error.hpp>
#include <optional>

#include "http_exchange.hpp"
#include "http_relay.hpp"
#include "originguard/log.hpp"
#include "proxy_protocol.hpp"
#include "session.hpp"
#include "upstream_io.hpp"

namespace og::gk {

namespace connection {

namespace {

std::string peer_string(const tcp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

template <class Up>
awaitable<void> run_tcp(Session& s) {
  std::unique_ptr<Up> up;
  ExpiryScope<Up> scope(s.dl, s.tls, up);
  if (co_await connect_upstream(up, s.f, s.dl)) co_return;
  co_await splice(s.tls, *up, s.dl, s.f.cfg->idle_timeout, s.end_of_life());
  up->close();
}

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

template <class Up>
bool upstream_kind_is(const HostPolicy& h) {
  if constexpr (std::is_same_v<Up, TlsStream>)
    return h.upstream_ctx != nullptr;
  else if constexpr (std::is_same_v<Up, UnixUp>)
    return !h.upstream_ctx && !h.cfg.upstream.unix_path.empty();
  else
    return !h.upstream_ctx && h.cfg.upstream.unix_path.empty();
}

}  // namespace

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

template std::string revalidate<TlsStream>(Session& s, bool& moved);
template std::string revalidate<TcpUp>(Session& s, bool& moved);
template std::string revalidate<UnixUp>(Session& s, bool& moved);

namespace {

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

}  // namespace connection

using namespace connection;  // serve_connection is the entry into the connection code

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
