#include "headers.hpp"

#include <algorithm>
#include <boost/beast/core/string.hpp>

namespace og::gk {

HostCheck check_host(const HostTable& table, std::size_t policy, std::string_view host_header,
                     std::string_view target) {
  auto belongs = [&](std::string_view authority) {
    auto name = host_header_name(authority);
    if (!name) return HostCheck::malformed;
    auto norm = normalize_host(*name);
    if (!norm) return HostCheck::malformed;
    auto idx = table.find(*norm);
    return idx && *idx == policy ? HostCheck::ok : HostCheck::misdirected;
  };
  // Absolute form (RFC 9112 §3.2.2): the authority in the target is what routes the request.
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() > scheme.size() && std::equal(scheme.begin(), scheme.end(), target.begin(), [](char a, char b) {
          return a == std::tolower(static_cast<unsigned char>(b));
        })) {
      auto rest = target.substr(scheme.size());
      auto end = rest.find_first_of("/?#");
      auto authority = rest.substr(0, end);
      if (authority.find('@') != std::string_view::npos) return HostCheck::malformed;
      if (auto r = belongs(authority); r != HostCheck::ok) return r;
      break;
    }
  }
  if (host_header.empty()) return HostCheck::missing;
  return belongs(host_header);
}

unsigned check_request_framing(const boost::beast::http::request_header<>& h) {
  namespace http = boost::beast::http;
  if (h.count(http::field::host) > 1) return 400;
  const auto cl = h.count(http::field::content_length);
  if (cl > 1) return 400;
  if (cl == 1) {
    const auto v = h[http::field::content_length];
    if (v.empty() || v.size() > 19 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return 400;
  }
  const auto te = h.count(http::field::transfer_encoding);
  if (te == 0) return 0;
  if (h.version() < 11 || cl != 0 || te > 1) return 400;
  std::string_view v = h[http::field::transfer_encoding];
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return boost::beast::iequals(v, "chunked") ? 0 : 501;
}

void rewrite_request_headers(boost::beast::http::fields& f, const ClientIdentity& id) {
  for (std::string_view h : {kHeaderVerify, kHeaderCertSha256, kHeaderSubject}) f.erase(h);
  if (!id.trusted_edge)
    for (std::string_view h :
         {"CF-Connecting-IP", "X-Forwarded-For", "True-Client-IP", "CF-Connecting-IPv6", "X-Real-IP", "Forwarded"})
      f.erase(h);
  f.set(kHeaderVerify, id.verify);
  if (!id.cert_sha256.empty()) f.set(kHeaderCertSha256, id.cert_sha256);
  if (!id.subject.empty()) f.set(kHeaderSubject, id.subject);
}

}  // namespace og::gk
