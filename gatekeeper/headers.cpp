#include "headers.hpp"

#include <algorithm>
#include <array>
#include <boost/beast/core/string.hpp>
#include <vector>

namespace og::gk {

namespace http = boost::beast::http;

namespace {

char fold(char c) {
  if (c >= 'A' && c <= 'Z') return static_cast<char>(c - 'A' + 'a');
  if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return c;
  return '-';
}

bool alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool starts_with_folded(std::string_view name, std::string_view prefix) {
  return name.size() >= prefix.size() && name_is(name.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Comma-separated list elements, trimmed, empty ones skipped (RFC 9110 §5.6.1).
template <class F>
void for_each_element(std::string_view v, F&& f) {
  while (!v.empty()) {
    const auto comma = v.find(',');
    if (auto e = trim(v.substr(0, comma)); !e.empty()) f(e);
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
}

bool has_token(std::string_view list, std::string_view token) {
  bool found = false;
  for_each_element(list, [&](std::string_view e) { found = found || boost::beast::iequals(e, token); });
  return found;
}

// RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ':'. Its length, or 0.
std::size_t scheme_length(std::string_view target) {
  if (target.empty() || !alpha(target[0])) return 0;
  for (std::size_t i = 1; i < target.size(); ++i) {
    const char c = target[i];
    if (c == ':') return i;
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.') return 0;
  }
  return 0;
}

constexpr std::array<std::string_view, 7> kHopByHop = {"connection", "proxy-connection", "keep-alive",    "te",
                                                       "trailer",    "upgrade",          "http2-settings"};
constexpr std::array<std::string_view, 3> kIdentity = {"x-client-verify", "x-client-cert-sha256", "x-client-subject"};
// What a Connection token may never remove: the framing the gatekeeper checked and forwards.
constexpr std::array<std::string_view, 3> kFraming = {"host", "content-length", "transfer-encoding"};
// Set by the edge (Cloudflare, or a proxy in front) about the client: believed from a verified
// edge only. Prefixes end in '-'.
constexpr std::array<std::string_view, 2> kEdgePrefixes = {"cf-", "x-forwarded-"};
// Also the other client-address headers that IP-detection code reads (PHP's HTTP_CLIENT_IP).
constexpr std::array<std::string_view, 12> kEdgeNames = {
    "forwarded",        "forwarded-for", "x-forwarded",         "true-client-ip",
    "x-real-ip",        "x-client-ip",   "x-cluster-client-ip", "client-ip",
    "x-originating-ip", "x-remote-ip",   "x-remote-addr",       "x-original-forwarded-for"};

template <std::size_t N>
bool any_name(std::string_view name, const std::array<std::string_view, N>& set) {
  return std::any_of(set.begin(), set.end(), [&](std::string_view c) { return name_is(name, c); });
}

}  // namespace

bool name_is(std::string_view name, std::string_view canonical) {
  return name.size() == canonical.size() &&
         std::equal(name.begin(), name.end(), canonical.begin(), [](char a, char b) { return fold(a) == b; });
}

HostCheck check_host(const HostTable& table, std::size_t policy, http::verb method, std::string_view host_header,
                     std::string_view target) {
  auto belongs = [&](std::string_view authority) {
    auto name = host_header_name(authority);
    if (!name) return HostCheck::malformed;
    auto norm = normalize_host(*name);
    if (!norm) return HostCheck::malformed;
    auto idx = table.find(*norm);
    return idx && *idx == policy ? HostCheck::ok : HostCheck::misdirected;
  };
  // A tunnel to anywhere: nothing an origin behind the gatekeeper serves.
  if (method == http::verb::connect) return HostCheck::unsupported_method;
  // A request target has no fragment (RFC 9112 §3.2); parsers disagree on where one ends.
  if (target.find('#') != std::string_view::npos) return HostCheck::bad_target;
  if (target == "*") {
    if (method != http::verb::options) return HostCheck::bad_target;
  } else if (!target.starts_with("/")) {
    // Absolute form (RFC 9112 §3.2.2): the authority in the target is what routes the request,
    // for nginx whatever the scheme (foo://, ws://, h2://), so every scheme is checked.
    const std::size_t n = scheme_length(target);
    if (n == 0 || target.substr(n, 3) != "://") return HostCheck::bad_target;
    auto rest = target.substr(n + 3);
    auto authority = rest.substr(0, rest.find_first_of("/?"));
    // Userinfo is refused wherever a parser might end the authority ("a.test?@b.test",
    // "a.test\@b.test"): no '@' before the path.
    if (rest.substr(0, rest.find('/')).find('@') != std::string_view::npos) return HostCheck::malformed;
    if (auto r = belongs(authority); r != HostCheck::ok) return r;
    const auto scheme = target.substr(0, n);
    if (!boost::beast::iequals(scheme, "http") && !boost::beast::iequals(scheme, "https")) return HostCheck::bad_target;
  }
  if (host_header.empty()) return HostCheck::missing;
  return belongs(host_header);
}

unsigned check_request_framing(const http::request_header<>& h) {
  if (h.count(http::field::host) > 1) return 400;
  // Beast knows the exact spellings (in any case) as field::content_length etc.; another
  // spelling of the same folded name is a second, conflicting framing header.
  for (const auto& field : h)
    if (field.name() == http::field::unknown &&
        (name_is(field.name_string(), "content-length") || name_is(field.name_string(), "transfer-encoding")))
      return 400;
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
  return boost::beast::iequals(trim(h[http::field::transfer_encoding]), "chunked") ? 0 : 501;
}

bool is_websocket_upgrade(const http::request_header<>& h) {
  if (h.method() != http::verb::get || h.version() != 11) return false;
  if (h.count(http::field::upgrade) != 1 || !boost::beast::iequals(trim(h[http::field::upgrade]), "websocket"))
    return false;
  bool upgrade_token = false;
  for (const auto& field : h)
    if (field.name() == http::field::connection) upgrade_token = upgrade_token || has_token(field.value(), "upgrade");
  if (!upgrade_token) return false;
  if (h.count(http::field::transfer_encoding) != 0) return false;
  const auto cl = h[http::field::content_length];
  return cl.empty() || cl == "0";
}

bool accepts_websocket(const http::response_header<>& h) {
  return h.result_int() == 101 && h.count(http::field::upgrade) == 1 &&
         boost::beast::iequals(trim(h[http::field::upgrade]), "websocket");
}

void rewrite_request_headers(http::fields& f, const ClientIdentity& id, const ForwardAs& how) {
  // The Connection tokens, copied: their fields are erased below.
  std::vector<std::string> named;
  for (const auto& field : f)
    if (name_is(field.name_string(), "connection"))
      for_each_element(field.value(), [&](std::string_view e) { named.emplace_back(e); });
  auto drop = [&](std::string_view name) {
    if (any_name(name, kHopByHop) || any_name(name, kIdentity) || name_is(name, "x-forwarded-host")) return true;
    if (how.http10 && name_is(name, "expect")) return true;
    if (!any_name(name, kFraming))
      for (const auto& token : named) {
        // The token is folded like a name: "X_Custom" names X-Custom, as an upstream would read it.
        if (token.size() == name.size() &&
            std::equal(token.begin(), token.end(), name.begin(), [](char a, char b) { return fold(a) == fold(b); }))
          return true;
      }
    if (!id.trusted_edge &&
        (any_name(name, kEdgeNames) ||
         std::any_of(kEdgePrefixes.begin(), kEdgePrefixes.end(), [&](auto p) { return starts_with_folded(name, p); })))
      return true;
    return false;
  };
  for (auto it = f.begin(); it != f.end();) {
    if (drop(it->name_string()))
      it = f.erase(it);
    else
      ++it;
  }
  if (how.websocket) {
    f.insert(http::field::connection, "upgrade");
    f.insert(http::field::upgrade, "websocket");
  } else if (how.http10 && how.keep_alive) {
    f.insert(http::field::connection, "keep-alive");
  } else if (!how.http10 && !how.keep_alive) {
    f.insert(http::field::connection, "close");
  }
  f.insert(kHeaderVerify, id.verify);
  f.insert(kHeaderCertSha256, id.cert_sha256);
  f.insert(kHeaderSubject, id.subject);
}

}  // namespace og::gk
