#include "upstream_pool.hpp"

namespace og::gk {

std::size_t UpstreamKeyHash::operator()(const UpstreamKey& k) const noexcept {
  std::size_t h = std::hash<std::string>()(k.host);
  auto mix = [&h](std::size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  mix(k.port);
  mix(std::hash<std::string>()(k.unix_path));
  mix(k.tls);
  mix(std::hash<std::string>()(k.ca));
  mix(std::hash<std::string>()(k.server_name));
  mix(std::hash<const void*>()(k.ctx));
  return h;
}

UpstreamKey upstream_key(const HostConfig& h, const void* upstream_ctx) {
  UpstreamKey k;
  k.host = h.upstream.host;
  k.port = h.upstream.port;
  k.unix_path = h.upstream.unix_path.string();
  k.tls = h.upstream_tls;
  if (h.upstream_tls) {
    k.ca = h.upstream_ca.string();
    k.server_name = h.upstream_server_name;
    k.ctx = upstream_ctx;
  }
  return k;
}

bool pooled(const HostConfig& h, const GatekeeperConfig& g) {
  return g.upstream_keepalive > 0 && h.mode == Mode::http && h.proxy_protocol == ProxyProtocol::off;
}

const char* to_string(Discard d) {
  switch (d) {
    case Discard::request_incomplete:
      return "request_incomplete";
    case Discard::response_incomplete:
      return "response_incomplete";
    case Discard::close_delimited:
      return "close_delimited";
    case Discard::upgrade:
      return "upgrade";
    case Discard::connection_close:
      return "connection_close";
    case Discard::extra_bytes:
      return "extra_bytes";
    case Discard::error:
      return "error";
    case Discard::pool_full:
      return "pool_full";
    case Discard::idle_timeout:
      return "idle_timeout";
    case Discard::upstream_closed:
      return "upstream_closed";
    case Discard::count_:
      break;
  }
  return "?";
}

std::optional<Discard> return_verdict(const ExchangeEnd& e) {
  if (!e.request_complete) return Discard::request_incomplete;
  if (e.upgrade) return Discard::upgrade;
  if (!e.response_complete) return Discard::response_incomplete;
  if (e.close_delimited) return Discard::close_delimited;
  if (!e.request_keep_alive || !e.response_keep_alive) return Discard::connection_close;
  if (e.extra_bytes > 0 || e.pending_input) return Discard::extra_bytes;
  return std::nullopt;
}

}  // namespace og::gk
