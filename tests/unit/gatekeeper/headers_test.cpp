#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "headers.hpp"

using namespace og::gk;
namespace http = boost::beast::http;

namespace {
HostTable table() {
  HostTable t;
  t.add("a.test", 0);
  t.add("*.a.test", 0);
  t.add("b.test", 1);
  return t;
}
}  // namespace

constexpr auto kGet = http::verb::get;

TEST(GkHostCheck, HostMustBelongToTheSniPolicy) {
  auto t = table();
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "/"), HostCheck::ok);
  EXPECT_EQ(check_host(t, 0, kGet, "A.Test:443", "/"), HostCheck::ok);
  EXPECT_EQ(check_host(t, 0, kGet, "www.a.test", "/"), HostCheck::ok);
  EXPECT_EQ(check_host(t, 0, kGet, "b.test", "/"), HostCheck::misdirected);
  EXPECT_EQ(check_host(t, 0, kGet, "unknown.test", "/"), HostCheck::misdirected);
  EXPECT_EQ(check_host(t, 0, kGet, "", "/"), HostCheck::missing);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test:x", "/"), HostCheck::malformed);
  // A bracketed name is no IP-literal: nginx routes it to its default server.
  EXPECT_EQ(check_host(t, 0, kGet, "[a.test]", "/"), HostCheck::malformed);
  EXPECT_EQ(check_host(t, 0, kGet, "[a.test]:443", "/"), HostCheck::malformed);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "http://[a.test]/"), HostCheck::malformed);
}

TEST(GkHostCheck, AbsoluteFormAuthorityIsChecked) {
  auto t = table();
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "https://b.test/x"), HostCheck::misdirected);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "HTTP://a.test/x"), HostCheck::ok);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "https://a.test@b.test/"), HostCheck::malformed);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "http://a.test"), HostCheck::ok);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "http://a.test:8443?q"), HostCheck::ok);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "http://b.test?x"), HostCheck::misdirected);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "http:///x"), HostCheck::malformed);
  // The Host is checked too, whatever the target says.
  EXPECT_EQ(check_host(t, 0, kGet, "b.test", "http://a.test/"), HostCheck::misdirected);
}

// nginx routes `foo://b.test/` (ws://, h2://, any scheme) to b.test's vhost: every scheme's
// authority is checked, then only http and https are accepted.
TEST(GkHostCheck, EveryAbsoluteFormSchemeIsCheckedCaseInsensitively) {
  auto t = table();
  for (const char* scheme : {"foo", "ws", "wss", "h2", "h2c", "HtTp", "HTTPS", "git+ssh", "a.b-c", "x1"}) {
    const std::string target = std::string(scheme) + "://b.test/";
    EXPECT_EQ(check_host(t, 0, kGet, "a.test", target), HostCheck::misdirected) << target;
  }
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "foo://a.test/"), HostCheck::bad_target);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "ws://a.test/"), HostCheck::bad_target);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "HtTpS://a.test/"), HostCheck::ok);
}

TEST(GkHostCheck, FormsAnOriginIsNeverSentAreRefused) {
  auto t = table();
  // absolute-URI without an authority, authority-form, nothing at all, a bad scheme
  for (const char* target : {"http:b.test/", "http:/b.test/", "urn:x", "b.test:443", "a.test:443", "b.test/x", "a.test",
                             "?x", "1http://a.test/", "+x://a.test/", "http//a.test/", ""}) {
    EXPECT_EQ(check_host(t, 0, kGet, "a.test", target), HostCheck::bad_target) << target;
  }
  // No fragment in a request target; no '@' before the path wherever an authority might end.
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "/x#y"), HostCheck::bad_target);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "http://a.test#@b.test/"), HostCheck::bad_target);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "http://a.test?@b.test/"), HostCheck::malformed);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "http://a.test\\@b.test/"), HostCheck::malformed);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "http://a.test/x@y"), HostCheck::ok);
  // "//b.test/" is an origin-form path; the Host decides.
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "//b.test/"), HostCheck::ok);
}

