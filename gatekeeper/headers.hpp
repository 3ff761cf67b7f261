// Request rules of http mode: the Host (and absolute-form authority) must belong to the
// SNI's host policy, forwarded-client headers are only believed from a verified edge, and
// the verified identity is passed upstream in headers nobody else can set.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <cstddef>
#include <string>
#include <string_view>

#include "host_match.hpp"

namespace og::gk {

enum class HostCheck { ok, missing, malformed, misdirected };

// `host_header` empty means absent. `policy` is the index of the SNI's host policy.
[[nodiscard]] HostCheck check_host(const HostTable& table, std::size_t policy, std::string_view host_header,
                                   std::string_view target);

struct ClientIdentity {
  std::string verify;         // "SUCCESS" | "FAILED" | "NONE"
  std::string cert_sha256;    // hex, empty without a certificate
  std::string subject;        // RFC 2253
  bool trusted_edge = false;  // keep CF-Connecting-IP / X-Forwarded-For / True-Client-IP
};

inline constexpr std::string_view kHeaderVerify = "X-Client-Verify";
inline constexpr std::string_view kHeaderCertSha256 = "X-Client-Cert-SHA256";
inline constexpr std::string_view kHeaderSubject = "X-Client-Subject";

// Framing rules stricter than the parser's, so that any upstream delimits the request exactly
// as the gatekeeper did (no smuggling): one Host; at most one Content-Length, digits only;
// Transfer-Encoding only on HTTP/1.1, never with Content-Length, and only "chunked".
// Returns 0 when acceptable, else the status to answer (400, or 501 for another coding).
[[nodiscard]] unsigned check_request_framing(const boost::beast::http::request_header<>& h);

void rewrite_request_headers(boost::beast::http::fields& f, const ClientIdentity& id);

}  // namespace og::gk
