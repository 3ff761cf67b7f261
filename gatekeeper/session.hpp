// What one accepted connection keeps while it lives (Session) and the facts it passes to its
// upstream (ConnFacts: the identity headers' values, the PROXY header, the pool key), with
// the policy outcome functions that fill them in, defined beside the handshake in
// connection.cpp: init_facts after the handshake, revalidate when a reload or a new edge
// snapshot meets the connection at its next request. Internal to the connection code
// (namespace og::gk::connection); connection.hpp is the server's interface.
#pragma once

// Before any Boost header: boost 1.74's awaitable.hpp uses std::exchange without including it.
#include <utility>

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "connection.hpp"
#include "headers.hpp"
#include "stream.hpp"
#include "tls_policy.hpp"
#include "upstream_pool.hpp"

namespace og::gk::connection {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using unix_proto = asio::local::stream_protocol;
using asio::awaitable;

// Connection counter held for a connection's lifetime.
template <class N>
struct Slot {
  explicit Slot(std::atomic<N>& n) : n_(n) { n_.fetch_add(1, std::memory_order_relaxed); }
  ~Slot() { n_.fetch_sub(1, std::memory_order_relaxed); }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  std::atomic<N>& n_;
};

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

class WorkerPools;

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

// The identity and PROXY header a connection passes upstream, under `host` of a generation
// (after the handshake, and again when a reload moves the connection to a new generation).
void init_facts(ConnFacts& f, const HostPolicy& host, const GatekeeperConfig& cfg, VerifyState verify,
                bool peer_is_edge, SSL* ssl, const Session& s);

// Judges an established connection again under the current generation and edge snapshot
// (connection.cpp); "" when it still qualifies. `Up`: the upstream type its requests use.
template <class Up>
[[nodiscard]] std::string revalidate(Session& s, bool& moved);

}  // namespace og::gk::connection