TEST(GkHostCheck, ConnectAndAsteriskForm) {
  auto t = table();
  EXPECT_EQ(check_host(t, 0, http::verb::connect, "b.test:443", "b.test:443"), HostCheck::unsupported_method);
  EXPECT_EQ(check_host(t, 0, http::verb::connect, "a.test:443", "a.test:443"), HostCheck::unsupported_method);
  EXPECT_EQ(check_host(t, 0, http::verb::options, "a.test", "*"), HostCheck::ok);
  EXPECT_EQ(check_host(t, 0, http::verb::options, "b.test", "*"), HostCheck::misdirected);
  EXPECT_EQ(check_host(t, 0, kGet, "a.test", "*"), HostCheck::bad_target);
  EXPECT_EQ(check_host(t, 0, http::verb::post, "a.test", "*"), HostCheck::bad_target);
}

TEST(GkHeaderNames, ComparedFoldedLikeCgi) {
  EXPECT_TRUE(name_is("X-Client-Verify", "x-client-verify"));
  EXPECT_TRUE(name_is("X_Client_Verify", "x-client-verify"));
  EXPECT_TRUE(name_is("x.client.verify", "x-client-verify"));
  EXPECT_TRUE(name_is("X_CLIENT-verify", "x-client-verify"));
  EXPECT_FALSE(name_is("X-Client-Verify2", "x-client-verify"));
  EXPECT_FALSE(name_is("XClientVerify", "x-client-verify"));
  EXPECT_FALSE(name_is("", "x"));
}

namespace {
using Pairs = std::vector<std::pair<std::string, std::string>>;
Pairs rewrite(std::initializer_list<std::pair<const char*, const char*>> in, ClientIdentity id, ForwardAs how = {}) {
  http::fields f;
  for (const auto& [k, v] : in) f.insert(k, v);
  rewrite_request_headers(f, id, how);
  Pairs out;
  for (const auto& field : f) out.emplace_back(field.name_string(), field.value());
  return out;
}
const ClientIdentity kAnonymous{"NONE", "", "", false};
const ClientIdentity kEdge{"SUCCESS", "abcd", "CN=edge", true};
}  // namespace

TEST(GkHeaders, StripsSpoofedClientIpFromNonEdge) {
  auto out = rewrite({{"CF-Connecting-IP", "1.2.3.4"},
                      {"X-Forwarded-For", "1.2.3.4"},
                      {"True-Client-IP", "1.2.3.4"},
                      {"X-Client-Verify", "SUCCESS"},
                      {"X-Other", "kept"}},
                     kAnonymous);
  EXPECT_EQ(
      out,
      (Pairs{
          {"X-Other", "kept"}, {"X-Client-Verify", "NONE"}, {"X-Client-Cert-SHA256", ""}, {"X-Client-Subject", ""}}));
}

TEST(GkHeaders, KeepsClientIpFromVerifiedEdgeButNeverTheIdentityHeaders) {
  auto out = rewrite({{"CF-Connecting-IP", "1.2.3.4"}, {"X-Client-Cert-SHA256", "forged"}}, kEdge);
  EXPECT_EQ(out, (Pairs{{"CF-Connecting-IP", "1.2.3.4"},
                        {"X-Client-Verify", "SUCCESS"},
                        {"X-Client-Cert-SHA256", "abcd"},
                        {"X-Client-Subject", "CN=edge"}}));
}

// CGI/WSGI/PHP upstreams read X_Client_Verify as X-Client-Verify: every spelling goes, and the
// real headers are always there, so no spoofed spelling is ever the only one.
TEST(GkHeaders, EverySpellingOfProtectedHeadersIsRemoved) {
  auto out = rewrite({{"X_Client_Verify", "SUCCESS"},
                      {"x.client.verify", "SUCCESS"},
                      {"X_Client_Cert_SHA256", "forged"},
                      {"x-client-subject", "CN=forged"},
                      {"X_CLIENT_SUBJECT", "CN=forged"},
                      {"CF_Connecting_IP", "6.6.6.6"},
                      {"cf.connecting.ipv6", "::6"},
                      {"X_Forwarded_For", "6.6.6.6"},
                      {"True_Client_IP", "6.6.6.6"},
                      {"X_Real_IP", "6.6.6.6"},
                      {"x-forwarded", "for=6.6.6.6"},
                      {"Forwarded_For", "6.6.6.6"},
                      {"X-Client-IP", "6.6.6.6"},
                      {"X_Cluster_Client_IP", "6.6.6.6"}},
                     kAnonymous);
  EXPECT_EQ(out, (Pairs{{"X-Client-Verify", "NONE"}, {"X-Client-Cert-SHA256", ""}, {"X-Client-Subject", ""}}));
}

