// libFuzzer: the request rules of http mode on untrusted input, with oracles written apart
// from the code under test. Link with og_gk_core.
// Input: "<method byte><host>\n<target>\n<name: value>\n<name: value>...".
//  - check_host: ok only for origin-form, OPTIONS *, or http(s)://authority whose authority
//    (no '@' before the path) and Host both map to the SNI's policy, also as nginx reads them
//    (nginx_name); never ok for CONNECT or a target with a fragment.
//  - rewrite_request_headers: the identity headers appear exactly once each, with the
//    gatekeeper's values; no hop-by-hop, X-Forwarded-Host or (anonymous peer) edge header in
//    any spelling survives; Connection is only the gatekeeper's own; what a Connection token
//    named is gone, framing fields are never removed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "headers.hpp"

namespace http = boost::beast::http;

namespace {

std::string folded(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c >= 'A' && c <= 'Z')
      out += static_cast<char>(c - 'A' + 'a');
    else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
      out += c;
    else
      out += '-';
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// The reference: which policy a Host-like authority maps to, 0, 1 or none (-1).
int policy_of(std::string_view authority) {
  auto name = og::gk::host_header_name(authority);
  if (!name) return -1;
  auto norm = og::gk::normalize_host(*name);
  if (!norm) return -1;
  if (*norm == "a.test") return 0;
  if (norm->size() > 7 && norm->ends_with(".b.test") && norm->find('.') == norm->size() - 7) return 1;
  return -1;
}

// How nginx reads a Host or absolute-form authority to pick a server (ngx_http_validate_host):
// an IP-literal whole, brackets included; else the name before any ':'; one trailing dot
// dropped; lower case. Written apart from host_header_name.
std::string nginx_name(std::string_view authority) {
  std::string_view name = authority;
  if (name.starts_with("[")) {
    name = name.substr(0, name.find(']') == std::string_view::npos ? name.size() : name.find(']') + 1);
  } else {
    name = name.substr(0, name.find(':'));
    if (name.ends_with(".")) name.remove_suffix(1);
  }
  return lower(name);
}

void check_target(http::verb method, std::string_view host, std::string_view target) {
  og::gk::HostTable t;
  t.add("a.test", 0);
  t.add("*.b.test", 1);
  const auto r = og::gk::check_host(t, 0, method, host, target);
  if (r != og::gk::HostCheck::ok) return;
  FUZZ_CHECK(method != http::verb::connect);
  FUZZ_CHECK(target.find('#') == std::string_view::npos);
  FUZZ_CHECK(policy_of(host) == 0);
  FUZZ_CHECK(nginx_name(host) == "a.test");
  if (target.starts_with("/")) return;
  if (target == "*") {
    FUZZ_CHECK(method == http::verb::options);
    return;
  }
  const std::string l = lower(target);
  const std::size_t skip = l.starts_with("http://") ? 7 : l.starts_with("https://") ? 8 : 0;
  FUZZ_CHECK(skip != 0);
  const auto rest = target.substr(skip);
  const auto authority = rest.substr(0, rest.find_first_of("/?#"));
  FUZZ_CHECK(rest.substr(0, rest.find('/')).find('@') == std::string_view::npos);
  FUZZ_CHECK(policy_of(authority) == 0);
  FUZZ_CHECK(nginx_name(authority) == "a.test");
}

bool is_one_of(const std::string& f, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), f) != names.end();
}

void check_rewrite(std::string_view lines, bool http10, bool keep_alive, bool websocket) {
  http::fields f;
  std::vector<std::string> tokens;
  std::size_t framing_in = 0;
  while (!lines.empty()) {
    auto nl = lines.find('\n');
    auto line = lines.substr(0, nl);
    lines = nl == std::string_view::npos ? std::string_view{} : lines.substr(nl + 1);
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    const auto name = line.substr(0, colon), value = line.substr(colon + 1);
    // Beast's parser only hands over token names and values without CR/LF/NUL.
    if (!std::all_of(name.begin(), name.end(), [](char c) {
          return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
        }))
      continue;
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) continue;
    f.insert(name, value);
    const std::string fn = folded(name);
    if (is_one_of(lower(name), {"host", "content-length", "transfer-encoding"})) ++framing_in;
    if (fn == "connection") {
      std::string_view v = value;
      while (!v.empty()) {
        auto comma = v.find(',');
        auto e = v.substr(0, comma);
        while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
        while (!e.empty() && (e.back() == ' ' || e.back() == '\t')) e.remove_suffix(1);
        if (!e.empty()) tokens.push_back(folded(e));
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
      }
    }
  }
  const og::gk::ClientIdentity id{"NONE", "", "", false};
  og::gk::rewrite_request_headers(f, id, {http10, keep_alive, websocket});
  int verify = 0, sha = 0, subject = 0;
  std::size_t framing_out = 0;
  for (const auto& field : f) {
    const std::string fn = folded(field.name_string());
    if (is_one_of(lower(field.name_string()), {"host", "content-length", "transfer-encoding"})) ++framing_out;
    if (fn == "x-client-verify") {
      ++verify;
      FUZZ_CHECK(field.name_string() == og::gk::kHeaderVerify && field.value() == "NONE");
    } else if (fn == "x-client-cert-sha256") {
      ++sha;
      FUZZ_CHECK(field.name_string() == og::gk::kHeaderCertSha256 && field.value().empty());
    } else if (fn == "x-client-subject") {
      ++subject;
      FUZZ_CHECK(field.name_string() == og::gk::kHeaderSubject && field.value().empty());
    } else if (fn == "connection") {
      FUZZ_CHECK(field.value() == (websocket ? "upgrade" : http10 ? "keep-alive" : "close"));
    } else if (fn == "upgrade") {
      FUZZ_CHECK(websocket && field.value() == "websocket");
    } else {
      FUZZ_CHECK(!is_one_of(
          fn, {"keep-alive", "proxy-connection", "te", "trailer", "http2-settings", "x-forwarded-host", "forwarded",
               "true-client-ip", "x-real-ip", "x-client-ip", "x-cluster-client-ip", "x-forwarded", "forwarded-for",
               "client-ip", "x-originating-ip", "x-remote-ip", "x-remote-addr", "x-original-forwarded-for"}));
      FUZZ_CHECK(!fn.starts_with("cf-") && !fn.starts_with("x-forwarded-"));
      FUZZ_CHECK(!(http10 && fn == "expect"));
      if (!is_one_of(fn, {"host", "content-length", "transfer-encoding"}))
        FUZZ_CHECK(std::find(tokens.begin(), tokens.end(), fn) == tokens.end());
    }
  }
  FUZZ_CHECK(verify == 1 && sha == 1 && subject == 1);
  FUZZ_CHECK(framing_out == framing_in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t ctl = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  static constexpr http::verb kMethods[] = {http::verb::get, http::verb::options, http::verb::connect,
                                            http::verb::post};
  const http::verb method = kMethods[ctl & 3];
  auto nl = in.find('\n');
  std::string_view host = in.substr(0, nl);
  std::string_view rest = nl == std::string_view::npos ? "" : in.substr(nl + 1);
  auto nl2 = rest.find('\n');
  std::string_view target = rest.substr(0, nl2);
  std::string_view fields = nl2 == std::string_view::npos ? "" : rest.substr(nl2 + 1);
  check_target(method, host, target);
  check_rewrite(fields, ctl & 4, ctl & 8, ctl & 16);
  return 0;
}
