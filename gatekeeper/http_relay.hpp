// http mode: a connection's requests, one after the other, each parsed (header bounded), judged
// again after a reload (revalidate), checked (framing, Host against the SNI, target, method),
// its headers rewritten, and exchanged with the host's upstream (http_exchange.hpp) on a
// connection of its own or one from the worker's pool (upstream_io.hpp). Instantiated in
// http_relay.cpp for the three upstream types: TlsStream, TcpUp, UnixUp.
#pragma once

#include "session.hpp"

namespace og::gk::connection {

// Serves requests while the client has some; true when it went idle (keep the session).
template <class Up>
awaitable<bool> run_http(Session& s);

}  // namespace og::gk::connection