// The other client-address headers that IP-detection code reads (PHP's HTTP_CLIENT_IP first of
// all): only an edge may set them; a verified edge keeps them.
TEST(GkHeaders, OtherClientAddressHeadersFromUnverifiedPeersAreRemoved) {
  const std::initializer_list<std::pair<const char*, const char*>> in = {
      {"Client-IP", "6.6.6.6"},   {"Client_IP", "6.6.6.6"},     {"X-Originating-IP", "6.6.6.6"},
      {"X-Remote-IP", "6.6.6.6"}, {"X_Remote_Addr", "6.6.6.6"}, {"X-Original-Forwarded-For", "6.6.6.6"},
      {"X-App", "kept"}};
  EXPECT_EQ(
      rewrite(in, kAnonymous),
      (Pairs{{"X-App", "kept"}, {"X-Client-Verify", "NONE"}, {"X-Client-Cert-SHA256", ""}, {"X-Client-Subject", ""}}));
  EXPECT_EQ(rewrite(in, kEdge).size(), 7u + 3u);
}

TEST(GkHeaders, EdgeHeadersFromUnverifiedPeersAreRemovedXForwardedHostAlways) {
  const std::initializer_list<std::pair<const char*, const char*>> in = {
      {"X-Forwarded-Host", "b.test"},
      {"X_Forwarded_Host", "b.test"},
      {"X-Forwarded-Proto", "http"},
      {"X-Forwarded-Port", "80"},
      {"Forwarded", "host=b.test"},
      {"CF-Visitor", "{}"},
      {"CF-IPCountry", "T1"},
      {"Cf-Access-Authenticated-User-Email", "admin@x"},
      {"CF-Ray", "1"},
      {"X-App", "kept"}};
  const Pairs identity_none{{"X-Client-Verify", "NONE"}, {"X-Client-Cert-SHA256", ""}, {"X-Client-Subject", ""}};
  Pairs want{{"X-App", "kept"}};
  want.insert(want.end(), identity_none.begin(), identity_none.end());
  EXPECT_EQ(rewrite(in, kAnonymous), want);
  auto edge = rewrite(in, kEdge);
  ASSERT_EQ(edge.size(), 8u + 3u);
  EXPECT_EQ(edge.front(), (std::pair<std::string, std::string>{"X-Forwarded-Proto", "http"}));
  for (const auto& [k, v] : edge) EXPECT_FALSE(name_is(k, "x-forwarded-host")) << k;
}

TEST(GkHeaders, ConnectionTokensRemoveWhatTheyNameButNeverFramingOrIdentity) {
  auto out = rewrite({{"Connection", "keep-alive, X-Client-Verify, X_Drop, Content-Length, Host, Transfer-Encoding"},
                      {"X-Drop", "1"},
                      {"Host", "a.test"},
                      {"Content-Length", "5"},
                      {"Keep-Alive", "timeout=5"},
                      {"Proxy-Connection", "keep-alive"},
                      {"TE", "trailers"},
                      {"Trailer", "X-T"},
                      {"X-Keep", "1"}},
                     kAnonymous);
  EXPECT_EQ(out, (Pairs{{"Host", "a.test"},
                        {"Content-Length", "5"},
                        {"X-Keep", "1"},
                        {"X-Client-Verify", "NONE"},
                        {"X-Client-Cert-SHA256", ""},
                        {"X-Client-Subject", ""}}));
  // Several Connection fields, odd spacing, any spelling of the named header.
  out = rewrite({{"Connection", " ,x-a ,"}, {"Connection", "X_B"}, {"X_A", "1"}, {"x-b", "1"}, {"X-C", "1"}}, kEdge);
  EXPECT_EQ(out.front(), (std::pair<std::string, std::string>{"X-C", "1"}));
  EXPECT_EQ(out.size(), 4u);
}

