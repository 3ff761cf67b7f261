// Request rules of http mode (an attacker chooses every byte): the request target's form and
// authority and the Host must belong to the SNI's host policy; header names are compared
// normalised, the way CGI/WSGI/PHP upstreams fold them; hop-by-hop headers, and the headers a
// Connection field names, stop here; forwarded-client headers are only believed from a
// verified edge; the verified identity is passed upstream in headers nobody else can set.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <cstddef>
#include <string>
#include <string_view>

#include "host_match.hpp"

namespace og::gk {

enum class HostCheck {
  ok,
  missing,             // no Host → 400
  malformed,           // Host or target authority unparsable, userinfo → 400
  misdirected,         // Host or target authority of another policy → 421
  bad_target,          // a target form an origin server is never sent → 400
  unsupported_method,  // CONNECT → 501
};

// Target forms (RFC 9112 §3.2): origin-form ("/..."); asterisk-form ("*") for OPTIONS only;
// absolute-form ("scheme://authority...", any scheme, case-insensitive), whose authority is
// checked like the Host, then refused unless the scheme is http or https; authority-form
// (CONNECT), a fragment ('#'), userinfo ('@' before the path) and anything else refused. `host_header` empty means
// absent. `policy` is the index of the SNI's host policy.
[[nodiscard]] HostCheck check_host(const HostTable& table, std::size_t policy, boost::beast::http::verb method,
                                   std::string_view host_header, std::string_view target);

// Header-name comparison as the most permissive upstream does it: ASCII case-insensitive, and
// every character other than a letter or digit equal to '-' (CGI maps '-' to '_'; PHP also
// '.' and ' '). `canonical` is lower-case with '-'.
[[nodiscard]] bool name_is(std::string_view name, std::string_view canonical);

struct ClientIdentity {
  std::string verify;         // "SUCCESS" | "FAILED" | "NONE"
  std::string cert_sha256;    // hex, empty without a certificate
  std::string subject;        // RFC 2253, empty without a certificate
  bool trusted_edge = false;  // keep CF-*, X-Forwarded-* (but -Host), Forwarded, client-IP headers
};

inline constexpr std::string_view kHeaderVerify = "X-Client-Verify";
inline constexpr std::string_view kHeaderCertSha256 = "X-Client-Cert-SHA256";
inline constexpr std::string_view kHeaderSubject = "X-Client-Subject";

// Framing rules stricter than the parser's, so that any upstream delimits the request exactly
// as the gatekeeper did (no smuggling): one Host; at most one Content-Length, digits only;
// Transfer-Encoding only on HTTP/1.1, never with Content-Length, and only "chunked"; no other
// spelling of Content-Length or Transfer-Encoding (Content_Length) that an upstream could fold
// into the real one. Returns 0 when acceptable, else the status to answer (400, or 501 for
// another coding).
[[nodiscard]] unsigned check_request_framing(const boost::beast::http::request_header<>& h);

// A WebSocket opening handshake the gatekeeper relays (RFC 6455 §4.1): GET on HTTP/1.1,
// `Upgrade: websocket` alone, `upgrade` among the Connection tokens, no body. Any other
// upgrade (h2c, TLS, a list of protocols) is not relayed: its headers are removed.
[[nodiscard]] bool is_websocket_upgrade(const boost::beast::http::request_header<>& h);
// The upstream's 101 switches to what was asked: `Upgrade: websocket`.
[[nodiscard]] bool accepts_websocket(const boost::beast::http::response_header<>& h);

// How the rewritten request goes upstream.
struct ForwardAs {
  bool http10 = false;     // an HTTP/1.0 request (forwarded as 1.0)
  bool keep_alive = true;  // the client's wish, as its Connection field and version say
  bool websocket = false;  // is_websocket_upgrade(): Upgrade and Connection: upgrade are sent
};

// Removes, whatever the spelling: the hop-by-hop fields (Connection, Keep-Alive,
// Proxy-Connection, TE, Trailer, Upgrade, HTTP2-Settings) and every field a Connection token
// names (never Host, Content-Length or Transfer-Encoding: the framing already checked);
// X-Forwarded-Host (a second Host that only the Host check may decide); Expect on HTTP/1.0
// (RFC 9110 §10.1.1); the identity headers; and, unless `id.trusted_edge`, the headers only
// the edge may set (CF-*, X-Forwarded-*, X-Forwarded, Forwarded, Forwarded-For, True-Client-IP,
// X-Real-IP, X-Client-IP, X-Cluster-Client-IP, Client-IP, X-Originating-IP, X-Remote-IP,
// X-Remote-Addr, X-Original-Forwarded-For). Then adds the gatekeeper's own Connection (only
// close, keep-alive or upgrade), Upgrade: websocket when relayed, and all three identity
// headers (empty values without a certificate).
void rewrite_request_headers(boost::beast::http::fields& f, const ClientIdentity& id, const ForwardAs& how);

}  // namespace og::gk