TEST(GkHeaders, TheGatekeepersOwnConnectionHeader) {
  auto connection = [](ForwardAs how) {
    Pairs out;
    for (auto& p : rewrite({{"Connection", "close, upgrade"}, {"Upgrade", "h2c"}}, kAnonymous, how))
      if (p.first == "Connection" || p.first == "Upgrade") out.push_back(p);
    return out;
  };
  EXPECT_EQ(connection({false, true, false}), Pairs{});
  EXPECT_EQ(connection({false, false, false}), (Pairs{{"Connection", "close"}}));
  EXPECT_EQ(connection({true, true, false}), (Pairs{{"Connection", "keep-alive"}}));
  EXPECT_EQ(connection({true, false, false}), Pairs{});
  EXPECT_EQ(connection({false, true, true}), (Pairs{{"Connection", "upgrade"}, {"Upgrade", "websocket"}}));
}

TEST(GkHeaders, H2cUpgradeAndHttp2SettingsNeverGoUp) {
  auto out =
      rewrite({{"Upgrade", "h2c"}, {"HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"}, {"http2_settings", "x"}}, kEdge);
  EXPECT_EQ(out,
            (Pairs{{"X-Client-Verify", "SUCCESS"}, {"X-Client-Cert-SHA256", "abcd"}, {"X-Client-Subject", "CN=edge"}}));
}

TEST(GkHeaders, ExpectIsDroppedOnHttp10Only) {
  auto has_expect = [](bool http10) {
    for (auto& p : rewrite({{"Expect", "100-continue"}}, kAnonymous, {http10, true, false}))
      if (p.first == "Expect") return true;
    return false;
  };
  EXPECT_TRUE(has_expect(false));
  EXPECT_FALSE(has_expect(true));
}

namespace {
http::request_header<> request(http::verb m, unsigned version,
                               std::initializer_list<std::pair<const char*, const char*>> fields) {
  http::request_header<> h;
  h.method(m);
  h.version(version);
  h.target("/ws");
  for (const auto& [k, v] : fields) h.insert(k, v);
  return h;
}
}  // namespace

TEST(GkUpgrade, OnlyAWebSocketHandshakeIsRelayed) {
  using V = http::verb;
  EXPECT_TRUE(is_websocket_upgrade(request(V::get, 11, {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}})));
  EXPECT_TRUE(
      is_websocket_upgrade(request(V::get, 11, {{"Connection", "keep-alive, upgrade"}, {"Upgrade", " WebSocket "}})));
  EXPECT_TRUE(is_websocket_upgrade(
      request(V::get, 11, {{"Connection", "upgrade"}, {"Upgrade", "websocket"}, {"Content-Length", "0"}})));
  EXPECT_FALSE(is_websocket_upgrade(request(V::get, 11, {{"Connection", "Upgrade"}, {"Upgrade", "h2c"}})));
  EXPECT_FALSE(is_websocket_upgrade(request(V::get, 11, {{"Connection", "Upgrade"}, {"Upgrade", "websocket, h2c"}})));
  EXPECT_FALSE(is_websocket_upgrade(
      request(V::get, 11, {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}, {"Upgrade", "h2c"}})));
  EXPECT_FALSE(is_websocket_upgrade(request(V::get, 11, {{"Upgrade", "websocket"}})));
  EXPECT_FALSE(is_websocket_upgrade(request(V::get, 11, {{"Connection", "keep-alive"}, {"Upgrade", "websocket"}})));
  EXPECT_FALSE(is_websocket_upgrade(request(V::get, 10, {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}})));
  EXPECT_FALSE(is_websocket_upgrade(request(V::post, 11, {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}})));
  EXPECT_FALSE(is_websocket_upgrade(
      request(V::get, 11, {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}, {"Content-Length", "2"}})));
  EXPECT_FALSE(is_websocket_upgrade(
      request(V::get, 11, {{"Connection", "Upgrade"}, {"Upgrade", "websocket"}, {"Transfer-Encoding", "chunked"}})));
}

TEST(GkUpgrade, A101MustSwitchToWebSocket) {
  auto response = [](unsigned status, std::initializer_list<const char*> upgrade) {
    http::response_header<> h;
    h.result(status);
    for (const char* u : upgrade) h.insert(http::field::upgrade, u);
    return h;
  };
  EXPECT_TRUE(accepts_websocket(response(101, {"websocket"})));
  EXPECT_TRUE(accepts_websocket(response(101, {"WebSocket"})));
  EXPECT_FALSE(accepts_websocket(response(101, {"h2c"})));
  EXPECT_FALSE(accepts_websocket(response(101, {})));
  EXPECT_FALSE(accepts_websocket(response(101, {"websocket", "h2c"})));
  EXPECT_FALSE(accepts_websocket(response(200, {"websocket"})));
}

namespace {
unsigned framing(unsigned version, std::initializer_list<std::pair<const char*, const char*>> fields) {
  http::request_header<> h;
  h.version(version);
  h.method(http::verb::post);
  h.target("/");
  for (const auto& [k, v] : fields) h.insert(k, v);
  return check_request_framing(h);
}
}  // namespace

TEST(GkFraming, PlainRequestsPass) {
  EXPECT_EQ(framing(11, {{"Host", "a.test"}}), 0u);
  EXPECT_EQ(framing(11, {{"Host", "a.test"}, {"Content-Length", "42"}}), 0u);
  EXPECT_EQ(framing(11, {{"Host", "a.test"}, {"Transfer-Encoding", "chunked"}}), 0u);
  EXPECT_EQ(framing(11, {{"Host", "a.test"}, {"Transfer-Encoding", " Chunked "}}), 0u);
  EXPECT_EQ(framing(10, {{"Host", "a.test"}, {"Content-Length", "0"}}), 0u);
}

TEST(GkFraming, AmbiguousFramingIsRefused) {
  EXPECT_EQ(framing(11, {{"Host", "a.test"}, {"Host", "b.test"}}), 400u);
  EXPECT_EQ(framing(11, {{"Content-Length", "5"}, {"Content-Length", "5"}}), 400u);
  EXPECT_EQ(framing(11, {{"Content-Length", "5, 5"}}), 400u);
  EXPECT_EQ(framing(11, {{"Content-Length", "+5"}}), 400u);
  EXPECT_EQ(framing(11, {{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}}), 400u);
  EXPECT_EQ(framing(11, {{"Content-Length", "5"}, {"Transfer-Encoding", "gzip"}}), 400u);
  EXPECT_EQ(framing(10, {{"Transfer-Encoding", "chunked"}}), 400u);
  EXPECT_EQ(framing(11, {{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}), 400u);
}

// An upstream that folds '_' into '-' would see two framing headers.
TEST(GkFraming, OtherSpellingsOfFramingHeadersAreRefused) {
  EXPECT_EQ(framing(11, {{"Content-Length", "5"}, {"Content_Length", "0"}}), 400u);
  EXPECT_EQ(framing(11, {{"content_length", "5"}}), 400u);
  EXPECT_EQ(framing(11, {{"Transfer_Encoding", "chunked"}, {"Content-Length", "5"}}), 400u);
  EXPECT_EQ(framing(11, {{"transfer.encoding", "chunked"}}), 400u);
  EXPECT_EQ(framing(11, {{"CONTENT-LENGTH", "5"}}), 0u);
}

TEST(GkFraming, OtherTransferCodingsAreNotImplemented) {
  EXPECT_EQ(framing(11, {{"Transfer-Encoding", "gzip, chunked"}}), 501u);
  EXPECT_EQ(framing(11, {{"Transfer-Encoding", "identity"}}), 501u);
}
